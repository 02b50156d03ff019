"""Back-translation (Sennrich et al., 2016; Edunov et al., 2018) through any pair of Hugging Face translation
models, as a seeded `Dataset.map` callable. The default pair is MarianMT English -> German -> English.

For `num_aug` rows per real row, the forward model samples `num_aug` translations of the row and the
backward model translates each one back (beam search by default). Sampling is seeded per row, so a row's
paraphrases depend on (seed, row) alone, not on the batch it was mapped in.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch
from datasets import Dataset
from transformers.utils import logging

from ...backends.local.machine import resolve_device
from ...data import check_columns
from ...selection import row_seed
from ...validation import check_arguments
from .rows import RowAugmenter

logger = logging.get_logger(__name__)

DEFAULT_FORWARD = "Helsinki-NLP/opus-mt-en-de"
DEFAULT_BACKWARD = "Helsinki-NLP/opus-mt-de-en"


class BackTranslationAugmenter(RowAugmenter):
    """Paraphrases rows by translating them to a pivot language and back.

    Args:
        forward_model, backward_model (`PreTrainedModel`): sequence-to-sequence translation models
            (source -> pivot, pivot -> source), e.g. `MarianMTModel`.
        forward_tokenizer, backward_tokenizer (`PreTrainedTokenizerBase`): their tokenizers.
        num_aug (`int`): paraphrases per real row.
        temperature (`float`): sampling temperature of the forward translation (sampling gives `num_aug`
            different pivots; Edunov et al. 2018 found sampled back-translation the most useful).
        top_k (`int`): forward sampling keeps the `top_k` most likely tokens (0: no limit).
        num_beams (`int`): beams of the backward translation.
        max_new_tokens (`int`): most tokens per translation.
        seed (`int`): row i's sampling is seeded by (seed, i).
        source (`dict`, *optional*): the `from_pretrained` arguments, recorded in `config()`.

    Example:

    >>> augmenter = BackTranslationAugmenter.from_pretrained()  # opus-mt en-de and de-en from the Hub
    >>> synthetic = augmenter.augment(train, num_aug=2, seed=0)
    """

    def __init__(self, forward_model, forward_tokenizer, backward_model, backward_tokenizer, *, num_aug: int = 1,
                 temperature: float = 1.0, top_k: int = 0, num_beams: int = 4, max_new_tokens: int = 128,
                 seed: int = 0, text_column: str = "text", label_column: str = "label", source: dict | None = None):
        check_arguments(BackTranslationAugmenter.__init__, {
            "num_aug": num_aug, "temperature": temperature, "top_k": top_k, "num_beams": num_beams,
            "max_new_tokens": max_new_tokens, "seed": seed, "text_column": text_column, "label_column": label_column,
            "source": source,
        })
        for name, model in (("forward_model", forward_model), ("backward_model", backward_model)):
            if not getattr(model.config, "is_encoder_decoder", False):
                raise ValueError(
                    f"{name} ({type(model).__name__}) is not a sequence-to-sequence model: back-translation needs "
                    "translation models such as MarianMTModel (AutoModelForSeq2SeqLM)."
                )
        if not isinstance(num_aug, int) or num_aug < 1:
            raise ValueError(f"num_aug (paraphrases per real row) must be an integer >= 1, got {num_aug!r}.")
        # `not x > 0` also refuses NaN; infinity would sample uniformly over the vocabulary.
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 < temperature < math.inf:
            raise ValueError(
                f"temperature must be a finite number > 0 (the forward translation samples), got {temperature!r}."
            )
        limits = (("top_k", top_k, 0), ("num_beams", num_beams, 1), ("max_new_tokens", max_new_tokens, 1))
        for name, value, least in limits:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}.")
        self.forward_model, self.forward_tokenizer = forward_model.eval(), forward_tokenizer
        self.backward_model, self.backward_tokenizer = backward_model.eval(), backward_tokenizer
        self.num_aug, self.temperature, self.top_k, self.num_beams = num_aug, temperature, top_k, num_beams
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.text_column, self.label_column = text_column, label_column
        self.source = source
        self.label_names: list[str] | None = None

    @classmethod
    def from_pretrained(cls, forward: str = DEFAULT_FORWARD, backward: str = DEFAULT_BACKWARD,
                        revision: str | None = None, device: str | None = None, **kwargs) -> BackTranslationAugmenter:
        """Load both translation models (Hub ids or folders) with `AutoModelForSeq2SeqLM` and `AutoTokenizer`.

        Raises the loader's `OSError` when a model cannot be found (e.g. offline without a local copy).
        """
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        device = resolve_device(device)
        loaded = []
        for name in (forward, backward):
            tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
            model = AutoModelForSeq2SeqLM.from_pretrained(name, revision=revision).to(device)
            loaded += [model, tokenizer]
        source = {"forward": forward, "backward": backward, "revision": revision}
        return cls(*loaded, source=source, **kwargs)

    def config(self) -> dict:
        models = self.source or {
            "forward": self.forward_model.config.name_or_path, "backward": self.backward_model.config.name_or_path
        }
        return {"method": "backtranslation", **models, "num_aug": self.num_aug, "temperature": self.temperature,
                "top_k": self.top_k, "num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed}

    @torch.inference_mode()
    def _translate(self, model, tokenizer, texts: list[str], **generate_kwargs) -> list[str]:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(model.device)
        output = model.generate(**encoded, max_new_tokens=self.max_new_tokens, **generate_kwargs)
        return tokenizer.batch_decode(output, skip_special_tokens=True)

    def paraphrase(self, text: str, row: int) -> list[str]:
        """`num_aug` back-translations of `text`, seeded by (seed, row)."""
        # A forked RNG keeps the caller's torch random state untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(row_seed(self.seed, row))
            # num_beams=1: independent samples (Edunov et al., 2018). The opus-mt models' generation config says 4,
            # which would make them beam samples, and refuse num_aug > 4.
            pivots = self._translate(
                self.forward_model, self.forward_tokenizer, [text], do_sample=True, temperature=self.temperature,
                top_k=self.top_k, num_return_sequences=self.num_aug, num_beams=1,
            )
            return self._translate(
                self.backward_model, self.backward_tokenizer, pivots, do_sample=False, num_beams=self.num_beams
            )

    def _new_texts(self, text: str, row: int) -> list[str]:
        return self.paraphrase(text, row)

    def augment(self, dataset: Dataset, num_aug: int | None = None, seed: int | None = None,
                batch_size: int = 16) -> Dataset:
        """`num_aug` back-translated rows (`text`, `label`, one-hot `soft_labels`) per row of `dataset`."""
        if num_aug is not None:
            if not isinstance(num_aug, int) or num_aug < 1:
                raise ValueError(f"num_aug must be an integer >= 1, got {num_aug!r}.")
            self.num_aug = num_aug
        if seed is not None:
            self.seed = seed
        self.label_names = list(check_columns(dataset, self.text_column, self.label_column).names)
        # An explicit fingerprint: hashing the callable would hash both models' weights.
        fingerprint = hashlib.sha256(
            json.dumps([self.config(), dataset._fingerprint], default=str).encode()
        ).hexdigest()[:16]
        return self._map(dataset, batch_size=batch_size, new_fingerprint=fingerprint, desc="Back-translation")
