"""Recency of synthetic labels (an `evaluate` measurement): how often a row's label is the label of the last
example its prompt showed. LMs copy the last label they saw (Zhao et al., 2021); the rate expected if labels
and last examples were independent is given beside it."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """The share of synthetic rows whose label equals the label of the last example in their prompt,
and the share expected by chance: the sum over labels of (share of rows with the label) x (share of prompts
ending with it). Rows whose last example is unknown (-1) are left out."""

_KWARGS_DESCRIPTION = """
Args:
    labels (`list[int]`): the label of each synthetic row.
    last_example_labels (`list[int]`): the label of the last example of its prompt (-1: unknown).
Returns:
    recency_rate (`float`), recency_rate_if_independent (`float`): None when no row has a known last example.
Examples:
    >>> recency = evaluate.load("gpt3mix_hf/measurements/recency")
    >>> recency.compute(labels=[0, 1, 1, 0], last_example_labels=[0, 1, 0, -1])
    {'recency_rate': 0.6666666666666666, 'recency_rate_if_independent': 0.4444444444444444}
"""

_CITATION = """@inproceedings{zhao2021calibrate,
    title = "Calibrate Before Use: Improving Few-Shot Performance of Language Models",
    author = "Zhao, Tony Z. and Wallace, Eric and Feng, Shi and Klein, Dan and Singh, Sameer",
    booktitle = "Proceedings of ICML 2021",
    year = "2021",
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Recency(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"labels": datasets.Value("int64"), "last_example_labels": datasets.Value("int64")}
            ),
        )

    def _compute(self, labels, last_example_labels, **kwargs):
        labels, last = np.asarray(labels, dtype=np.int64), np.asarray(last_example_labels, dtype=np.int64)
        known = (last >= 0) & (labels >= 0)
        if not known.any():
            return {"recency_rate": None, "recency_rate_if_independent": None}
        labels, last = labels[known], last[known]
        size = int(max(labels.max(), last.max())) + 1
        chance = float(np.dot(np.bincount(labels, minlength=size) / len(labels),
                              np.bincount(last, minlength=size) / len(last)))
        return {"recency_rate": float((labels == last).mean()), "recency_rate_if_independent": chance}
