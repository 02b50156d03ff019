"""The sweep: a grid of (data seed, sub-sample level, method, repeat), one JSON per finished run.

Each finished run writes `<output_dir>/runs/<method>/level=<level>/data<i>-rep<r>.json` (atomically); running
the same sweep again skips those files, so an interrupted sweep resumes where it stopped and a larger
`data_seeds` (or other levels, methods, repeats) only adds runs. Runs made with other settings (a learning rate,
a ratio, a classifier, ...) are refused in the same `output_dir`, so its runs always pair up. Several processes
can share one grid: each run is taken under a `FileLock`, and a run whose lock another process holds is left to
it.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from filelock import FileLock, Timeout
from transformers.utils import logging

from ..backends.base import SamplingConfig
from ..backends.local.machine import machine_kind, resolve_device
from ..config import AugmenterConfig
from ..data import (
    class_balanced_sample,
    concatenate_with_real,
    encode_labels,
    load_split,
    per_class_for,
    rename_columns_to,
    training_features,
)
from ..selection import row_seed
from ..spec import task_spec
from ..state import check_folder_path, write_json
from .arguments import (
    GPT3MIX_METHODS,
    HELD_OUT_PER_CLASS,
    ExperimentArguments,
    ProtocolAugmenterConfig,
    check_protocol_settings,
)
from .caches import Augmentations, level_name
from .records import OK, check_same_settings, finished_record, run_settings, write_experiment

logger = logging.get_logger(__name__)

UNAVAILABLE = "unavailable"
# Run records before version 2 called the label the LM wrote "gpt3mix-hard" (see `summary.load_runs`).
RECORD_VERSION = 2


def data_seed(master_seed: int, index: int) -> int:
    """The seed of the `index`-th sub-sample: fixed by the master seed, whatever the number of data seeds."""
    return row_seed(master_seed, 0, index) % 2**31


def train_seed(master_seed: int, index: int, level: float, repeat: int) -> int:
    """The classifier's seed: the same for every method, so that runs pair up across methods."""
    return row_seed(master_seed, 1, index, round(level * 1e6), repeat) % 2**31


def run_path(output_dir: str | Path, method: str, level: float, index: int, repeat: int) -> Path:
    return Path(output_dir) / "runs" / method / f"level={level_name(level)}" / f"data{index}-rep{repeat}.json"


@dataclass
class Split:
    """One sub-sample: the training rows, the validation rows carved from the rest of train, and their seed."""

    level: float
    index: int
    seed: int
    train: Dataset
    validation: Dataset


@dataclass
class HeldOut:
    """The fixed validation set: `validation` holds the rows of `full_train` at `rows`, which no sub-sample takes."""

    rows: list[int]
    validation: Dataset


def held_out_seed(master_seed: int) -> int:
    return row_seed(master_seed, 2) % 2**31


def held_out_validation(full_train: Dataset, per_class: int, seed: int) -> HeldOut:
    """A class-balanced set of `per_class` rows per class of `full_train`, the same for every level, data seed
    and method: early stopping then compares epochs on enough rows to mean something (at 0.1 % a set as large as
    the sample has 6 rows on SST-2), and every run's best epoch is chosen on the same rows.

    Raises a `ValueError` naming the class and the fix when a class has fewer than `per_class` rows.

    Example:

    >>> held_out = held_out_validation(train, per_class=50, seed=held_out_seed(42))
    >>> split = make_split(train, 0.01, 0, seed=7, held_out=held_out)
    """
    numbered = full_train.add_column("_row", list(range(len(full_train))))
    try:
        chosen = class_balanced_sample(numbered, per_class=per_class, seed=seed)
    except ValueError as error:
        raise ValueError(
            f"The held-out validation set of {per_class} rows per class cannot be drawn: {error} Lower "
            "validation_per_class, or use validation_set='per-sample' (a set as large as each sub-sample)."
        ) from error
    return HeldOut(rows=list(chosen["_row"]), validation=chosen.remove_columns("_row"))


