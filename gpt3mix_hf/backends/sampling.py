"""Token sampling for many rows at once, where each row's draw depends only on its own seed and step.

A row's randomness is one uniform number per step from a counter-based generator (SplitMix64 keyed by the
row's seed, counted by the step), so it does not depend on which rows share the batch, in which slot, or in
which process. The token is then drawn by inverse CDF: the first token whose cumulative probability passes
the uniform. Nucleus (top-p) sampling looks only at a top-k candidate set grown until it holds the nucleus,
which is exact and avoids sorting the whole vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
# The first candidate set for top-p; it grows 4x at a time for rows whose nucleus it does not hold.
_FIRST_TOP_K = 64


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche (each input bit flips about half of
    the output bits). Unsigned numpy arithmetic wraps modulo 2**64, as the algorithm wants."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def counter_uniforms(seeds: Sequence[int], steps: Sequence[int]) -> torch.Tensor:
    """One uniform number in [0, 1) per row, a function of (`seeds[i]`, `steps[i]`) alone.

    It is the `steps[i]`-th output of SplitMix64 started from a mixed `seeds[i]`: a counter-based stream, so
    any (seed, step) is reached directly, for all rows in one vectorised call.

    Args:
        seeds (`Sequence[int]`): one seed per row, any Python int (taken modulo 2**64).
        steps (`Sequence[int]`): one step (>= 0) per row.

    Returns:
        `torch.Tensor`: float64, shape `[len(seeds)]`.

    Example:

    >>> counter_uniforms([7, 7, 8], [0, 1, 0])  # three different numbers; the same ones on every call
    """
    if len(seeds) != len(steps):
        raise ValueError(f"Got {len(seeds)} seeds but {len(steps)} steps: give one step per seed.")
    keys = _mix64(np.array([int(seed) & _MASK64 for seed in seeds], dtype=np.uint64))
    counters = np.asarray(steps, dtype=np.uint64) + np.uint64(1)
    bits = _mix64(keys + counters * _GOLDEN_GAMMA)
    # The top 53 bits fill a float64 mantissa exactly: multiples of 2**-53 in [0, 1).
    return torch.from_numpy((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def _inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose cumulative probability exceeds `uniform * total` (zero-probability
    entries are never chosen)."""
    cdf = probs.double().cumsum(-1)
    targets = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
    chosen = torch.searchsorted(cdf, targets, right=True).squeeze(-1)
    # A uniform within round-off of 1 could land one past the end.
    return chosen.clamp(max=probs.shape[-1] - 1)


def nucleus_candidates(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The nucleus of each row without sorting the vocabulary: the smallest set of most likely tokens whose
    mass reaches `top_p` (the most likely token always stays).

    `torch.topk` takes k candidates, k growing 4x until every row's k candidates reach `top_p`; then no token
    outside them can belong to its row's nucleus, so the set is the one a full sort gives.

    Returns:
        `(candidate_probs, candidate_ids)`, both `[rows, k]`, most likely first; tokens outside a row's
        nucleus have probability 0.
    """
    vocab = probs.shape[-1]
    k = min(_FIRST_TOP_K, vocab)
    while True:
        top_probs, top_ids = probs.topk(k, dim=-1)
        cumulative = top_probs.double().cumsum(-1)
        if k == vocab or bool((cumulative[:, -1] >= top_p).all()):
            break
        k = min(4 * k, vocab)
    # A token stays when the mass before it is still short of top_p.
    keep = cumulative - top_probs.double() < top_p
    return top_probs * keep, top_ids


def sample_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0
) -> torch.Tensor:
    """One token per row of `logits`, drawn with that row's uniform number.

    Args:
        logits (`torch.Tensor`): `[rows, vocab]`, any float dtype.
        uniforms (`torch.Tensor`): `[rows]`, in [0, 1) (see `counter_uniforms`).
        temperature (`float`): softmax temperature; 0 takes the argmax.
        top_p (`float`): nucleus mass in (0, 1].

    Returns:
        `torch.LongTensor`: `[rows]`, on the device of `logits`.
    """
    if logits.dim() != 2 or uniforms.shape != logits.shape[:1]:
        raise ValueError(
            f"Expected logits [rows, vocab] and one uniform per row, got {tuple(logits.shape)} and "
            f"{tuple(uniforms.shape)}."
        )
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"Need temperature >= 0 and top_p in (0, 1], got {temperature} and {top_p}.")
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1:
        return _inverse_cdf(probs, uniforms)
    candidate_probs, candidate_ids = nucleus_candidates(probs, top_p)
    return candidate_ids.gather(-1, _inverse_cdf(candidate_probs, uniforms).unsqueeze(-1)).squeeze(-1)
