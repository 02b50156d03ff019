"""Exact and near copies of real rows among synthetic rows (an `evaluate` measurement), like `evaluate`'s
`text_duplicates` but against the real texts: the examples each row's prompt showed, and the whole real pool."""

import re
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = """For each synthetic text, the word n-gram overlap with a real text is the share of the synthetic
text's n-grams that the real text also has (texts shorter than n words use their words). A row is an exact copy
when its normalised text (lower case, single spaces) equals a real one, and a near copy when its overlap with one
real text reaches `near_threshold`. Measured against the prompt's own examples (`prompt_texts`) and, with
`real_texts`, against every real row."""

_KWARGS_DESCRIPTION = """
Args:
    texts (`list[str]`): the synthetic texts.
    prompt_texts (`list[list[str]]`): the real example texts the prompt of each row showed.
    real_texts (`list[str]`, *optional*): all real texts (the pool the examples were drawn from).
    n (`int`, *optional*, defaults to 3): n-gram length.
    near_threshold (`float`, *optional*, defaults to 0.8): overlap from which a row is a near copy.
Returns:
    exact_copy_of_prompt_rate, near_copy_of_prompt_rate (`float`): share of rows copying one of their examples.
    mean_prompt_overlap (`float`): mean, over rows, of the largest overlap with one of their examples.
    exact_copy_of_real_rate, near_copy_of_real_rate, mean_real_overlap (`float`): the same against all real
        texts (with `real_texts`).
Examples:
    >>> copies = evaluate.load("gpt3mix_hf/measurements/text_copies")
    >>> copies.compute(texts=["a fine film", "dull"], prompt_texts=[["A fine  film"], ["great fun"]])
    {'exact_copy_of_prompt_rate': 0.5, 'near_copy_of_prompt_rate': 0.5, 'mean_prompt_overlap': 0.5}
"""


def words(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


def ngrams(text, n):
    tokens = words(text)
    if len(tokens) < n:
        return Counter((token,) for token in tokens)
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def overlap(grams, other):
    total = sum(grams.values())
    return sum((grams & other).values()) / total if total else 0.0


def normalised(text):
    return " ".join(text.lower().split())


class _Index:
    """The real texts' n-grams, inverted: the best overlap of a text with any one real text, without comparing
    it to every real text."""

    def __init__(self, texts, n):
        self.n = n
        self.grams = [ngrams(text, n) for text in texts]
        self.rows = {}
        for row, grams in enumerate(self.grams):
            for gram in grams:
                self.rows.setdefault(gram, []).append(row)
        self.exact = {normalised(text) for text in texts}

    def best_overlap(self, text):
        grams = ngrams(text, self.n)
        candidates = {row for gram in grams for row in self.rows.get(gram, ())}
        return max((overlap(grams, self.grams[row]) for row in candidates), default=0.0)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TextCopies(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"texts": datasets.Value("string"), "prompt_texts": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, texts, prompt_texts, real_texts=None, n=3, near_threshold=0.8, **kwargs):
        if not texts:
            return {}
        exact, near, best = 0, 0, []
        for text, examples in zip(texts, prompt_texts, strict=True):
            grams = ngrams(text, n)
            top = max((overlap(grams, ngrams(example, n)) for example in examples), default=0.0)
            exact += normalised(text) in {normalised(example) for example in examples}
            near += top >= near_threshold
            best.append(top)
        rows = len(texts)
        result = {"exact_copy_of_prompt_rate": exact / rows, "near_copy_of_prompt_rate": near / rows,
                  "mean_prompt_overlap": sum(best) / rows}
        if real_texts is not None:
            index = _Index(real_texts, n)
            tops = [index.best_overlap(text) for text in texts]
            result["exact_copy_of_real_rate"] = sum(normalised(text) in index.exact for text in texts) / rows
            result["near_copy_of_real_rate"] = sum(top >= near_threshold for top in tops) / rows
            result["mean_real_overlap"] = sum(tops) / rows
        return result
