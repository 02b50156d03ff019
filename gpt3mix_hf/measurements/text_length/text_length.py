"""Length of synthetic texts against real ones, in words (an `evaluate` measurement, like `evaluate`'s
`word_length` with the real texts beside it)."""

import re

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """The mean number of words of the synthetic texts and of the real texts, and their ratio
(synthetic / real; 1: the same length on average)."""

_KWARGS_DESCRIPTION = """
Args:
    texts (`list[str]`): the synthetic texts.
    real_texts (`list[str]`, *optional*): the real texts.
Returns:
    mean_words (`float`), real_mean_words (`float`), length_ratio (`float`): the last two with `real_texts`.
Examples:
    >>> length = evaluate.load("gpt3mix_hf/measurements/text_length")
    >>> length.compute(texts=["a fine film"], real_texts=["good", "really good"])
    {'mean_words': 3.0, 'real_mean_words': 1.5, 'length_ratio': 2.0}
"""


def _mean_words(texts):
    return float(np.mean([len(re.findall(r"\S+", text)) for text in texts])) if len(texts) else None


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TextLength(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"texts": datasets.Value("string")}),
        )

    def _compute(self, texts, real_texts=None, **kwargs):
        result = {"mean_words": _mean_words(texts)}
        if real_texts is not None:
            real = _mean_words(real_texts)
            result["real_mean_words"] = real
            result["length_ratio"] = result["mean_words"] / real if real and result["mean_words"] is not None else None
        return result
