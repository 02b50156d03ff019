"""What the baselines share: a seeded `Dataset.map` callable that writes, for every real row, new texts that
depend on (seed, row index) alone, each with the row's label and its one-hot soft label."""

from __future__ import annotations

from datasets import Dataset, Features

from ...data import training_features
from ...labels import one_hot


class RowAugmenter:
    """Base of the baseline augmenters. A subclass sets `text_column`, `label_column` and `label_names` (the
    `augment` method reads them from the dataset) and implements `_new_texts`."""

    text_column: str
    label_column: str
    label_names: list[str] | None

    def _new_texts(self, text: str, row: int) -> list[str]:
        """The new texts made from real row `row` (its index in the mapped dataset)."""
        raise NotImplementedError

    def features(self, label_names: list[str]) -> Features:
        return training_features(label_names)

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, list]:
        if indices is None or isinstance(indices, int):
            raise ValueError(
                f"{type(self).__name__} seeds each row by its index: call dataset.map(augmenter, batched=True, "
                "with_indices=True, ...)."
            )
        if self.label_names is None:
            raise ValueError("Set augmenter.label_names (or call augmenter.augment(dataset)) before mapping.")
        columns = {"text": [], "label": [], "soft_labels": []}
        for index, text, label in zip(indices, batch[self.text_column], batch[self.label_column], strict=True):
            for new_text in self._new_texts(text, index):
                columns["text"].append(new_text)
                columns["label"].append(label)
                columns["soft_labels"].append(one_hot(label, len(self.label_names)))
        return columns

    def _map(self, dataset: Dataset, **map_kwargs) -> Dataset:
        """`dataset` mapped through this augmenter, by row index, into the training columns (`text`, `label`,
        `soft_labels`); `map_kwargs` go to `Dataset.map` (batch size, description, ...)."""
        return dataset.map(
            self,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            features=self.features(self.label_names),
            load_from_cache_file=False,
            **map_kwargs,
        )
