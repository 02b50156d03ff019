"""Accuracy, as `evaluate`'s own `accuracy` module computes it (scikit-learn's `accuracy_score`), shipped inside
gpt3mix_hf so that it loads from its local path without the Hub."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """Accuracy: the share of predictions equal to their reference."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted labels.
    references (`list[int]`): true labels.
    normalize (`bool`, *optional*, defaults to True): a share (True) or a count (False).
    sample_weight (`list[float]`, *optional*): row weights.
Returns:
    accuracy (`float`)
Examples:
    >>> accuracy = evaluate.load("gpt3mix_hf/training/metric_modules/accuracy")
    >>> accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None, **kwargs):
        return {
            "accuracy": float(accuracy_score(references, predictions, normalize=normalize,
                                             sample_weight=sample_weight))
        }
