"""Accuracy and macro-F1 for `Trainer(compute_metrics=...)`, computed through `evaluate`.

The metrics are `evaluate` modules shipped inside the package (`gpt3mix_hf/metric_modules/`), loaded from their
local paths: `evaluate.load("accuracy")` would fetch its script from the Hub, and these two are what the Hub's
`accuracy` and `f1` (`average="macro"`) compute, with scikit-learn underneath. `make_compute_metrics` turns any
`evaluate` module, or an `evaluate.combine` of several, into a `compute_metrics`; `GPT3MixTrainer`, the experiment
harness (`evaluate_classifier`) and `gpt3mix train` all use `compute_metrics`, built from `default_metrics()`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from transformers import EvalPrediction

METRIC_MODULES_DIR = Path(__file__).parent / "metric_modules"
METRICS = ("accuracy", "macro_f1")


def metric_path(name: str) -> str:
    """The local path of a metric module, for `evaluate.load` / `evaluate.combine`."""
    if name not in METRICS:
        raise ValueError(f"No gpt3mix_hf metric {name!r}: choose one of {METRICS}.")
    return str(METRIC_MODULES_DIR / name)


@cache
def load_metric(name: str):
    """`evaluate.load` of a metric module from its local path, kept in memory (no cache files)."""
    import evaluate

    return evaluate.load(metric_path(name), keep_in_memory=True)


@cache
def default_metrics():
    """Accuracy and macro-F1 as one `evaluate.combine`."""
    import evaluate

    return evaluate.combine([load_metric(name) for name in METRICS])


def make_compute_metrics(metrics) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` for `Trainer` from an `evaluate` module or `evaluate.combine(...)`: the arg-max of the
    logits against the labels.

    Example:

    >>> import evaluate
    >>> compute = make_compute_metrics(evaluate.combine([metric_path("accuracy"), metric_path("macro_f1")]))
    >>> trainer = GPT3MixTrainer(model, args, train_dataset=train, eval_dataset=test, compute_metrics=compute)
    """
    if not hasattr(metrics, "compute"):
        raise TypeError(
            f"make_compute_metrics takes an evaluate module or evaluate.combine([...]), got {type(metrics).__name__}."
        )

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        logits = eval_pred.predictions
        if isinstance(logits, tuple | list):
            # Models asked for hidden states or attentions return them after the logits.
            logits = logits[0]
        if eval_pred.label_ids is None:
            raise ValueError("The evaluation set has no labels: give it a 'label' column to compute accuracy.")
        predictions = np.asarray(logits).argmax(axis=-1).reshape(-1)
        references = np.asarray(eval_pred.label_ids).reshape(-1)
        return metrics.compute(predictions=predictions.tolist(), references=references.tolist())

    return compute_metrics


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 of the arg-max of the logits, for `Trainer(compute_metrics=...)`.

    Example:

    >>> import numpy as np
    >>> compute_metrics(EvalPrediction(predictions=np.array([[2.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 0])))
    {'accuracy': 0.5, 'macro_f1': 0.3333333333333333}
    """
    return make_compute_metrics(default_metrics())(eval_pred)