def make_split(full_train: Dataset, level: float, index: int, seed: int,
               validation_per_class: int | None = None, held_out: HeldOut | None = None) -> Split:
    """A class-balanced sample of `level` of `full_train`, and a validation set: `held_out`'s rows when given (the
    sample then never takes them), else a class-balanced set from the rest of train (`validation_per_class` rows
    per class, default as many as the sample).

    Raises a `ValueError` that names the class and the fix when a class has too few rows for either.
    """
    names = full_train.features["label"].names
    counts = np.bincount(np.asarray(full_train["label"], dtype=np.int64), minlength=len(names))
    empty = [names[i] for i, count in enumerate(counts) if count == 0]
    if empty:
        raise ValueError(
            f"Classes {empty} have no rows in train, so no sub-sample at level {level:g} can hold one of each: "
            "drop those classes from the label set or use data that has them."
        )
    per_class = per_class_for(level, len(full_train), len(names))
    numbered = full_train.add_column("_row", list(range(len(full_train))))
    try:
        train = class_balanced_sample(numbered, per_class=per_class, seed=seed,
                                      exclude=held_out.rows if held_out is not None else None)
    except ValueError as error:
        raise ValueError(f"Level {level:g} ({per_class} rows per class) cannot be drawn: {error}") from error
    if held_out is not None:
        return Split(level, index, seed, train.remove_columns("_row"), held_out.validation)
    val_per_class = validation_per_class or per_class
    left = counts - per_class
    short = [f"{names[i]} ({left[i]} left)" for i in range(len(names)) if left[i] < val_per_class]
    if short:
        raise ValueError(
            f"The validation split would be empty or short for {short}: level {level:g} takes {per_class} rows per "
            f"class and validation needs {val_per_class} more. Lower validation_per_class or the level."
        )
    validation = class_balanced_sample(numbered, per_class=val_per_class, seed=seed + 1, exclude=train["_row"])
    return Split(level, index, seed, train.remove_columns("_row"), validation.remove_columns("_row"))


def load_task_data(args: ExperimentArguments, need_test: bool = True) -> tuple[Dataset, Dataset | None]:
    """Train and test as `text` and a `ClassLabel` `label`, test encoded with train's label names."""
    source = args.source
    train = load_split(source, "train")
    names = list(train.features[source.label_column].names)
    train = rename_columns_to(train, source.text_column, source.label_column)
    if not need_test:
        return train, None
    test = load_split(source, args.test_split, names=names)
    return train, rename_columns_to(test, source.text_column, source.label_column)


def _real_only(real: Dataset) -> Dataset:
    empty = Dataset.from_dict({"text": [], "label": [], "soft_labels": []},
                              features=training_features(real.features["label"].names))
    return concatenate_with_real(real, empty)


def _machine_kind() -> str:
    """Where this run trains (and generates, when it makes its rows): the GPU's model, else the CPU's."""

    return machine_kind(resolve_device())


def _real_repeated(real: Dataset, ratio: float) -> Dataset:
    """The real rows, then copies of them until there are (1 + ratio) rows per real row (the last pass cut short
    where the ratio is fractional), all marked real: an augmented run's rows per epoch, without new data."""
    total = round((1 + ratio) * len(real))
    return _real_only(real.select([i % len(real) for i in range(total)]))


