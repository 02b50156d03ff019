"""Macro-averaged F1 (the unweighted mean of each label's F1), as `evaluate`'s own `f1` module computes it with
`average="macro"` (scikit-learn's `f1_score`), shipped inside gpt3mix_hf so that it loads from its local path
without the Hub. The result is named `macro_f1`, so that it combines with `accuracy` without a prefix."""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = """Macro-F1: the F1 score of each label, averaged with equal weight per label."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted labels.
    references (`list[int]`): true labels.
    labels (`list[int]`, *optional*): the labels to average over; default: those in predictions or references.
    sample_weight (`list[float]`, *optional*): a weight per row, as for `f1`.
Returns:
    macro_f1 (`float`)
Examples:
    >>> macro_f1 = evaluate.load("gpt3mix_hf/training/metric_modules/macro_f1")
    >>> macro_f1.compute(predictions=[0, 0], references=[0, 1])
    {'macro_f1': 0.3333333333333333}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, **kwargs):
        # **kwargs: what evaluate.combine hands every module (e.g. accuracy's normalize).
        return {"macro_f1": float(f1_score(references, predictions, labels=labels, average="macro",
                                           sample_weight=sample_weight))}
