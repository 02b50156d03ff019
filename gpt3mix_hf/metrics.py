"""Accuracy and macro-F1 for `GPT3MixTrainer`, as `evaluate` metrics that work without the Hub.

`evaluate.load("accuracy")` downloads the metric's script from the Hub (the `evaluate-metric` organisation); the
`evaluate` wheel ships no metric scripts, so without the Hub (or a cached copy) it fails. The two metrics used here
are therefore defined in this module as `evaluate.Metric` subclasses doing exactly what the Hub's `accuracy` and
`f1` scripts do (scikit-learn's `accuracy_score` and `f1_score`), and are instantiated directly: no download, the
same numbers. Any other metric name goes through `evaluate.load` as usual.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
from transformers import EvalPrediction

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

_INPUTS = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): ground-truth labels.
    sample_weight (`list` of `float`, *optional*): a weight per example.
"""


def _sklearn_metrics():
    try:
        import sklearn.metrics
    except ImportError as error:  # the Hub's accuracy and f1 scripts need it too
        raise ImportError("The accuracy and F1 metrics need scikit-learn: pip install scikit-learn") from error
    return sklearn.metrics


def _int_features() -> datasets.Features:
    return datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")})


class Accuracy(evaluate.Metric):
    """The fraction of correct predictions; the same computation as the Hub's `evaluate-metric/accuracy`.

    Example:

    >>> Accuracy().compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
    """

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Accuracy: the proportion of correct predictions among all predictions.",
            citation=_CITATION,
            inputs_description=_INPUTS + "    normalize (`bool`, defaults to True): a fraction, not a count.\n",
            features=_int_features(),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/accuracy"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        score = _sklearn_metrics().accuracy_score(
            references, predictions, normalize=normalize, sample_weight=sample_weight
        )
        return {"accuracy": float(score)}


class F1(evaluate.Metric):
    """F1 score; the same computation as the Hub's `evaluate-metric/f1` (`average="macro"` for macro-F1).

    Example:

    >>> F1().compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 2], average="macro")
    {'f1': 0.7777777777777777}
    """

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="F1: the harmonic mean of precision and recall, per class and averaged.",
            citation=_CITATION,
            inputs_description=_INPUTS + "    average (`str`, defaults to 'binary'): 'binary', 'macro', ...\n",
            features=_int_features(),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/f1"],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary", sample_weight=None):
        score = _sklearn_metrics().f1_score(
            references, predictions, labels=labels, pos_label=pos_label, average=average, sample_weight=sample_weight
        )
        # average=None gives one score per class, as the Hub script does.
        return {"f1": float(score) if np.ndim(score) == 0 else score}


LOCAL_METRICS: dict[str, type[evaluate.Metric]] = {"accuracy": Accuracy, "f1": F1}


def load_metric(name: str) -> evaluate.EvaluationModule:
    """`accuracy` and `f1` from this module (no download); any other name through `evaluate.load`."""
    if name in LOCAL_METRICS:
        return LOCAL_METRICS[name]()
    return evaluate.load(name)


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """Accuracy and macro-F1 on the real rows of an evaluation, for `Trainer(compute_metrics=...)`.

    `GPT3MixTrainer` evaluates with `label_names=["labels", "soft_labels", "is_synthetic"]`, so `label_ids` is a
    tuple of those three arrays; synthetic rows are left out. A plain array of label ids works too (the stock
    `Trainer`).

    Example:

    >>> import numpy as np
    >>> compute_metrics(EvalPrediction(predictions=np.array([[2.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 0])))
    {'accuracy': 0.5, 'macro_f1': 0.3333333333333333}
    """
    logits = eval_pred.predictions
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    label_ids = eval_pred.label_ids
    is_synthetic = None
    if isinstance(label_ids, (tuple, list)):
        if len(label_ids) > 2:
            is_synthetic = np.asarray(label_ids[2]).astype(bool).reshape(-1)
        label_ids = label_ids[0]
    if label_ids is None:
        raise ValueError("The evaluation set has no labels: give it a 'label' column to compute accuracy.")
    predictions = np.asarray(logits).argmax(axis=-1)
    references = np.asarray(label_ids).reshape(-1)
    if is_synthetic is not None:
        predictions, references = predictions[~is_synthetic], references[~is_synthetic]
    if len(references) == 0:
        raise ValueError("The evaluation set has no real rows (all are is_synthetic=True): evaluate on real data.")
    accuracy = load_metric("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    macro_f1 = load_metric("f1").compute(predictions=predictions, references=references, average="macro")["f1"]
    return {"accuracy": accuracy, "macro_f1": macro_f1}
