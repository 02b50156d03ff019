"""EDA (Wei & Zou, 2019): synonym replacement, random insertion, random swap and random deletion, on real
WordNet through nltk, as a seeded `Dataset.map` callable.

It follows the reference implementation (github.com/jasonwei20/eda_nlp, `code/eda.py`): the same cleaning,
stop words, operations and defaults (alpha = 0.1 for each operation; per sentence, `int(num_aug / 4) + 1`
candidates per operation, shuffled, `num_aug` kept). Two changes, both for reproducibility: every random
choice comes from a generator seeded by (seed, row, ...) instead of the global `random`, and WordNet's
synonyms are sorted before the draw (the reference draws from a `set`, whose order changes with
PYTHONHASHSEED). The original sentence is not added to the output: the harness adds the real rows itself.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path

from datasets import Dataset
from transformers.utils import logging

from ...data import check_columns
from ...selection import row_seed
from ...validation import check_arguments
from .rows import RowAugmenter

logger = logging.get_logger(__name__)

# The stop words of the EDA reference code: never replaced by synonyms.
STOP_WORDS = frozenset(
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers "
    "herself it its itself they them their theirs themselves what which who whom this that these those am is "
    "are was were be been being have has had having do does did doing a an the and but if or because as until "
    "while of at by for with about against between into through during before after above below to from up "
    "down in out on off over under again further then once here there when where why how all any both each few "
    "more most other some such no nor not only own same so than too very s t can will just don should now".split()
) | {""}

_LETTERS = set("qwertyuiopasdfghjklzxcvbnm ")


def wordnet_data_dir() -> Path:
    """Where `scripts/setup_wordnet.sh` puts WordNet by default: `$GPT3MIX_HF_CACHE/nltk_data`."""
    from ...models import cache_dir

    return cache_dir() / "nltk_data"


class WordNetNotFoundError(FileNotFoundError, LookupError):
    """WordNet is not where nltk looks: a missing data file (so the CLI reports it in one line, with the way to
    install it), and a `LookupError` as nltk's own."""


@lru_cache(maxsize=1)
def load_wordnet():
    """nltk's WordNet reader, from `NLTK_DATA`, nltk's usual folders or `wordnet_data_dir()`."""
    try:
        import nltk
    except ImportError as error:
        raise ImportError("EDA needs nltk: pip install 'gpt3mix_hf[baselines]'") from error
    extra = str(wordnet_data_dir())
    if extra not in nltk.data.path:
        nltk.data.path.append(extra)
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError as error:
        raise WordNetNotFoundError(
            "WordNet is not installed where nltk looks (NLTK_DATA, nltk's default folders, or "
            f"{extra}). Install it with `python -m nltk.downloader wordnet`; without access to nltk's server, "
            "scripts/setup_wordnet.sh lays out Debian's wordnet-base for nltk. Or point NLTK_DATA at a folder with "
            "corpora/wordnet/ in it."
        ) from error
    return wordnet


def clean_text(text: str) -> str:
    """The reference code's `get_only_chars`: lower case, letters and single spaces only."""
    text = text.replace("’", "").replace("'", "").replace("-", " ").replace("\t", " ").replace("\n", " ")
    text = "".join(char if char in _LETTERS else " " for char in text.lower())
    return re.sub(" +", " ", text).strip()


