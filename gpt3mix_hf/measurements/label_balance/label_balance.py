"""Label balance of synthetic rows against the real rows they were made from (an `evaluate` measurement).

Shaped like `evaluate`'s own `label_distribution`, with the real rows' distribution beside the synthetic one and
the total variation distance between the two: a GPT3Mix LM that favours one label shows here first.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """The share of each label among the synthetic rows (e.g. the arg-max of their soft labels) and
among the real rows, and the total variation distance between the two distributions (0: same balance, 1:
disjoint)."""

_KWARGS_DESCRIPTION = """
Args:
    labels (`list[int]`): the label id of each synthetic row.
    real_labels (`list[int]`, *optional*): the label id of each real row.
    num_labels (`int`, *optional*): how many labels there are; default: one more than the largest id seen.
Returns:
    label_fractions (`list[float]`): share of each label id among the synthetic rows (None without rows).
    real_label_fractions (`list[float]`): the same among the real rows (with `real_labels`).
    label_balance_tvd (`float`): total variation distance between the two (with `real_labels`).
Examples:
    >>> balance = evaluate.load("gpt3mix_hf/measurements/label_balance")
    >>> balance.compute(labels=[0, 0, 0, 1], real_labels=[0, 1])
    {'label_fractions': [0.75, 0.25], 'real_label_fractions': [0.5, 0.5], 'label_balance_tvd': 0.25}
"""


def _fractions(labels, num_labels):
    if not len(labels):
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels)[:num_labels]
    return (counts / counts.sum()).tolist()


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LabelBalance(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"labels": datasets.Value("int64")}),
        )

    def _compute(self, labels, real_labels=None, num_labels=None, **kwargs):
        seen = [*labels, *(real_labels or [])]
        if num_labels is None:
            num_labels = max(seen) + 1 if seen else 0
        result = {"label_fractions": _fractions(labels, num_labels)}
        if real_labels is not None:
            real = _fractions(real_labels, num_labels)
            result["real_label_fractions"] = real
            synthetic = result["label_fractions"]
            # No rows on one side: there is no balance to compare.
            tvd = None
            if synthetic is not None and real is not None:
                tvd = 0.5 * float(np.abs(np.subtract(synthetic, real)).sum())
            result["label_balance_tvd"] = tvd
        return result
