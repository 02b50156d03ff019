"""The key/value cache of the local engine: the rows decoding together, and the column moves that keep each
row's tokens right-aligned (a shared prompt prefix placed next to each row's own tokens, prompt caches stacked for
label scoring)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from .model_runner import ModelRunner


def move_prefix_next_to_rows(cache: DynamicCache, mask: torch.Tensor, lengths: list[int], prefix: int) -> torch.Tensor:
    """Rearrange a prefilled cache laid out as [prefix | padding | own tokens] per row so that each row's prefix
    sits just before its own tokens (`lengths`: each row's prompt length, prefix included); the new mask.
    """
    # Row i's prefix moves from columns [0, prefix) to just before its own tokens. Keys carry their
    # positions already (rotary embeddings are applied before caching), so moving columns changes nothing.
    rows, width = mask.shape
    columns = torch.arange(width, device=mask.device).expand(rows, -1)
    start = (width - torch.tensor(lengths, device=mask.device))[:, None]
    source = torch.where((columns >= start) & (columns < start + prefix), columns - start, columns)
    source = torch.where(columns < start, 0, source)
    for layer in cache.layers:
        index = source[:, None, :, None].expand(-1, layer.keys.shape[1], -1, layer.keys.shape[-1])
        layer.keys, layer.values = layer.keys.gather(2, index), layer.values.gather(2, index)
    return (columns >= start).to(mask.dtype)


def stack_prompt_caches(
    prompt_caches: list[tuple[list, int]], device: torch.device
) -> tuple[DynamicCache, torch.Tensor]:
    """One left-padded cache and its mask from (per-layer key/values, prompt length) pairs of single rows."""
    width = max(length for _, length in prompt_caches)
    layers = []
    for layer in range(len(prompt_caches[0][0])):
        keys = [F.pad(kv[layer][0], (0, 0, width - length, 0)) for kv, length in prompt_caches]
        values = [F.pad(kv[layer][1], (0, 0, width - length, 0)) for kv, length in prompt_caches]
        layers.append((torch.cat(keys), torch.cat(values)))
    mask = torch.zeros(len(prompt_caches), width, dtype=torch.long, device=device)
    for row, (_, length) in enumerate(prompt_caches):
        mask[row, width - length :] = 1
    return DynamicCache(ddp_cache_data=layers), mask


@dataclass
class DecodeBatch:
    """The rows decoding together. Each row's tokens are right-aligned in the cache (padding on the left), so
    every row advances one column per step and a row's prompt is found from its length alone."""

    rows: list[int]  # each row's index in the prompts
    cache: DynamicCache
    mask: torch.Tensor  # [rows, columns]: 1 where the cache holds one of the row's tokens
    prompt_lengths: list[int]
    lengths: list[int]  # tokens of each row in the cache
    steps: list[int]  # tokens sampled by each row
    logits: torch.Tensor  # [rows, vocab]: the next token's logits

    def merge(self, other: DecodeBatch) -> DecodeBatch:
        width = max(self.mask.shape[1], other.mask.shape[1])
        layers = [
            (torch.cat([pad_left(a.keys, width), pad_left(b.keys, width)]),
             torch.cat([pad_left(a.values, width), pad_left(b.values, width)]))
            for a, b in zip(self.cache.layers, other.cache.layers, strict=True)
        ]
        mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)),
                          F.pad(other.mask, (width - other.mask.shape[1], 0))])
        return DecodeBatch(self.rows + other.rows, DynamicCache(ddp_cache_data=layers), mask,
                           self.prompt_lengths + other.prompt_lengths, self.lengths + other.lengths,
                           self.steps + other.steps, torch.cat([self.logits, other.logits]))

    def select(self, positions: list[int]) -> DecodeBatch:
        """Keep only the rows at `positions` (their cache too), and drop columns that are padding in all."""
        index = torch.tensor(positions, device=self.mask.device)
        self.cache.batch_select_indices(index)
        mask = self.mask[index]
        first = int(mask.any(0).int().argmax())
        if first:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]
            mask = mask[:, first:]

        def pick(values):
            return [values[i] for i in positions]

        return DecodeBatch(pick(self.rows), self.cache, mask, pick(self.prompt_lengths), pick(self.lengths),
                           pick(self.steps), self.logits[index])

    def advance(self, runner: ModelRunner, next_tokens: torch.Tensor):
        """Feed each row its sampled token: the cache grows one column and `logits` moves one step on."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        positions = torch.tensor(self.lengths, device=self.mask.device)[:, None]
        self.logits = runner.forward(
            input_ids=next_tokens[:, None], attention_mask=self.mask, position_ids=positions, cache=self.cache
        )[:, -1, :]
        self.lengths = [length + 1 for length in self.lengths]

    def prompt_cache(self, position: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
        """A copy of the key/values of one row's prompt (per layer, [1, heads, prompt length, dim]), and its
        length: what label scoring continues from."""
        start = self.mask.shape[1] - self.lengths[position]
        stop = start + self.prompt_lengths[position]
        row = slice(position, position + 1)
        kv = [(layer.keys[row, :, start:stop].clone(), layer.values[row, :, start:stop].clone())
              for layer in self.cache.layers]
        return kv, self.prompt_lengths[position]


def pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    """Key or value states [batch, heads, length, dim] padded with zeros on the left to `width` positions."""
    return F.pad(states, (0, 0, width - states.shape[-2], 0))