class EDA:
    """The four EDA operations on a list of words, with their own random generator.

    Args:
        wordnet: nltk's WordNet reader (default: `load_wordnet()`).

    Example:

    >>> eda = EDA()
    >>> eda.synonym_replacement("a funny and moving film".split(), 1, random.Random(0))
    ['a', 'funny', 'and', 'moving', 'celluloid']
    """

    def __init__(self, wordnet=None):
        self.wordnet = wordnet or load_wordnet()
        self._synonyms: dict[str, list[str]] = {}

    def synonyms(self, word: str) -> list[str]:
        """WordNet lemmas of every synset of `word`, cleaned as the reference code does, sorted, without `word`."""
        if word not in self._synonyms:
            found = set()
            for synset in self.wordnet.synsets(word):
                for lemma in synset.lemmas():
                    synonym = lemma.name().replace("_", " ").replace("-", " ").lower()
                    found.add("".join(char for char in synonym if char in _LETTERS))
            found.discard(word)
            found.discard("")
            self._synonyms[word] = sorted(found)
        return self._synonyms[word]

    def synonym_replacement(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        new_words = list(words)
        candidates = sorted({word for word in words if word not in STOP_WORDS})
        rng.shuffle(candidates)
        replaced = 0
        for word in candidates:
            synonyms = self.synonyms(word)
            if synonyms:
                synonym = rng.choice(synonyms)
                new_words = [synonym if w == word else w for w in new_words]
                replaced += 1
            if replaced >= n:
                break
        # A multi-word synonym becomes several words, as in the reference code.
        return " ".join(new_words).split(" ")

    def random_deletion(self, words: list[str], p: float, rng: random.Random) -> list[str]:
        if len(words) <= 1:
            return list(words)
        kept = [word for word in words if rng.uniform(0, 1) > p]
        return kept if kept else [words[rng.randint(0, len(words) - 1)]]

    def random_swap(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        new_words = list(words)
        for _ in range(n):
            first = rng.randint(0, len(new_words) - 1)
            second = first
            for _ in range(3):
                second = rng.randint(0, len(new_words) - 1)
                if second != first:
                    break
            new_words[first], new_words[second] = new_words[second], new_words[first]
        return new_words

    def random_insertion(self, words: list[str], n: int, rng: random.Random) -> list[str]:
        new_words = list(words)
        for _ in range(n):
            synonyms: list[str] = []
            for _ in range(10):
                synonyms = self.synonyms(new_words[rng.randint(0, len(new_words) - 1)])
                if synonyms:
                    break
            if synonyms:
                # The reference takes synonyms[0] of an unordered set: a random synonym, drawn here explicitly.
                new_words.insert(rng.randint(0, len(new_words) - 1), rng.choice(synonyms))
        return new_words

    def augment(self, sentence: str, num_aug: int, rng: random.Random, alpha_sr: float = 0.1,
                alpha_ri: float = 0.1, alpha_rs: float = 0.1, p_rd: float = 0.1, clean: bool = True) -> list[str]:
        """`num_aug` new sentences, as the reference `eda()` makes them (without the original sentence)."""
        text = clean_text(sentence) if clean else " ".join(sentence.split())
        words = [word for word in text.split(" ") if word]
        if not words:
            return [sentence] * num_aug
        num_words = len(words)
        per_operation = int(num_aug / 4) + 1
        candidates: list[str] = []
        if alpha_sr > 0:
            n = max(1, int(alpha_sr * num_words))
            candidates += [" ".join(self.synonym_replacement(words, n, rng)) for _ in range(per_operation)]
        if alpha_ri > 0:
            n = max(1, int(alpha_ri * num_words))
            candidates += [" ".join(self.random_insertion(words, n, rng)) for _ in range(per_operation)]
        if alpha_rs > 0:
            n = max(1, int(alpha_rs * num_words))
            candidates += [" ".join(self.random_swap(words, n, rng)) for _ in range(per_operation)]
        if p_rd > 0:
            candidates += [" ".join(self.random_deletion(words, p_rd, rng)) for _ in range(per_operation)]
        if not candidates:
            raise ValueError("Every EDA operation is switched off (all alphas are 0): nothing to augment with.")
        if clean:
            candidates = [clean_text(candidate) for candidate in candidates]
        rng.shuffle(candidates)
        candidates = candidates[:num_aug]
        # Fewer candidates than num_aug only when operations are switched off: repeat them, as augmentation
        # ratios are compared across methods.
        while len(candidates) < num_aug:
            candidates.append(candidates[len(candidates) % per_operation])
        return candidates


class EDAAugmenter(RowAugmenter):
    """`num_aug` EDA rows per real row, as a `Dataset.map` callable (like `GPT3MixAugmenter`).

    Output rows: `text`, `label` (the real row's, unchanged: EDA keeps the label) and `soft_labels` (one-hot).

    Args:
        num_aug (`int`): synthetic rows per real row (the reference code's default: 9).
        alpha_sr, alpha_ri, alpha_rs (`float`): share of words changed by synonym replacement, random
            insertion and random swap (defaults 0.1, as published).
        p_rd (`float`): probability that random deletion drops a word (default 0.1).
        clean (`bool`): lower-case and keep only letters first, as the reference code does.
        seed (`int`): every choice for row i comes from a generator seeded by (seed, i).
        text_column, label_column (`str`): where the text and the `ClassLabel` are.

    Example:

    >>> augmenter = EDAAugmenter(num_aug=4, seed=0)
    >>> synthetic = augmenter.augment(train)
    >>> synthetic.column_names
    ['text', 'label', 'soft_labels']
    """

    def __init__(self, num_aug: int = 9, alpha_sr: float = 0.1, alpha_ri: float = 0.1, alpha_rs: float = 0.1,
                 p_rd: float = 0.1, clean: bool = True, seed: int = 0, text_column: str = "text",
                 label_column: str = "label"):
        check_arguments(EDAAugmenter.__init__, {
            "num_aug": num_aug, "alpha_sr": alpha_sr, "alpha_ri": alpha_ri, "alpha_rs": alpha_rs, "p_rd": p_rd,
            "clean": clean, "seed": seed, "text_column": text_column, "label_column": label_column,
        })
        if not isinstance(num_aug, int) or num_aug < 1:
            raise ValueError(f"num_aug (EDA rows per real row) must be an integer >= 1, got {num_aug!r}.")
        for name, value in (("alpha_sr", alpha_sr), ("alpha_ri", alpha_ri), ("alpha_rs", alpha_rs), ("p_rd", p_rd)):
            # `not 0 <= x <= 1` also refuses NaN, for which every comparison is false.
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
        if alpha_sr == alpha_ri == alpha_rs == p_rd == 0:
            raise ValueError("Every EDA operation is switched off (all alphas are 0): set at least one above 0.")
        self.num_aug, self.seed, self.clean = num_aug, seed, clean
        self.alphas = {"alpha_sr": alpha_sr, "alpha_ri": alpha_ri, "alpha_rs": alpha_rs, "p_rd": p_rd}
        self.text_column, self.label_column = text_column, label_column
        self.label_names: list[str] | None = None
        self._eda: EDA | None = None

    def settings(self) -> dict:
        """What decides the rows, given the WordNet version (`config()` adds it, which needs nltk)."""
        return {"method": "eda", "num_aug": self.num_aug, **self.alphas, "clean": self.clean, "seed": self.seed}

    def config(self) -> dict:
        return {**self.settings(), "wordnet": load_wordnet().get_version() if wordnet_available() else None}

    def __getstate__(self):
        # Picklable for map(num_proc=...) and the datasets fingerprint; WordNet is loaded again in the worker.
        state = self.__dict__.copy()
        state["_eda"] = None
        return state

    def _new_texts(self, text: str, row: int) -> list[str]:
        if self._eda is None:
            self._eda = EDA()
        rng = random.Random(row_seed(self.seed, row))
        return self._eda.augment(text, self.num_aug, rng, clean=self.clean, **self.alphas)

    def augment(self, dataset: Dataset, batch_size: int = 64, num_proc: int | None = None) -> Dataset:
        """`num_aug` EDA rows for every row of `dataset` (which needs a `ClassLabel` label column)."""
        self.label_names = list(check_columns(dataset, self.text_column, self.label_column).names)
        load_wordnet()  # fail early, with the setup hint, rather than inside map
        return self._map(dataset, batch_size=batch_size, num_proc=num_proc, desc="EDA augmentation")


def wordnet_available() -> bool:
    """Whether `load_wordnet()` would succeed (for skipping work that needs it, with a reason)."""
    try:
        load_wordnet()
    except (LookupError, ImportError):
        return False
    return True


__all__ = ["EDA", "STOP_WORDS", "EDAAugmenter", "WordNetNotFoundError", "clean_text", "load_wordnet",
           "wordnet_available", "wordnet_data_dir"]
