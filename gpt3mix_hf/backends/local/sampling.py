"""Token sampling for many rows at once, where each row's draw depends only on its own seed and step.

A row's randomness comes from a counter-based generator (SplitMix64 keyed by the row's seed, counted by the
step), so it does not depend on which rows share the batch, in which slot, or in which process, and every
row's numbers are computed in one vectorised call.

* Without a nucleus (`top_p=1`): one uniform number per row, and an inverse-CDF draw over the vocabulary in
  token-id order. Round-off in the logits (other neighbours, other kernels) only nudges the interval
  boundaries, so it changes a draw only when the uniform falls within that round-off of one.
* With a nucleus: the nucleus is found from a top-k candidate set grown until it holds the nucleus (exact,
  no sort of the whole vocabulary), and the token is the winner of an exponential race among the candidates
  (`argmax p_i / E_i`, the Gumbel-max trick), with `E_i` keyed by (seed, step, token id). A token that
  enters or leaves the nucleus under round-off then changes the draw only if it would have won; an
  inverse-CDF draw would shift every interval after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
# The first candidate set for top-p; it grows at least 4x at a time while a row's nucleus is not in it.
_FIRST_TOP_K = 64


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche (each input bit flips about half of
    the output bits). Unsigned numpy arithmetic wraps modulo 2**64, as the algorithm wants."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _stream_bits(seeds: Sequence[int], steps: Sequence[int]) -> np.ndarray:
    """64 random bits per row: the `steps[i]`-th output of SplitMix64 started from a mixed `seeds[i]`."""
    if len(seeds) != len(steps):
        raise ValueError(f"Got {len(seeds)} seeds but {len(steps)} steps: give one step per seed.")
    keys = _mix64(np.array([int(seed) & _MASK64 for seed in seeds], dtype=np.uint64))
    counters = np.asarray(steps, dtype=np.uint64) + np.uint64(1)
    return _mix64(keys + counters * _GOLDEN_GAMMA)


def _to_unit(bits: np.ndarray) -> np.ndarray:
    # The top 53 bits fill a float64 mantissa exactly: multiples of 2**-53 in [0, 1).
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def counter_uniforms(seeds: Sequence[int], steps: Sequence[int]) -> torch.Tensor:
    """One uniform number in [0, 1) per row, a function of (`seeds[i]`, `steps[i]`) alone.

    A counter-based stream: any (seed, step) is reached directly, for all rows in one vectorised call.

    Args:
        seeds (`Sequence[int]`): one seed per row, any Python int (taken modulo 2**64).
        steps (`Sequence[int]`): one step (>= 0) per row.

    Returns:
        `torch.Tensor`: float64, shape `[len(seeds)]`.

    Example:

    >>> counter_uniforms([7, 7, 8], [0, 1, 0])  # three different numbers; the same ones on every call
    """
    return torch.from_numpy(_to_unit(_stream_bits(seeds, steps)))


def race_noise(seeds: Sequence[int], steps: Sequence[int], token_ids: torch.Tensor) -> torch.Tensor:
    """Exponential(1) numbers, one per (row, token): a function of (`seeds[i]`, `steps[i]`, token id) alone.

    Args:
        token_ids (`torch.Tensor`): `[rows, k]` token ids.

    Returns:
        `torch.Tensor`: float64 `[rows, k]`, on the device of `token_ids`.
    """
    keys = _stream_bits(seeds, steps)
    tokens = token_ids.cpu().numpy().astype(np.uint64)
    bits = _mix64(keys[:, None] + (tokens + np.uint64(1)) * _GOLDEN_GAMMA)
    # 1 - u lies in (0, 1], so the logarithm is finite.
    return torch.from_numpy(-np.log1p(-_to_unit(bits))).to(token_ids.device)


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

    `torch.topk` takes k candidates per row, k growing (at least 4x) for the rows whose k candidates do not reach
    `top_p` yet; then no token outside a row's candidates can belong to its nucleus, so the set is the one a full
    sort gives. Rows grow on their own, so one flat distribution does not send the whole batch to a full sort.

    Returns:
        `(candidate_probs, candidate_ids)`, both `[rows, k]` (k: the most any row needed), most likely first;
        tokens outside a row's nucleus, and the padding of rows that needed fewer, have probability 0.
    """
    rows, vocab = probs.shape
    candidate_probs = probs.new_zeros(rows, 0)
    candidate_ids = torch.zeros(rows, 0, dtype=torch.long, device=probs.device)
    short = torch.arange(rows, device=probs.device)  # rows whose nucleus is not found yet
    k = min(_FIRST_TOP_K, vocab)
    while len(short):
        if k == vocab:
            top_probs, top_ids = probs[short].sort(dim=-1, descending=True)
        else:
            top_probs, top_ids = probs[short].topk(k, dim=-1)
        cumulative = top_probs.double().cumsum(-1)
        missing = top_p - cumulative[:, -1]
        found = missing <= 0 if k < vocab else torch.ones_like(missing, dtype=torch.bool)
        # A token stays when the mass before it is still short of top_p.
        keep = cumulative - top_probs.double() < top_p
        width = max(k, candidate_probs.shape[1])
        candidate_probs = F.pad(candidate_probs, (0, width - candidate_probs.shape[1]))
        candidate_ids = F.pad(candidate_ids, (0, width - candidate_ids.shape[1]))
        candidate_probs[short[found], :k] = (top_probs * keep)[found]
        candidate_ids[short[found], :k] = top_ids[found]
        if bool(found.all()):
            break
        # Every token left out has at most the k-th probability, so a row short of `missing` mass needs at
        # least missing / p_k more candidates: jump there (a flat distribution goes to a full sort at once).
        still = ~found
        needed = k + int((missing[still] / top_probs[still, -1].double().clamp(min=1e-30)).max().ceil())
        k = max(4 * k, needed)
        # Past a quarter of the vocabulary, one full sort costs less than more growing.
        k = vocab if 4 * k > vocab else k
        short = short[still]
    return candidate_probs, candidate_ids


def sample_tokens(
    logits: torch.Tensor,
    seeds: Sequence[int],
    steps: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """One token per row of `logits`, drawn with that row's (seed, step) alone.

    Args:
        logits (`torch.Tensor`): `[rows, vocab]`, any float dtype.
        seeds (`Sequence[int]`): one seed per row.
        steps (`Sequence[int]`): one step per row (how many tokens the row has sampled before).
        temperature (`float`): softmax temperature; 0 takes the argmax.
        top_p (`float`): nucleus mass in (0, 1].

    Returns:
        `torch.LongTensor`: `[rows]`, on the device of `logits`.

    Example:

    >>> sample_tokens(torch.randn(2, 10), seeds=[3, 4], steps=[0, 0], top_p=0.9)
    """
    if logits.dim() != 2 or not len(seeds) == len(steps) == logits.shape[0]:
        raise ValueError(
            f"Expected logits [rows, vocab] and one seed and one step per row, got logits "
            f"{tuple(logits.shape)}, {len(seeds)} seeds and {len(steps)} steps."
        )
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"Need temperature >= 0 and top_p in (0, 1], got {temperature} and {top_p}.")
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1:
        return _inverse_cdf(probs, counter_uniforms(seeds, steps))
    candidate_probs, candidate_ids = nucleus_candidates(probs, top_p)
    winners = (candidate_probs.double() / race_noise(seeds, steps, candidate_ids)).argmax(-1, keepdim=True)
    return candidate_ids.gather(-1, winners).squeeze(-1)
