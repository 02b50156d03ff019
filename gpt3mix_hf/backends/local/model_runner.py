"""The forward pass of the local engine: a causal LM and its tokenizer, run on a key/value cache."""

from __future__ import annotations

import inspect
from functools import cached_property

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase


class ModelRunner:
    """Runs `model` on token ids and a key/value cache, and pads token sequences with `tokenizer`'s pad token.

    The generation side (`prefill.py`, `kv_cache.py`) and the scoring side (`scoring.py`) of
    `TransformersBackend` share it; a float32 twin that scores a bfloat16 model's rows has its own.

    Args:
        model (`PreTrainedModel`): a causal LM, in eval mode.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer, with a pad token.

    Example:

    >>> runner = ModelRunner(model.eval(), tokenizer)
    >>> ids, mask = runner.left_pad([[1, 2, 3], [4]])
    >>> logits = runner.forward(DynamicCache(), input_ids=ids, attention_mask=mask)
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        self.model = model
        self.tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        return self.model.device

    def forward(self, cache: DynamicCache, **inputs) -> torch.Tensor:
        """The model's logits for `inputs` (`input_ids`, `attention_mask`, ...), reading and extending `cache`."""
        inputs[self._cache_argument] = cache
        return self.model(**inputs).logits

    @cached_property
    def _cache_argument(self) -> str:
        # transformers renamed `past_key_values` to `cache` during 5.x; accept both generations.
        parameters = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    def left_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids padded on the left to the longest sequence, and their mask (1 on real tokens)."""
        width = max(len(sequence) for sequence in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, sequence in enumerate(sequences):
            ids[i, width - len(sequence) :] = torch.tensor(sequence)
            mask[i, width - len(sequence) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def right_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids padded on the right to the longest sequence, and their mask (1 on real tokens)."""
        width = max(len(sequence) for sequence in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, sequence in enumerate(sequences):
            ids[i, : len(sequence)] = torch.tensor(sequence)
            mask[i, : len(sequence)] = 1
        return ids.to(self.device), mask.to(self.device)
