"""The paper's baselines: EDA (Wei & Zou, 2019) and back-translation, as `Dataset.map` callables that write
rows like `GPT3MixAugmenter`'s (`text`, `label`, one-hot `soft_labels`). Their heavy dependencies (nltk,
WordNet, translation models) are loaded on first use."""

from .backtranslation import BackTranslationAugmenter
from .eda import EDA, EDAAugmenter, load_wordnet

__all__ = ["EDA", "BackTranslationAugmenter", "EDAAugmenter", "load_wordnet"]
