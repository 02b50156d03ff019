"""How sure the LM is of the labels of its synthetic rows (an `evaluate` measurement): the mean of each row's
largest label probability."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """The mean, over synthetic rows, of the largest probability in each row's label distribution
(1/number of labels: no preference; 1: certain), and the share of rows below `threshold`. Rows without a
distribution (an empty list) are left out."""

_KWARGS_DESCRIPTION = """
Args:
    soft_labels (`list[list[float]]`): the label distribution of each row.
    threshold (`float`, *optional*, defaults to 0.5): a row is unsure when its largest probability is below it.
Returns:
    mean_label_confidence (`float`): None when no row has a distribution.
    unsure_rate (`float`): share of rows below `threshold`.
Examples:
    >>> confidence = evaluate.load("gpt3mix_hf/measurements/label_confidence")
    >>> confidence.compute(soft_labels=[[0.75, 0.25], [0.25, 0.75], [0.5, 0.5], [0.875, 0.125]])
    {'mean_label_confidence': 0.71875, 'unsure_rate': 0.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LabelConfidence(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"soft_labels": datasets.Sequence(datasets.Value("float32"))}),
        )

    def _compute(self, soft_labels, threshold=0.5, **kwargs):
        # float32 in, as the rows store them; the mean is taken in float64.
        top = np.array([max(row) for row in soft_labels if len(row)], dtype=np.float64)
        if not len(top):
            return {"mean_label_confidence": None, "unsure_rate": None}
        return {"mean_label_confidence": float(top.mean()), "unsure_rate": float((top < threshold).mean())}
