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
