"""Accuracy and macro-F1 for `Trainer(compute_metrics=...)`, computed through `evaluate`.

The metrics are `evaluate` modules shipped inside the package (`gpt3mix_hf/training/metric_modules/`), loaded from
their local paths: `evaluate.load("accuracy")` would fetch its script from the Hub, and these two are what the Hub's
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


def validation_loss(logits: np.ndarray, references: np.ndarray) -> float:
    """Mean cross-entropy (nats) of the logits' softmax against the class labels."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(references)), references].mean())


def compute_selection_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """[`compute_metrics`] plus `nll` (the mean cross-entropy) and `accuracy_then_nll`, a score for choosing the
    best epoch (`metric_for_best_model="accuracy_then_nll"`): higher accuracy wins, and among equal accuracies the
    lower `nll`.

    On N rows, two different accuracies differ by at least 1/N; the score subtracts `tanh(nll) / (2N)`, which is
    below 1/(2N) and rises with `nll`, so it orders epochs by accuracy first and by validation loss within a tie.
    Without it, the stock `Trainer` keeps the *first* of tied epochs: on a small validation set that is often a
    barely trained early epoch.

    Example:

    >>> metrics = compute_selection_metrics(EvalPrediction(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1])))
    >>> metrics["accuracy"], metrics["accuracy_then_nll"] < 1.0
    (1.0, True)
    """
    metrics = compute_metrics(eval_pred)
    logits = eval_pred.predictions
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    references = np.asarray(eval_pred.label_ids).reshape(-1)
    nll = validation_loss(logits, references)
    metrics["nll"] = nll
    metrics["accuracy_then_nll"] = metrics["accuracy"] - float(np.tanh(nll)) / (2 * len(references))
    return metrics
