"""Prompts into the local engine's key/value cache: the header all prompts share run once, then the prompts in
groups of similar length, each a `DecodeBatch` ready to sample its first token."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from .kv_cache import DecodeBatch, move_prefix_next_to_rows
from .model_runner import ModelRunner

# A token prefix shared by all prompts of a call (GPT3Mix's header) is run once and its key/values reused, when
# it has at least this many tokens. On SST-2 the header is a third of each prompt (32 of ~99 tokens), and prefill
# a third of the engine's time (scripts/profile_engine.py).
_MIN_SHARED_PREFIX = 8
# Prompts are prefilled left-padded to the longest of their group, and the padding costs as much as real tokens.
# A group takes the next shorter prompt while its padding stays within this share of its tokens.
_PREFILL_PADDING = 0.1

# The shared prefix's token ids and its key/values per layer.
SharedPrefix = tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]]]


def shared_prefix(runner: ModelRunner, prompt_ids: list[list[int]]) -> SharedPrefix | None:
    """The token prefix all prompts share (GPT3Mix's header) and its key/values, computed once per call; None
    when it is too short to be worth it. Every prompt keeps at least one token of its own.
    """
    if len(prompt_ids) < 2:
        return None
    length = min(len(ids) for ids in prompt_ids) - 1
    first = prompt_ids[0]
    for ids in prompt_ids[1:]:
        length = next((j for j in range(length) if ids[j] != first[j]), length)
    if length < _MIN_SHARED_PREFIX:
        return None
    cache = DynamicCache()
    runner.forward(input_ids=torch.tensor([first[:length]], device=runner.device), cache=cache, logits_to_keep=1)
    return first[:length], [(layer.keys, layer.values) for layer in cache.layers]


def prefill_groups(
    runner: ModelRunner, indices: list[int], prompt_ids: list[list[int]], shared: SharedPrefix | None
) -> list[DecodeBatch]:
    """Prefill the rows `indices`: those whose prompt starts with the `shared` prefix on its key/values, the
    others (a retry's prompt need not share it) whole; each in groups of similar length (`length_groups`)."""
    prefix = shared[0] if shared is not None else None
    on = [] if prefix is None else [
        i for i in indices if len(prompt_ids[i]) > len(prefix) and prompt_ids[i][: len(prefix)] == prefix
    ]
    off = [i for i in indices if i not in on]
    batches = []
    for rows, reuse, skip in ((on, shared, len(prefix or ())), (off, None, 0)):
        for group in length_groups(rows, [len(prompt_ids[i]) - skip for i in rows]):
            batches.append(prefill(runner, group, [prompt_ids[i] for i in group], reuse))
    return batches


def prefill(
    runner: ModelRunner, indices: list[int], prompt_ids: list[list[int]], shared: SharedPrefix | None = None
) -> DecodeBatch:
    """Run new prompts (left-padded) through the model: a decode batch ready to sample their first token.

    With a `shared` prefix, only each prompt's own tokens are run, after the prefix's cached key/values;
    the prefix columns are then moved next to each row's own tokens, so every row stays right-aligned.
    """
    lengths = [len(p) for p in prompt_ids]
    if shared is None:
        ids, mask = runner.left_pad(prompt_ids)
        cache = DynamicCache()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = runner.forward(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                                logits_to_keep=1)[:, -1, :]
        return DecodeBatch(list(indices), cache, mask, lengths, lengths, [0] * len(indices), logits)
    prefix, prefix_kv = len(shared[0]), shared[1]
    rows = len(prompt_ids)
    ids, own_mask = runner.left_pad([p[prefix:] for p in prompt_ids])
    cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                         for k, v in prefix_kv])
    # [prefix | padding | own tokens]: the padding sits between the two until the columns move below.
    mask = torch.cat([torch.ones(rows, prefix, dtype=own_mask.dtype, device=runner.device), own_mask], dim=1)
    positions = prefix + (own_mask.cumsum(-1) - 1).clamp(min=0)
    logits = runner.forward(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                            logits_to_keep=1)[:, -1, :]
    mask = move_prefix_next_to_rows(cache, mask, lengths, prefix)
    return DecodeBatch(list(indices), cache, mask, lengths, lengths, [0] * len(indices), logits)


def length_groups(rows: list[int], lengths: list[int], padding: float = _PREFILL_PADDING) -> list[list[int]]:
    """`rows` in groups of similar `lengths`, longest first, each padded to its longest by at most `padding` times
    its tokens, so that a left-padded prefill spends little on padding. Equal lengths keep their order.

    Example:

    >>> length_groups([7, 8, 9, 10], [100, 30, 95, 28])
    [[7, 9], [8, 10]]
    """
    groups: list[list[int]] = []
    longest = tokens = 0
    for length, row in sorted(zip(lengths, rows, strict=True), key=lambda pair: -pair[0]):
        if groups and (len(groups[-1]) + 1) * longest <= (1 + padding) * (tokens + length):
            groups[-1].append(row)
            tokens += length
        else:
            groups.append([row])
            longest = tokens = length
    return groups
