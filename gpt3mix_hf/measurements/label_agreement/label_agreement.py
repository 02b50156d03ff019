"""How often two labellings of the same synthetic rows agree (an `evaluate` measurement): the label the LM wrote
after its text against the arg-max of its label distribution, and a debiased label against both when there is
one."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Agreement of the label a GPT3Mix LM wrote (`written_labels`) with the arg-max of the label
distribution it gives the finished text (`lm_labels`), and of debiased labels with each, where given. Rows where
a labelling is missing (-1) are left out of the pairs that use it."""

_KWARGS_DESCRIPTION = """
Args:
    written_labels (`list[int]`): the label the LM wrote, per row (-1: none).
    lm_labels (`list[int]`): the arg-max of the LM's label distribution, per row (-1: none).
    debiased_labels (`list[int]`, *optional*): a debiased label per row (-1: none).
Returns:
    written_lm_agreement (`float`): share of rows where the written and the LM's labels agree.
    debiased_written_agreement, debiased_lm_agreement (`float`): with `debiased_labels`.
    Each is None when no row has both labels.
Examples:
    >>> agreement = evaluate.load("gpt3mix_hf/measurements/label_agreement")
    >>> agreement.compute(written_labels=[0, 1, 1, -1], lm_labels=[0, 1, 0, 1])
    {'written_lm_agreement': 0.6666666666666666}
"""


def _agreement(first, second):
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    both = (first >= 0) & (second >= 0)
    return float((first[both] == second[both]).mean()) if both.any() else None


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LabelAgreement(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"written_labels": datasets.Value("int64"), "lm_labels": datasets.Value("int64")}
            ),
        )

    def _compute(self, written_labels, lm_labels, debiased_labels=None, **kwargs):
        result = {"written_lm_agreement": _agreement(written_labels, lm_labels)}
        if debiased_labels is not None:
            if len(debiased_labels) != len(lm_labels):
                raise ValueError(
                    f"debiased_labels has {len(debiased_labels)} rows, lm_labels {len(lm_labels)}: give one per row."
                )
            result["debiased_written_agreement"] = _agreement(debiased_labels, written_labels)
            result["debiased_lm_agreement"] = _agreement(debiased_labels, lm_labels)
        return result
