"""From the LM's label-sequence log-probabilities to the soft label p(y | x')."""

from __future__ import annotations

import math


def normalize_logprobs(logprobs: list[float]) -> list[float]:
    """p(y) ∝ exp(logprobs[y]), computed stably. Raises if no label has any probability."""
    if not logprobs:
        raise ValueError("No label log-probabilities to normalise.")
    top = max(logprobs)
    if not math.isfinite(top):
        raise ValueError(f"Every label has zero probability (log-probabilities {logprobs}): nothing to normalise.")
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return [weight / total for weight in weights]


def one_hot(label: int, num_labels: int) -> list[float]:
    return [1.0 if i == label else 0.0 for i in range(num_labels)]


def top_k_label_logprobs(alternatives: dict[str, float], continuations: list[str]) -> tuple[list[float], float, int]:
    """Label log-probabilities from the top-k alternatives at the label's first token (for servers that cannot
    score prompt tokens).

    A token counts for a label when, without case and surrounding spaces, it is the label word or a prefix of
    it that no other label word shares; all such variants (" Positive", "positive", " pos"...) are summed. A
    label with no variant in the top k gets the largest probability it could have: the smallest of the top k's,
    and at most the mass the top k left over, shared among the missing labels.

    Returns the log-probabilities, the mass the labels' variants covered, and how many labels were missing.

    Example:

    >>> alternatives = {" Positive": -1.2, " negative": -0.9, " the": -2.0}
    >>> logprobs, mass, missing = top_k_label_logprobs(alternatives, [" negative", " positive"])
    """
    words = [c.strip().lower() for c in continuations]
    found = [0.0] * len(words)
    for token, logprob in alternatives.items():
        if logprob is None:
            continue
        piece = token.strip().lower()
        if not piece:
            continue
        owners = [i for i, word in enumerate(words) if word.startswith(piece)]
        if len(owners) == 1:
            found[owners[0]] += math.exp(logprob)
    covered = sum(found)
    missing = [i for i, p in enumerate(found) if p == 0.0]
    if missing:
        probabilities = [math.exp(v) for v in alternatives.values() if v is not None]
        leftover = max(0.0, 1.0 - sum(probabilities))
        bound = min(min(probabilities), leftover / len(missing)) if probabilities else 0.0
        for i in missing:
            found[i] = bound
    logprobs = [math.log(p) if p > 0 else -math.inf for p in found]
    return logprobs, covered, len(missing)
