"""Sampling: class-balanced, seeded sub-samples of labelled rows (the paper's 0.1 % .. 1 % levels)."""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from .columns import check_columns


def class_balanced_sample(
    dataset: Dataset, *, fraction: float | None = None, per_class: int | None = None, seed: int = 0,
    label_column: str = "label", exclude: list[int] | None = None,
) -> Dataset:
    """A seeded sample with the same number of rows from every class.

    Give either `fraction` (of the whole dataset: `round(fraction * len(dataset) / num_classes)` rows per
    class, at least one, as the paper's 0.1 % sub-samples need) or `per_class`. Rows listed in `exclude`
    are never drawn (to carve a validation set from what a training sample left).
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("Give exactly one of fraction= or per_class=.")
    names = check_columns(dataset, None, label_column, rows=False).names
    if fraction is not None:
        # `not 0 < x <= 1` also refuses NaN, for which every comparison is false.
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.")
        per_class = per_class_for(fraction, len(dataset), len(names))
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}.")
    excluded = set(exclude or [])
    labels = np.asarray(dataset[label_column])
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label, name in enumerate(names):
        rows = [i for i in np.flatnonzero(labels == label).tolist() if i not in excluded]
        if len(rows) < per_class:
            raise ValueError(
                f"Class {name!r} has {len(rows)} rows available, fewer than the {per_class} per class asked for: "
                "ask for fewer rows per class (per_class=, fraction=; gpt3mix augment: --sample_per_class, "
                "--sample_fraction)."
            )
        chosen.extend(rng.choice(rows, size=per_class, replace=False).tolist())
    return dataset.select(sorted(chosen))


def per_class_for(fraction: float, num_rows: int, num_classes: int) -> int:
    """The rows per class that `class_balanced_sample(fraction=...)` takes: at least one."""
    return max(1, round(fraction * num_rows / num_classes))
