"""Augmenting a whole dataset: duplicate numbering, checkpointed shards, progress and the run's report.

`GPT3MixAugmenter.augment` maps the augmenter (`augmenter.py`) over a `Dataset`, optionally a shard at a time
with each finished shard saved, and moves the rows whose every attempt failed to an `AugmentationReport`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, concatenate_datasets
from datasets.fingerprint import Hasher
from datasets.utils.logging import is_progress_bar_enabled
from tqdm.auto import tqdm
from transformers.utils import logging

from .data import align_label_names, check_columns, read_labelled_rows
from .state import check_folder_path, load_rows, read_json, save_rows, write_json
from .validation import check_arguments

logger = logging.get_logger(__name__)

# An optional input column: how many earlier rows have the same (text, label). `augment()` adds it so that
# duplicated real rows get distinct synthetic rows; see `number_duplicates`.
OCCURRENCE_COLUMN = "gpt3mix_occurrence"


@dataclass
class AugmentationReport:
    """What one `augment` run did, for the CLI summary, dataset cards and provenance."""

    rows_requested: int
    rows_written: int
    failed_rows: int
    parse_failures: int
    generated_tokens: int
    seconds: float
    failures: list[dict]
    # The quality measurements of the rows (`gpt3mix_hf.quality.quality_report`).
    quality: dict | None = field(default=None)

    @property
    def samples_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")

    @property
    def parse_failure_rate(self) -> float:
        attempts = self.rows_written + self.parse_failures
        return self.parse_failures / attempts if attempts else 0.0

    def to_dict(self) -> dict:
        summary = asdict(self)
        summary.pop("failures")
        summary["samples_per_second"] = self.samples_per_second
        summary["parse_failure_rate"] = self.parse_failure_rate
        return summary


class AugmentRunMixin:
    """`GPT3MixAugmenter.augment` and its helpers: a whole dataset through the augmenter's `Dataset.map`."""

    def augment(
        self,
        dataset: Dataset | DatasetDict | None = None,
        *,
        split: str | None = None,
        pool: Dataset | None = None,
        batch_size: int = 16,
        num_proc: int | None = None,
        load_from_cache_file: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        shard_size: int = 256,
    ) -> Dataset:
        """The synthetic rows for the rows of `dataset` (default: the pool) as a `Dataset`.

        Rows whose every attempt failed are left out of the result and kept, with their generations and
        reasons, in `self.report.failures`; `self.report` also counts rows, parse failures, tokens and time.

        Args:
            dataset (`Dataset` or `DatasetDict`, *optional*): the real rows to augment, with the text and label
                columns and the pool's label names. A `DatasetDict` needs `split`.
            split (`str`, *optional*): the split of a `DatasetDict` to augment.
            pool (`Dataset`, *optional*): draw the prompts' other examples from these rows instead of the pool
                the augmenter was built with.
            batch_size, num_proc, load_from_cache_file: passed to `Dataset.map`.
            checkpoint_dir (`str`, *optional*): make the rows `shard_size` real rows at a time and save each
                finished shard there: a run that stops half-way keeps its shards, and the same call resumes
                from them.
            shard_size (`int`): real rows per saved shard.
        """
        check_arguments(AugmentRunMixin.augment, {"split": split, "batch_size": batch_size, "num_proc": num_proc,
                                                  "load_from_cache_file": load_from_cache_file,
                                                  "shard_size": shard_size}, owner="augment")
        if pool is not None:
            names = list(read_labelled_rows(pool, self.text_column, self.label_column)[2].names)
            if sorted(names) != sorted(self.label_names):
                raise ValueError(
                    f"The pool has the labels {names}, the augmenter {self.label_names}: they are not the same "
                    "classes. Build a new augmenter with this pool."
                )
            pool = align_label_names(pool, self.label_column, self.label_names)
            other = type(self)(self.backend, pool, **self._settings())
            synthetic = other.augment(
                dataset if dataset is not None else self.pool_dataset(), split=split, batch_size=batch_size,
                num_proc=num_proc, load_from_cache_file=load_from_cache_file, checkpoint_dir=checkpoint_dir,
                shard_size=shard_size,
            )
            self.report = other.report
            return synthetic
        dataset = self._dataset_to_augment(dataset, split)
        start = time.perf_counter()
        map_kwargs = {"batch_size": batch_size, "num_proc": num_proc, "load_from_cache_file": load_from_cache_file}
        numbered = number_duplicates(dataset, self.text_column, self.label_column)
        # Switched with the `datasets` progress bars; worker processes (num_proc > 1) cannot reach it.
        self._rows_bar = tqdm(desc="GPT3Mix rows written", unit="row",
                              disable=(num_proc or 1) > 1 or not is_progress_bar_enabled())
        try:
            if checkpoint_dir is None:
                generated = self._map(numbered, **map_kwargs)
            else:
                generated = self._augment_in_shards(numbered, Path(checkpoint_dir), shard_size, **map_kwargs)
        finally:
            self._rows_bar.close()
            del self._rows_bar
        seconds = time.perf_counter() - start
        labels = np.asarray(generated["label"])
        failed = generated.select(np.flatnonzero(labels < 0))
        synthetic = generated.select(np.flatnonzero(labels >= 0))
        self.report = AugmentationReport(
            rows_requested=len(generated),
            rows_written=len(synthetic),
            failed_rows=len(failed),
            parse_failures=sum(len(attempts) for attempts in generated["failed_attempts"]),
            generated_tokens=int(np.sum(generated["generated_tokens"])),
            seconds=seconds,
            failures=failed.to_list(),
        )
        from .quality import quality_report

        self.report.quality = quality_report(
            synthetic, self._texts, self._labels, label_mode=self.label_mode, num_labels=len(self.label_names),
            dropped_failures=sum(len(attempts) for attempts in failed["failed_attempts"]),
        )
        if len(failed):
            logger.warning(
                f"{len(failed)} synthetic rows failed all {self.max_attempts} attempts; see augmenter.report."
            )
        return synthetic

    def _dataset_to_augment(self, dataset, split: str | None) -> Dataset:
        if dataset is None:
            return self.pool_dataset()
        if isinstance(dataset, IterableDataset | IterableDatasetDict):
            raise TypeError(
                "augment() needs a Dataset it can count and save. For a streaming dataset, map the augmenter: "
                "dataset.map(augmenter, batched=True, remove_columns=dataset.column_names, "
                "features=augmenter.features)."
            )
        if isinstance(dataset, DatasetDict):
            if split is None:
                raise TypeError(
                    f"augment() takes one split, got a DatasetDict with the splits {list(dataset)}: pass "
                    f"dataset[{next(iter(dataset), 'train')!r}], or split=<the split's name>."
                )
            if split not in dataset:
                raise ValueError(f"The DatasetDict has no split {split!r}; it has {list(dataset)}.")
            dataset = dataset[split]
        elif split is not None:
            raise ValueError(f"split={split!r} is for a DatasetDict; the dataset given is already one split.")
        if not isinstance(dataset, Dataset):
            raise TypeError(f"augment() needs a datasets.Dataset, got {type(dataset).__name__}.")
        feature = check_columns(dataset, self.text_column, self.label_column)
        if sorted(feature.names) == sorted(self.label_names):
            # The same classes in another order: re-encoded by name, so that a prompt shows each row's own label.
            return align_label_names(dataset, self.label_column, self.label_names)
        raise ValueError(
            f"The dataset's labels are {feature.names}, the pool's {self.label_names}: they are not the same classes. "
            "Augment a dataset of the pool's task, or build the augmenter with a pool of this one."
        )

    def _map(self, dataset: Dataset, **map_kwargs) -> Dataset:
        return dataset.map(
            self,
            batched=True,
            remove_columns=dataset.column_names,
            features=self.features,
            desc="GPT3Mix augmentation",
            **map_kwargs,
        )

    def _augment_in_shards(self, dataset: Dataset, folder: Path, shard_size: int, **map_kwargs) -> Dataset:
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"shard_size must be a whole number >= 1, got {shard_size!r}.")
        check_folder_path(folder, "checkpoint_dir")
        columns = [self.text_column, self.label_column, OCCURRENCE_COLUMN]
        manifest = {
            "augmenter": Hasher.hash([self.config(), self._texts, self._labels]),
            "dataset": Hasher.hash(dataset.select_columns(columns).to_dict()),
            "shard_size": shard_size,
        }
        manifest_path = folder / "manifest.json"
        if manifest_path.exists():
            if read_json(manifest_path) != manifest:
                raise ValueError(
                    f"{folder} holds the shards of a run with other settings or data: pass another "
                    "checkpoint_dir, or delete that folder to start over."
                )
        else:
            write_json(manifest_path, manifest)
        shards = []
        num_shards = math.ceil(len(dataset) / shard_size)
        for number in range(num_shards):
            path = folder / f"shard-{number:05d}-of-{num_shards:05d}"
            saved = load_rows(path)
            if saved is None:
                begin = number * shard_size
                part = dataset.select(range(begin, min(begin + shard_size, len(dataset))))
                shard = self._map(part, **map_kwargs)
                # A shard folder counts as done only once its meta.json is written, after the rows.
                save_rows(path, shard, {"rows": [begin, begin + len(part)], "manifest": manifest})
                saved = load_rows(path)
            else:
                logger.info(f"Resuming: {path.name} is already done.")
            shards.append(saved[0])
        return concatenate_datasets(shards)

    def _row_written(self, rows: int = 1):
        """Move the progress bar of `augment()` (if one is open) by `rows` rows whose generation was accepted;
        back by one (`rows=-1`) for a row that calibration then sends to another attempt."""
        bar = getattr(self, "_rows_bar", None)
        if bar is not None:
            bar.update(rows)


def number_duplicates(dataset: Dataset, text_column: str = "text", label_column: str = "label") -> Dataset:
    """`dataset` with an `OCCURRENCE_COLUMN`: 0 for the first row with its (text, label), 1 for the next copy...

    A synthetic row is keyed by its real row's content, so exact duplicates would get the same synthetic rows;
    the occurrence number tells them apart. It counts copies in dataset order, but copies are identical, so a
    shuffled or sub-selected dataset gets the same synthetic rows for each distinct (text, label) and copy
    count. `augment()` calls this; call it yourself before `Dataset.map` on data with duplicates. A dataset
    that already has the column is returned as it is.
    """
    if OCCURRENCE_COLUMN in dataset.column_names:
        return dataset
    seen: dict[tuple[str, object], int] = {}
    occurrences = []
    for text, label in zip(dataset[text_column], dataset[label_column], strict=True):
        occurrences.append(seen.get((text, label), 0))
        seen[text, label] = occurrences[-1] + 1
    return dataset.select_columns([text_column, label_column]).add_column(OCCURRENCE_COLUMN, occurrences)