def _train_and_evaluate(args: ExperimentArguments, train: Dataset, validation: Dataset, test: Dataset,
                        seed: int, work_dir: Path) -> dict:
    """Train the classifier with `GPT3MixTrainer` (early stopping on validation accuracy), score it on test."""
    import torch

    from ..training.arguments import GPT3MixTrainingArguments
    from ..training.classification import evaluate_classifier, train_classifier

    # transformers accepts bf16 without a GPU only when told the run is on the CPU.
    on_cpu = {"use_cpu": True} if args.bf16 and not torch.cuda.is_available() else {}
    training_args = GPT3MixTrainingArguments(
        output_dir=str(work_dir),
        seed=seed,
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        warmup_steps=args.warmup_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        early_stopping_patience=args.early_stopping_patience,
        # Ties in validation accuracy go to the epoch with the lower validation loss, not to the first one.
        metric_for_best_model="accuracy_then_nll",
        # Only an epoch that beats the best so far is written: the best epoch is all a run restores.
        save_strategy="best",
        save_only_model=True,
        bf16=args.bf16,
        disable_tqdm=args.disable_tqdm,
        report_to="none",
        # Pinned memory only serves a copy to a GPU; without one torch warns that it is ignored.
        dataloader_pin_memory=torch.cuda.is_available(),
        **on_cpu,
    )
    start = time.perf_counter()
    trainer = train_classifier(
        train, validation, model_name_or_path=args.classifier, args=training_args, max_length=args.max_length,
        classifier_head=args.classifier_head, pooling=args.pooling,
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_classifier(trainer, test, max_length=args.max_length)
    eval_seconds = time.perf_counter() - start
    state = trainer.state
    best = _best_evaluation(state.log_history, state.best_metric)
    return {
        "accuracy": float(metrics["accuracy"]),
        "macro_f1": float(metrics["macro_f1"]),
        "best_validation_accuracy": best.get("eval_accuracy"),
        "best_validation_nll": best.get("eval_nll"),
        "best_epoch": best.get("epoch"),
        "epochs": state.epoch,
        "steps": state.global_step,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
    }


def _best_evaluation(log_history: list[dict], best_metric: float | None) -> dict:
    """The evaluation log entry of the epoch kept (the first whose selection score is the best one)."""
    for entry in log_history:
        if best_metric is not None and entry.get("eval_accuracy_then_nll") == best_metric:
            return entry
    return {}


def run_experiment(args: ExperimentArguments, train: Dataset | None = None, test: Dataset | None = None, *,
                   settings: AugmenterConfig | None = None, sampling: SamplingConfig | None = None,
                   backend=None) -> list[dict]:
    """Run (or resume) the sweep; return the records of the runs this call made or found finished.

    Args:
        args (`ExperimentArguments`): the sweep.
        train, test (`Dataset`, *optional*): the data, with `text` and a `ClassLabel` `label`; default: loaded
            as `args` says (a benchmark, a folder of splits or a Hub id).
        settings (`AugmenterConfig`, *optional*): the GPT3Mix settings (k, ratio for every augmentation method,
            selection, ...); default `ProtocolAugmenterConfig()` (the paper's: k=2, ratio 1, uniform selection).
        sampling (`SamplingConfig`, *optional*): how the GPT3Mix LM samples; default `SamplingConfig()`.
        backend (`Backend`, *optional*): the GPT3Mix LM (any backend, e.g. a served one); default:
            `TransformersBackend.from_pretrained(args.lm)`, loaded only if generation is needed.
    """
    check_folder_path(args.output_dir, "output_dir")  # before any data is loaded or model trained
    if args.disable_tqdm:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    sampling = sampling or SamplingConfig()
    settings = settings or ProtocolAugmenterConfig()
    check_protocol_settings(settings, args.methods)
    need_test = not args.augment_only
    if train is None or (test is None and need_test):
        loaded_train, loaded_test = load_task_data(args, need_test=need_test)
        train = train if train is not None else loaded_train
        test = test if test is not None else loaded_test
    train = encode_labels(train, "text", "label", origin="train")
    names = list(train.features["label"].names)
    if len(names) < 2:
        raise ValueError(f"train has a single label {names}: a classifier needs at least two classes.")
    if test is not None:
        test = encode_labels(test, "text", "label", origin="test", names=names)
        if len(test) == 0:
            raise ValueError(f"The {args.test_split!r} split is empty: the classifiers need rows to be scored on.")
        if args.max_test_rows is not None and args.max_test_rows < len(names):
            raise ValueError(
                f"max_test_rows={args.max_test_rows} is fewer than the {len(names)} classes: the test sample is "
                "class balanced, at least one row per class. Give at least that many, or leave it unset."
            )
        if args.max_test_rows is not None and len(test) > args.max_test_rows:
            # One sample for every run, drawn from the master seed: all methods are scored on the same rows.
            try:
                test = class_balanced_sample(test, per_class=max(1, args.max_test_rows // len(names)),
                                             seed=args.master_seed)
            except ValueError as error:
                raise ValueError(
                    f"max_test_rows={args.max_test_rows} asks for {args.max_test_rows // len(names)} test rows per "
                    f"class: {error} Lower max_test_rows, or leave it unset to score on the whole split."
                ) from error
    spec = task_spec(args.task, names, args.dataset)
    output_dir = Path(args.output_dir)
    settings_of_runs = run_settings(args, settings, sampling)
    check_same_settings(output_dir, settings_of_runs)
    write_experiment(output_dir, {**settings_of_runs, "spec": spec.to_dict()})
    augmentations = Augmentations(args, spec, sampling, settings, backend)
    held_out = None
    if args.validation_set == "held-out":
        per_class = args.validation_per_class
        if per_class is None:
            per_class = HELD_OUT_PER_CLASS
            smallest = int(np.bincount(np.asarray(train["label"], dtype=np.int64), minlength=len(names)).min())
            if smallest <= per_class:
                # A small dataset (the package's users'): half of its smallest class, the rest left to sample from.
                per_class = max(1, smallest // 2)
                logger.warning(
                    f"The smallest class has {smallest} rows, too few for a held-out validation set of "
                    f"{HELD_OUT_PER_CLASS} per class: holding out {per_class} per class "
                    "(--validation_per_class sets it)."
                )
        held_out = held_out_validation(train, per_class, held_out_seed(args.master_seed))
    records = []
    for index in range(args.data_seeds):
        seed = data_seed(args.master_seed, index)
        for level in args.levels:
            split = None
            for method in args.methods:
                for repeat in range(args.repeats):
                    path = run_path(output_dir, method, level, index, repeat)
                    finished = finished_record(path)
                    if finished is not None:
                        logger.info(f"Skipping finished run {path}.")
                        records.append(finished)
                        continue
                    if split is None:
                        split = make_split(train, level, index, seed, args.validation_per_class, held_out)
                    if args.skip_uncached and method in GPT3MIX_METHODS and not augmentations.cached(split):
                        logger.info(f"Skipping {path}: its GPT3Mix generation is not cached yet.")
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    lock = FileLock(str(path.with_suffix(".lock")))
                    try:
                        lock.acquire(timeout=0)
                    except Timeout:
                        logger.info(f"Skipping {path}: another sweep process is running it.")
                        continue
                    try:
                        # Another process may have finished it between our check and the lock.
                        finished = finished_record(path, warn=False)
                        if finished is None:
                            finished = _run_one(args, augmentations, split, method, repeat, test, output_dir)
                            if finished is not None:
                                write_json(path, finished)
                        if finished is not None:
                            records.append(finished)
                    finally:
                        lock.release()
    return records


def _run_one(args: ExperimentArguments, augmentations: Augmentations, split: Split, method: str, repeat: int,
             test: Dataset | None, output_dir: Path) -> dict | None:
    record = {
        "record_version": RECORD_VERSION,
        "dataset": args.name,
        "method": method,
        "level": split.level,
        "data_index": split.index,
        "data_seed": split.seed,
        "repeat": repeat,
        "train_seed": train_seed(args.master_seed, split.index, split.level, repeat),
        "num_real": len(split.train),
        "num_validation": len(split.validation),
        "settings": run_settings(args, augmentations.settings, augmentations.sampling),
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                        "machine_kind": _machine_kind()},
    }
    if method == "bt" and augmentations.bt_unavailable():
        record.update(status=UNAVAILABLE, reason=augmentations.bt_unavailable())
        return record
    timings = {}
    if method == "noaug":
        train = _real_only(split.train)
        record["num_synthetic"] = 0
    elif method == "noaug-repeated":
        train = _real_repeated(split.train, augmentations.settings.ratio)
        record["num_synthetic"] = 0
    else:
        start = time.perf_counter()
        synthetic, meta = augmentations.synthetic(method, split)
        timings["augmentation_seconds_this_run"] = time.perf_counter() - start
        timings["augmentation_seconds_when_made"] = meta.get("seconds")
        record["augmentation"] = {k: v for k, v in meta.items() if k != "config"}
        record["num_synthetic"] = len(synthetic)
        train = concatenate_with_real(split.train, synthetic)
    if args.augment_only:
        return None
    work_dir = output_dir / "checkpoints" / method / f"level={level_name(split.level)}"
    work_dir = work_dir / f"data{split.index}-rep{repeat}"
    try:
        results = _train_and_evaluate(args, train, split.validation, test, record["train_seed"], work_dir)
    finally:
        # Checkpoints are only needed to restore the best epoch within a run.
        shutil.rmtree(work_dir, ignore_errors=True)
    timings["train_seconds"] = results.pop("train_seconds")
    timings["eval_seconds"] = results.pop("eval_seconds")
    record.update(status=OK, num_test=len(test), timings=timings, **results)
    logger.info(f"{method}, level {split.level:g}, data {split.index}, repeat {repeat}: {record['accuracy']:.3f}")
    return record
