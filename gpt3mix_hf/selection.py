"""Choosing the k real examples of each prompt.

Every random choice is drawn from a generator seeded by (seed, anchor row, copy, attempt), never from
a stream shared across rows: a synthetic row is the same whatever the batch size or number of processes.
"""

from __future__ import annotations

import hashlib

import numpy as np

STRATEGIES = ("uniform", "class_balanced")


def row_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from `seed` and `keys`, stable across processes and Python versions."""
    payload = ",".join(str(int(part)) for part in (seed, *keys)).encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little") >> 1


def row_rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(row_seed(seed, *keys))


class ExampleSelector:
    """Picks the k - 1 partners that join an anchor row in a prompt, from the whole pool of real rows.

    Args:
        labels (`list[int]`): the label id of every row of the pool.
        num_labels (`int`): the number of classes.
        k (`int`): examples per prompt, the anchor included (the paper: 2).
        strategy (`str`): `"uniform"` (the paper: partners uniformly from the pool) or `"class_balanced"`
            (first a class uniformly among those with rows, then a row of that class).

    Example:

    >>> selector = ExampleSelector(labels=[0, 0, 1, 1], num_labels=2, k=2)
    >>> selector.select(anchor=0, rng=row_rng(0, 0))
    [0, 1]
    """

    def __init__(self, labels: list[int], num_labels: int, k: int = 2, strategy: str = "uniform"):
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown selection strategy {strategy!r}; choose one of {STRATEGIES}.")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k (examples per prompt) must be an integer >= 1, got {k!r}.")
        if k > len(labels):
            raise ValueError(
                f"k={k} examples per prompt, but the dataset has only {len(labels)} rows: lower k or add rows."
            )
        self.k = k
        self.strategy = strategy
        self.num_rows = len(labels)
        by_class: list[list[int]] = [[] for _ in range(num_labels)]
        for row, label in enumerate(labels):
            by_class[label].append(row)
        self._by_class = [np.asarray(rows, dtype=np.int64) for rows in by_class]
        self._classes_with_rows = [c for c, rows in enumerate(by_class) if rows]

    def select(self, anchor: int, rng: np.random.Generator) -> list[int]:
        """Row ids of the prompt's examples, the anchor among them, in the order they appear in the prompt."""
        chosen = [anchor]
        while len(chosen) < self.k:
            if self.strategy == "uniform":
                candidate = int(rng.integers(self.num_rows))
            else:
                rows = self._by_class[self._classes_with_rows[int(rng.integers(len(self._classes_with_rows)))]]
                candidate = int(rows[rng.integers(len(rows))])
            if candidate not in chosen or self._exhausted(chosen):
                chosen.append(candidate)
        order = rng.permutation(len(chosen))
        return [chosen[i] for i in order]

    def _exhausted(self, chosen: list[int]) -> bool:
        # Distinct partners are drawn while there are any left to draw from.
        return len(set(chosen)) >= self.num_rows
