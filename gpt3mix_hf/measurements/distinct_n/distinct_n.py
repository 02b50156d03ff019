"""Distinct-n of a set of texts (Li et al., 2016), an `evaluate` measurement: distinct word n-grams over all
word n-grams. Low values mean the LM repeats itself across rows."""

import re

import datasets
import evaluate

_DESCRIPTION = """Distinct-1 ... distinct-`max_n`: the number of distinct word n-grams in all texts divided by
the number of word n-grams (words lower-cased; punctuation marks are words)."""

_KWARGS_DESCRIPTION = """
Args:
    texts (`list[str]`): the texts.
    max_n (`int`, *optional*, defaults to 3): the largest n.
Returns:
    distinct_1 ... distinct_{max_n} (`float`): None when the texts have no n-gram of that length.
Examples:
    >>> distinct = evaluate.load("gpt3mix_hf/measurements/distinct_n")
    >>> distinct.compute(texts=["a good film", "a good book"], max_n=2)
    {'distinct_1': 0.6666666666666666, 'distinct_2': 0.75}
"""

_CITATION = """@inproceedings{li-etal-2016-diversity,
    title = "A Diversity-Promoting Objective Function for Neural Conversation Models",
    author = "Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill",
    booktitle = "Proceedings of NAACL-HLT 2016",
    year = "2016",
    url = "https://aclanthology.org/N16-1014",
}"""


def words(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistinctN(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"texts": datasets.Value("string")}),
        )

    def _compute(self, texts, max_n=3, **kwargs):
        tokenized = [words(text) for text in texts]
        result = {}
        for n in range(1, max_n + 1):
            grams = [tuple(tokens[i : i + n]) for tokens in tokenized for i in range(len(tokens) - n + 1)]
            result[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else None
        return result
