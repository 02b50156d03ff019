"""Augmenting a whole dataset: duplicate numbering, checkpointed shards, progress and the run's report.

`run_augmentation` (what `GPT3MixAugmenter.augment` runs) maps the augmenter over a `Dataset`, optionally a shard
at a time with each finished shard saved, and moves the rows whose every attempt failed to an `AugmentationReport`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, concatenate_datasets
from datasets.fingerprint import Hasher
from datasets.utils.logging import is_progress_bar_enabled
from tqdm.auto import tqdm
from transformers.utils import logging

from .batches import OCCURRENCE_COLUMN
from .data import align_label_names, check_columns
from .quality import quality_report
from .state import check_folder_path, load_rows, read_json, save_rows, write_json
from .validation import check_fields

logger = logging.get_logger(__name__)


# The fewest real rows per `Dataset.map` batch when `augment()` or `gpt3mix augment` is given no batch size.
DEFAULT_MAP_BATCH_SIZE = 64


def default_map_batch_size(backend) -> int:
    """`augment()`'s `Dataset.map` batch when none is given: the backend's decoding slots (128 on a GPU), at least
    `DEFAULT_MAP_BATCH_SIZE`. A batch's prompts are decoded together, so fewer rows than the slots leave slots
    idle: with 64 slots, 16 rows a batch ran 1.38x slower than 64 on a 2-core CPU (README, *The local engine*)."""
    return max(DEFAULT_MAP_BATCH_SIZE, getattr(backend, "batch_size", None) or 0)


@dataclass
class RunSettings:
    """How the run was batched, and where: `map_batch_size` (real rows per `Dataset.map` batch), `num_proc` and
    the backend's `generation_batch_size` decide which prompts are decoded together. In float32 the rows do not
    depend on them; in bfloat16 they do, and on the kind of `machine` too (`machine_kind`), so regeneration
    uses the recorded values and warns on another machine."""

    # augment()'s default when the field was added. Every version writes it, so only a file edited by hand lacks it.
    map_batch_size: int = 16
    generation_batch_size: int | None = None
    num_proc: int | None = None
    machine: str | None = None

    def __post_init__(self):
        check_fields(self)
        for name in ("map_batch_size", "generation_batch_size", "num_proc"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"run.{name} must be a whole number >= 1, got {value!r}.")

    @classmethod
    def of(cls, backend, map_batch_size: int, num_proc: int | None) -> RunSettings:
        """The settings of a run of `backend` with `Dataset.map(batch_size=map_batch_size, num_proc=num_proc)`."""
        return cls(map_batch_size, getattr(backend, "batch_size", None), num_proc, getattr(backend, "machine", None))

    @staticmethod
    def rows_depend_on_it(dtype: str | None) -> bool:
        """Whether rows generated in `dtype` depend on the batching and the machine (bfloat16, float16) or not
        (float32, and served backends, which record no dtype)."""
        return dtype not in (None, "float32")


@dataclass
class AugmentationReport:
    """What one `augment` run did, for the CLI summary, dataset cards and provenance (its `report` section is
    `to_dict()`)."""

    rows_requested: int
    rows_written: int
    failed_rows: int
    parse_failures: int
    generated_tokens: int
    seconds: float
    # Each failed row's generations and reasons: `gpt3mix augment` writes them to failures.jsonl, not to the
    # provenance, so a report read back from a file has none.
    failures: list[dict] = field(default_factory=list)
    # The quality measurements of the rows (`gpt3mix_hf.quality.quality_report`).
    quality: dict | None = field(default=None)
    # How `augment` ran `Dataset.map` (bf16 rows may depend on the batch): the provenance's run section reads them.
    map_batch_size: int | None = field(default=None)
    num_proc: int | None = field(default=None)
    # Whether the rows augmented were the augmenter's whole pool, which is what a provenance file describes.
    augmented_the_pool: bool | None = field(default=None)

    # Written by to_dict() beside the fields it derives from; read back, they are computed again.
    DERIVED: ClassVar[tuple[str, ...]] = ("samples_per_second", "parse_failure_rate")

    def __post_init__(self):
        check_fields(self)

    @property
    def samples_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")

    @property
    def parse_failure_rate(self) -> float:
        attempts = self.rows_written + self.parse_failures
        return self.parse_failures / attempts if attempts else 0.0

    def to_dict(self) -> dict:
        """The counts and quality, with the rates derived from them (`DERIVED`); without the failures (their
        file) and the batching (the provenance's run section)."""
        summary = asdict(self)
        for name in ("failures", "map_batch_size", "num_proc", "augmented_the_pool"):
            summary.pop(name)
        for name in self.DERIVED:
            summary[name] = getattr(self, name)
        return summary

    def as_recorded(self) -> AugmentationReport:
        """This report as a provenance file holds it: what `to_dict` leaves out is emptied."""
        return replace(self, failures=[], map_batch_size=None, num_proc=None, augmented_the_pool=None)


def run_augmentation(
    augmenter,
    dataset: Dataset | DatasetDict | None,
    *,
    split: str | None,
    batch_size: int,
    num_proc: int | None,
    load_from_cache_file: bool | None,
    checkpoint_dir: str | Path | None,
    shard_size: int,
) -> tuple[Dataset, AugmentationReport]:
    """`GPT3MixAugmenter.augment`: the synthetic rows of `dataset` (default: the augmenter's pool), without the
    rows whose every attempt failed, and the run's report (which holds those). See `augment` for the arguments."""
    dataset = _dataset_to_augment(augmenter, dataset, split)
    start = time.perf_counter()
    map_kwargs = {"batch_size": batch_size, "num_proc": num_proc, "load_from_cache_file": load_from_cache_file}
    numbered = rows_to_augment(augmenter, dataset)
    # Switched with the `datasets` progress bars; worker processes (num_proc > 1) cannot reach it.
    augmenter.progress = tqdm(desc="GPT3Mix rows written", unit="row",
                              disable=(num_proc or 1) > 1 or not is_progress_bar_enabled())
    try:
        resumed_seconds = 0.0
        if checkpoint_dir is None:
            generated = _map(augmenter, numbered, **map_kwargs)
        else:
            generated, resumed_seconds = _augment_in_shards(augmenter, numbered, Path(checkpoint_dir), shard_size,
                                                            **map_kwargs)
    finally:
        augmenter.progress.close()
        augmenter.progress = None
    # The shards read back from an earlier call count with the time that call took to make them.
    seconds = time.perf_counter() - start + resumed_seconds
    labels = np.asarray(generated["label"])
    failed = generated.select(np.flatnonzero(labels < 0))
    synthetic = generated.select(np.flatnonzero(labels >= 0))
    report = AugmentationReport(
        rows_requested=len(generated),
        rows_written=len(synthetic),
        failed_rows=len(failed),
        parse_failures=sum(len(attempts) for attempts in generated["failed_attempts"]),
        generated_tokens=int(np.sum(generated["generated_tokens"])),
        seconds=seconds,
        failures=failed.to_list(),
        map_batch_size=batch_size,
        num_proc=num_proc,
        augmented_the_pool=dataset[augmenter.text_column] == augmenter.pool_texts
        and list(dataset[augmenter.label_column]) == list(augmenter.pool_labels),
    )
    report.quality = quality_report(
        synthetic, augmenter.pool_texts, augmenter.pool_labels, label_mode=augmenter.config.label_mode,
        num_labels=len(augmenter.label_names),
        dropped_failures=sum(len(attempts) for attempts in failed["failed_attempts"]),
    )
    if len(failed):
        logger.warning(
            f"{len(failed)} synthetic rows failed all {augmenter.config.max_attempts} attempts: "
            "augmenter.report.failures (gpt3mix augment: failures.jsonl) says why each attempt failed."
        )
    return synthetic, report


def rows_to_augment(augmenter, dataset: Dataset | DatasetDict | None, split: str | None = None) -> Dataset:
    """The real rows `augment()` (and `dry_run`) make synthetic rows for: `dataset`'s split (default: the pool),
    checked, its labels in the pool's order and its duplicates numbered."""
    return number_duplicates(_dataset_to_augment(augmenter, dataset, split), augmenter.text_column,
                             augmenter.label_column)


def _dataset_to_augment(augmenter, dataset, split: str | None) -> Dataset:
    if dataset is None:
        return augmenter.pool_dataset()
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
    # The prompts' examples come from the pool, which was checked for a single class when the augmenter was built.
    feature = check_columns(dataset, augmenter.text_column, augmenter.label_column, one_class_warning=False)
    if sorted(feature.names) == sorted(augmenter.label_names):
        # The same classes in another order: re-encoded by name, so that a prompt shows each row's own label.
        return align_label_names(dataset, augmenter.label_column, augmenter.label_names)
    raise ValueError(
        f"The dataset's labels are {feature.names}, the pool's {augmenter.label_names}: they are not the same "
        "classes. Augment a dataset of the pool's task, or build the augmenter with a pool of this one."
    )

def _map(augmenter, dataset: Dataset, **map_kwargs) -> Dataset:
    return dataset.map(
        augmenter,
        batched=True,
        remove_columns=dataset.column_names,
        features=augmenter.features,
        desc="GPT3Mix augmentation",
        **map_kwargs,
    )

def _augment_in_shards(
    augmenter, dataset: Dataset, folder: Path, shard_size: int, **map_kwargs
) -> tuple[Dataset, float]:
    """The rows of `dataset`, made `shard_size` real rows at a time, each shard saved in `folder` once done (and
    read back from there by a later call); and the seconds the shards read back took when they were made."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a whole number >= 1, got {shard_size!r}.")
    check_folder_path(folder, "checkpoint_dir")
    columns = [augmenter.text_column, augmenter.label_column, OCCURRENCE_COLUMN]
    manifest = {
        "augmenter": Hasher.hash([augmenter.provenance(), augmenter.pool_texts, augmenter.pool_labels]),
        "dataset": Hasher.hash(dataset.select_columns(columns).to_dict()),
        "shard_size": shard_size,
    }
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        if read_json(manifest_path) != manifest:
            raise ValueError(
                f"{folder} holds the shards of a run with other settings or data: pass another "
                "checkpoint_dir (gpt3mix augment: another --output_dir), or delete that folder to start over."
            )
    else:
        # No manifest.json (deleted, or never written): each shard says what it was made from.
        for made in sorted(folder.glob("shard-*/meta.json")):
            if read_json(made).get("manifest") != manifest:
                raise ValueError(
                    f"{made.parent} was made by a run with other settings or data: pass another checkpoint_dir "
                    f"(gpt3mix augment: another --output_dir), or delete {folder} to start over."
                )
        write_json(manifest_path, manifest)
    batching = asdict(RunSettings.of(augmenter.backend, map_kwargs.get("batch_size"), map_kwargs.get("num_proc")))
    shards, resumed_seconds = [], 0.0
    exact = not RunSettings.rows_depend_on_it(augmenter.backend.identity.get("dtype"))
    num_shards = math.ceil(len(dataset) / shard_size)
    for number in range(num_shards):
        path = folder / f"shard-{number:05d}-of-{num_shards:05d}"
        saved = load_rows(path)
        if saved is None:
            begin = number * shard_size
            part = dataset.select(range(begin, min(begin + shard_size, len(dataset))))
            start = time.perf_counter()
            shard = _map(augmenter, part, **map_kwargs)
            # A shard folder counts as done only once its meta.json is written, after the rows.
            save_rows(path, shard, {"rows": [begin, begin + len(part)], "manifest": manifest,
                                    "seconds": time.perf_counter() - start, "batching": batching})
            saved = load_rows(path)
        else:
            logger.info(f"Resuming: {path.name} is already done.")
            resumed_seconds += saved[1].get("seconds", 0.0)
            made_with = saved[1].get("batching", batching)
            if not exact and made_with != batching:
                logger.warning(
                    f"{path.name} was made with other batching ({made_with}; now {batching}). In "
                    f"{augmenter.backend.identity.get('dtype')} the rows depend on it, so the provenance, which "
                    "records this call's, cannot make that shard's rows again exactly: resume with the same "
                    "batch sizes, processes and kind of machine to keep regeneration exact."
                )
        shards.append(saved[0])
    return concatenate_datasets(shards), resumed_seconds


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
