"""Choosing the k real examples of each prompt.

Three strategies, named for what they do:

- `"uniform"` (the paper): the k examples are drawn uniformly, without replacement, from the pool for every
  synthetic row. The mapped row only seeds the draw; it is not shown to the LM unless drawn.
- `"anchored"`: the mapped row (the anchor) plus k - 1 partners drawn uniformly from the pool. The natural
  reading of `Dataset.map`: each real row yields rows "mixed" from itself and others.
- `"class_balanced"`: the anchor plus k - 1 partners, each from a class drawn uniformly among the classes
  with rows (so rare classes appear in prompts as often as frequent ones).

Every random choice is drawn from a generator seeded by (seed, row key, copy, attempt), where the row key is
a hash of the mapped row's content (`content_key`), never its position: a synthetic row is the same whatever
the batch size, number of processes, order or subset of the mapped rows.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable

import numpy as np

STRATEGIES = ("uniform", "anchored", "class_balanced")
# Where the mapped row sits in a prompt's example list when it is not a row of the pool.
ANCHOR = -1


def row_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from `seed` and `keys`, stable across processes and Python versions."""
    payload = ",".join(str(int(part)) for part in (seed, *keys)).encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little") >> 1


def row_rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(row_seed(seed, *keys))


def content_key(text: str, label: str) -> int:
    """A 63-bit key of a labelled row's content (its text exactly as given, and its label name).

    Seeding by content rather than by position is what makes a synthetic row a function of its real row:
    `dataset.select(...)`, `.shuffle()`, `.filter()` or another batch size leave it unchanged. The label
    enters by name, so two datasets with the same label names but another label order agree.
    """
    payload = f"{len(text)}:{text}\x1f{label}".encode()
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little") >> 1


class ExampleSelector:
    """Picks the examples of each prompt from the pool of real rows.

    Args:
        labels (`list[int]`): the label id of every row of the pool.
        num_labels (`int`): the number of classes.
        k (`int`): examples per prompt, the anchor included where the strategy shows it (the paper: 2).
        strategy (`str`): `"uniform"` (the paper), `"anchored"` or `"class_balanced"` (see the module's
            docstring).

    Example:

    >>> selector = ExampleSelector(labels=[0, 0, 1, 1], num_labels=2, k=2, strategy="anchored")
    >>> selector.select(row_rng(0, 0))
    [-1, 1]
    """

    def __init__(self, labels: list[int], num_labels: int, k: int = 2, strategy: str = "anchored"):
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown selection strategy {strategy!r}; choose one of {STRATEGIES}.")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k (examples per prompt) must be an integer >= 1, got {k!r}.")
        if k > len(labels):
            raise ValueError(
                f"k={k} examples per prompt, but the pool has only {len(labels)} rows: lower k or add rows."
            )
        self.k = k
        self.strategy = strategy
        self.num_rows = len(labels)
        by_class: list[list[int]] = [[] for _ in range(num_labels)]
        for row, label in enumerate(labels):
            by_class[label].append(row)
        self._by_class = [np.asarray(rows, dtype=np.int64) for rows in by_class]
        self._classes_with_rows = [c for c, rows in enumerate(by_class) if rows]

    def select(self, rng: np.random.Generator, exclude: Iterable[int] = ()) -> list[int]:
        """The prompt's examples in the order they appear: pool row ids, and `ANCHOR` (-1) for the mapped row.

        Args:
            rng (`np.random.Generator`): the synthetic row's own generator (`row_rng`).
            exclude (`Iterable[int]`): pool rows not to use as partners while others are left (the copies of
                the mapped row in the pool, so that a prompt does not show the same example twice).
        """
        if self.strategy == "uniform":
            return [int(i) for i in rng.choice(self.num_rows, size=self.k, replace=False)]
        excluded = set(exclude)
        partners: list[int] = []
        while len(partners) < self.k - 1:
            candidate = self._draw(rng)
            used = excluded.union(partners)
            # Distinct partners while the pool has any left; past that, repeats (a pool smaller than k).
            if candidate not in used or len(used) >= self.num_rows:
                partners.append(candidate)
        chosen = [ANCHOR, *partners]
        order = rng.permutation(len(chosen))
        return [chosen[i] for i in order]

    def _draw(self, rng: np.random.Generator) -> int:
        if self.strategy == "anchored":
            return int(rng.integers(self.num_rows))
        rows = self._by_class[self._classes_with_rows[int(rng.integers(len(self._classes_with_rows)))]]
        return int(rows[rng.integers(len(rows))])


def scoring_orders(k: int, m: int) -> list[tuple[int, ...]]:
    """The orders of a prompt's k examples under which the debiased label scores a text: `m` permutations of
    `range(k)`, the prompt's own order first, then its rotations (so that with m = k each example is last
    once), then the other permutations in lexicographic order.

    Example:

    >>> scoring_orders(3, 4)
    [(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1)]
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (examples per prompt) must be an integer >= 1, got {k!r}.")
    if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= math.factorial(k):
        raise ValueError(
            f"debias_orders must be an integer in [1, {math.factorial(k)}] (the {k}! orders of {k} examples), "
            f"got {m!r}: lower it, or raise k."
        )
    orders = [tuple((i + shift) % k for i in range(k)) for shift in range(k)]
    orders += [order for order in itertools.permutations(range(k)) if order not in orders]
    return orders[:m]
