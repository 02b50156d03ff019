"""The paper's Table 1 protocol: class-balanced sub-samples of train, NoAug vs EDA vs back-translation vs
GPT3Mix (soft and hard labels), one JSON per run, then a markdown table and a plot.

A sweep is a grid of (data seed, sub-sample level, method, repeat). Each finished run writes
`<output_dir>/runs/<method>/level=<level>/data<i>-rep<r>.json`; running the same sweep again skips those
files, so an interrupted sweep resumes where it stopped and a larger `data_seeds` only adds runs.
Augmented rows are cached per (method family, level, data seed) under `<output_dir>/augmentations/`:
GPT3Mix soft and hard labels come from one generation pass (see `hard_from_soft`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, Sequence, Value, load_from_disk
from transformers.utils import logging

from .augmenter import GPT3MixAugmenter, concatenate_with_real
from .data import class_balanced_sample, load_benchmark, per_class_for
from .prompt import GenerationParser
from .selection import row_seed
from .soft_labels import one_hot
from .spec import PRESETS, TaskSpec

logger = logging.get_logger(__name__)

METHODS = ("noaug", "eda", "bt", "gpt3mix-soft", "gpt3mix-hard")
METHOD_NAMES = {
    "noaug": "NoAug",
    "eda": "EDA",
    "bt": "BT",
    "gpt3mix-soft": "GPT3Mix (soft)",
    "gpt3mix-hard": "GPT3Mix (hard)",
}
UNAVAILABLE = "unavailable"
OK = "ok"


@dataclass
class ExperimentArguments:
    """What a sweep runs: the data, the grid of levels, seeds and methods, the augmenters and the classifier.

    Example:

    >>> args = ExperimentArguments(dataset="sst2", data_dir="../shared/data", output_dir="results/sst2",
    ...                            data_seeds=1, methods=["noaug", "gpt3mix-soft"])
    >>> run_experiment(args)
    """

    dataset: str = field(default="sst2", metadata={"help": "Benchmark name: sst2, cr, subj, trec6 or cola."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with <dataset>/<split>.jsonl (e.g. ../shared/data); default: the Hub."}
    )
    output_dir: str = field(default="results/sst2", metadata={"help": "Where run JSONs and caches are written."})
    levels: list[float] = field(
        default_factory=lambda: [0.001, 0.003, 0.01],
        metadata={"help": "Sub-sample fractions of train (class balanced, at least one row per class)."},
    )
    methods: list[str] = field(
        default_factory=lambda: list(METHODS), metadata={"help": f"Methods to run, from {list(METHODS)}."}
    )
    data_seeds: int = field(default=5, metadata={"help": "Number of sub-samples per level (the paper: 5)."})
    repeats: int = field(default=1, metadata={"help": "Classifier trainings per sub-sample (different seeds)."})
    master_seed: int = field(default=42, metadata={"help": "Every data, augmentation and training seed comes from it"})
    validation_per_class: int | None = field(
        default=None,
        metadata={"help": "Validation rows per class, carved from the rest of train; default: as many as the sample."},
    )
    test_split: str = field(default="test", metadata={"help": "The split the classifiers are scored on."})
    max_test_rows: int | None = field(
        default=None,
        metadata={"help": "Score on a fixed class-balanced sample of this many test rows (default: all of them)."},
    )
    ratio: int = field(default=2, metadata={"help": "Synthetic rows per real row, for every augmentation method."})
    lm: str = field(default="smollm2", metadata={"help": "GPT3Mix LM: an embedded short name, Hub id or folder."})
    lm_batch_size: int = field(default=8, metadata={"help": "Prompts the LM decodes together."})
    k: int = field(default=2, metadata={"help": "GPT3Mix examples per prompt (the paper: 2)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Most tokens per GPT3Mix generation."})
    temperature: float = field(default=1.0, metadata={"help": "GPT3Mix sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "GPT3Mix nucleus sampling mass."})
    bt_models: list[str] = field(
        default_factory=lambda: ["Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en"],
        metadata={"help": "Back-translation: the forward and the backward translation model (Hub ids or folders)."},
    )
    classifier: str = field(default="minilm", metadata={"help": "Classifier: embedded short name, Hub id or folder."})
    learning_rate: float = field(default=3e-5, metadata={"help": "AdamW learning rate (the paper: 3e-5)."})
    num_train_epochs: float = field(default=50, metadata={"help": "Most training epochs."})
    early_stopping_patience: int = field(
        default=20, metadata={"help": "Epochs without a better validation accuracy before stopping (the paper: 20)."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "Share of training steps with a rising learning rate (the paper: warm-up)."}
    )
    max_length: int = field(default=64, metadata={"help": "Tokens per classifier input (longer texts are cut)."})
    augment_only: bool = field(
        default=False, metadata={"help": "Only build the augmentation caches (e.g. to generate ahead of training)."}
    )
    skip_uncached: bool = field(
        default=False,
        metadata={"help": "Skip GPT3Mix runs whose generation is not cached yet (another process is making it)."},
    )
    disable_progress_bars: bool = field(default=False, metadata={"help": "Switch tqdm progress bars off."})

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods {unknown} are unknown; choose from {list(METHODS)}.")
        if not self.levels:
            raise ValueError("levels is empty: give at least one sub-sample fraction, e.g. --levels 0.01.")
        for level in self.levels:
            if not 0 < level <= 1:
                raise ValueError(f"levels must be fractions in (0, 1], got {level}.")
        for name in ("data_seeds", "repeats", "ratio", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_test_rows is not None and self.max_test_rows < 1:
            raise ValueError(f"max_test_rows must be >= 1 (or unset for the whole split), got {self.max_test_rows}.")
        if self.validation_per_class is not None and self.validation_per_class < 1:
            raise ValueError(
                f"validation_per_class={self.validation_per_class} gives an empty validation split: early stopping "
                "needs validation rows. Give at least 1 (or leave it unset: as many as the training sample)."
            )
        if len(self.bt_models) != 2:
            raise ValueError(f"bt_models needs two models (forward, backward), got {self.bt_models}.")

    def to_dict(self) -> dict:
        return asdict(self)


# -- the grid ---------------------------------------------------------------------------------------------


def data_seed(master_seed: int, index: int) -> int:
    """The seed of the `index`-th sub-sample: fixed by the master seed, whatever the number of data seeds."""
    return row_seed(master_seed, 0, index) % 2**31


def train_seed(master_seed: int, index: int, level: float, repeat: int) -> int:
    return row_seed(master_seed, 1, index, round(level * 1e6), repeat) % 2**31


def level_name(level: float) -> str:
    return f"{level:g}"


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


def make_split(full_train: Dataset, level: float, index: int, seed: int,
               validation_per_class: int | None = None) -> Split:
    """A class-balanced sample of `level` of `full_train`, and a class-balanced validation set from the rest.

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
        train = class_balanced_sample(numbered, per_class=per_class, seed=seed)
    except ValueError as error:
        raise ValueError(f"Level {level:g} ({per_class} rows per class) cannot be drawn: {error}") from error
    val_per_class = validation_per_class or per_class
    left = counts - per_class
    short = [f"{names[i]} ({left[i]} left)" for i in range(len(names)) if left[i] < val_per_class]
    if short:
        raise ValueError(
            f"The validation split would be empty or short for {short}: level {level:g} takes {per_class} rows per "
            f"class and validation needs {val_per_class} more. Lower validation_per_class or the level."
        )
    validation = class_balanced_sample(
        numbered, per_class=val_per_class, seed=seed + 1, exclude=train["_row"]
    )
    return Split(level, index, seed, train.remove_columns("_row"), validation.remove_columns("_row"))


# -- augmentation caches ----------------------------------------------------------------------------------


def _fingerprint(split: Split) -> dict:
    """The real rows an augmentation was made from, for the cache key."""
    return {"train_texts": list(split.train["text"]), "train_labels": list(split.train["label"])}


def _cache_dir(output_dir: str | Path, family: str, split: Split) -> Path:
    return Path(output_dir) / "augmentations" / family / f"level={level_name(split.level)}" / f"data{split.index}"


def _load_cache(folder: Path, config: dict) -> tuple[Dataset, dict] | None:
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("config") != json.loads(json.dumps(config)):
        logger.warning(f"The augmentation cache in {folder} was made with other settings; making it again.")
        return None
    return load_from_disk(str(folder / "data")), meta


def _save_cache(folder: Path, dataset: Dataset, meta: dict):
    folder.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(folder / "data"))
    # meta.json is written last: a cache without it is unfinished and is made again.
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def hard_from_soft(synthetic: Dataset) -> Dataset:
    """GPT3Mix hard-label rows from the rows of a soft-label pass: the label the LM wrote, one-hot.

    In the augmenter the two modes share everything up to the label: the prompt, the partner examples and the
    generation seed of every (row, copy, attempt) come from the same per-row seeds, and the backend samples
    before it scores, so a soft pass writes exactly the texts a hard pass writes, with the LM's own label in
    `written_label`. Hard mode then keeps `label = written_label` and a one-hot soft label. The only way the
    two passes part is an attempt that parsed but whose label scores failed (soft mode retries it, hard mode
    would keep it); `hard_derivable` checks for that, and the harness runs a real hard pass when it happens.
    """
    names = synthetic.features["label"].names
    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=names), "soft_labels": Sequence(Value("float32"))}
    )
    written = list(synthetic["written_label"])
    return Dataset.from_dict(
        {
            "text": list(synthetic["text"]),
            "label": written,
            "soft_labels": [one_hot(label, len(names)) for label in written],
        },
        features=features,
    )


def hard_derivable(augmenter: GPT3MixAugmenter, synthetic: Dataset) -> bool:
    """Whether a hard-label pass would have written the same rows as this soft pass (see `hard_from_soft`)."""
    parser = GenerationParser(augmenter.template, augmenter.spec, augmenter.label_names)
    attempts = [a for row in synthetic["failed_attempts"] for a in row]
    attempts += [a for row in augmenter.report.failures for a in row["failed_attempts"]]
    return not any(parser(attempt["generation"]).ok for attempt in attempts)


class _Augmentations:
    """Makes (or loads) the synthetic rows of each method for a split; heavy models are loaded once."""

    def __init__(self, args: ExperimentArguments, label_names: list[str], backend=None):
        self.args = args
        self.label_names = label_names
        self._backend = backend
        self._given_backend = backend is not None
        self._bt = None
        self._bt_error: str | None = None
        key = args.dataset.lower().replace("-", "")
        self.spec = TaskSpec.from_preset(key) if key in PRESETS else None

    @property
    def backend(self):
        if self._backend is None:
            from .backends import TransformersBackend

            self._backend = TransformersBackend.from_pretrained(self.args.lm, batch_size=self.args.lm_batch_size)
        return self._backend

    def bt_unavailable(self) -> str | None:
        """Why back-translation cannot run here (the models cannot be loaded), or None."""
        if self._bt is None and self._bt_error is None:
            from .baselines.backtranslation import BackTranslationAugmenter

            try:
                self._bt = BackTranslationAugmenter.from_pretrained(*self.args.bt_models)
            except (OSError, ValueError, ImportError) as error:
                self._bt_error = f"{type(error).__name__}: {error}".splitlines()[0][:500]
                logger.warning(f"Back-translation is unavailable: {self._bt_error}")
        return self._bt_error

    def synthetic(self, method: str, split: Split) -> tuple[Dataset, dict]:
        """The synthetic rows (`text`, `label`, `soft_labels`) of `method` for `split`, and their provenance."""
        if method.startswith("gpt3mix"):
            synthetic, meta = self._gpt3mix(split, "soft")
            if method == "gpt3mix-hard":
                if meta["hard_derivable"]:
                    return hard_from_soft(synthetic), meta
                synthetic, meta = self._gpt3mix(split, "hard")
            return synthetic.select_columns(["text", "label", "soft_labels"]), meta
        if method == "eda":
            return self._eda(split)
        if method == "bt":
            return self._backtranslation(split)
        raise ValueError(f"{method!r} makes no synthetic rows.")

    def _gpt3mix_key(self, split: Split, label_mode: str) -> tuple[Path, dict]:
        from .backends.base import SamplingConfig

        args = self.args
        sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens)
        folder = _cache_dir(args.output_dir, f"gpt3mix-{label_mode}", split)
        # The cache key holds everything that decides the rows; the default backend is named as given (its
        # identity is only known once the model is loaded).
        key = {
            "lm": self._backend.identity if self._given_backend else args.lm,
            "k": args.k, "ratio": args.ratio, "seed": row_seed(split.seed, 2) % 2**31, "label_mode": label_mode,
            "sampling": sampling.to_dict(), **_fingerprint(split),
        }
        return folder, key

    def cached(self, split: Split) -> bool:
        """Whether the GPT3Mix (soft) generation for `split` is already made."""
        folder, key = self._gpt3mix_key(split, "soft")
        meta_path = folder / "meta.json"
        return meta_path.exists() and json.loads(meta_path.read_text()).get("config") == json.loads(json.dumps(key))

    def _gpt3mix(self, split: Split, label_mode: str) -> tuple[Dataset, dict]:
        from .backends.base import SamplingConfig

        args = self.args
        sampling = SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens)
        folder, key = self._gpt3mix_key(split, label_mode)
        seed = key["seed"]
        cached = _load_cache(folder, key)
        if cached is not None:
            return cached
        augmenter = GPT3MixAugmenter(
            self.backend, split.train, self.spec, k=args.k, ratio=args.ratio, label_mode=label_mode, seed=seed,
            sampling=sampling,
        )
        # Shards of 16 real rows are saved as they finish: an interrupted generation resumes from them.
        synthetic = augmenter.augment(
            batch_size=max(args.lm_batch_size, 16), load_from_cache_file=False, checkpoint_dir=folder / "shards",
            shard_size=16,
        )
        meta = {
            "config": key,
            "augmenter": augmenter.config(),
            "report": augmenter.report.to_dict(),
            "seconds": augmenter.report.seconds,
            "hard_derivable": label_mode == "soft" and hard_derivable(augmenter, synthetic),
        }
        logger.warning(
            f"GPT3Mix ({label_mode}) level {split.level:g} data {split.index}: {len(synthetic)} rows in "
            f"{augmenter.report.seconds:.0f} s ({augmenter.report.samples_per_second:.2f} rows/s)."
        )
        _save_cache(folder, synthetic, meta)
        return synthetic, meta

    def _eda(self, split: Split) -> tuple[Dataset, dict]:
        from .baselines.eda import EDAAugmenter

        seed = row_seed(split.seed, 3) % 2**31
        augmenter = EDAAugmenter(num_aug=self.args.ratio, seed=seed)
        folder = _cache_dir(self.args.output_dir, "eda", split)
        key = {**augmenter.config(), **_fingerprint(split)}
        cached = _load_cache(folder, key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        synthetic = augmenter.augment(split.train)
        meta = {"config": key, "seconds": time.perf_counter() - start}
        _save_cache(folder, synthetic, meta)
        return synthetic, meta

    def _backtranslation(self, split: Split) -> tuple[Dataset, dict]:
        if self.bt_unavailable():
            raise RuntimeError(f"Back-translation is unavailable: {self._bt_error}")
        seed = row_seed(split.seed, 4) % 2**31
        folder = _cache_dir(self.args.output_dir, "bt", split)
        key = {**self._bt.config(), "num_aug": self.args.ratio, "seed": seed,
               **_fingerprint(split)}
        cached = _load_cache(folder, key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        synthetic = self._bt.augment(split.train, num_aug=self.args.ratio, seed=seed)
        meta = {"config": key, "seconds": time.perf_counter() - start}
        _save_cache(folder, synthetic, meta)
        return synthetic, meta


# -- training ---------------------------------------------------------------------------------------------


def _real_only(real: Dataset) -> Dataset:
    names = real.features["label"].names
    empty = Dataset.from_dict(
        {"text": [], "label": [], "soft_labels": []},
        features=Features(
            {"text": Value("string"), "label": ClassLabel(names=names), "soft_labels": Sequence(Value("float32"))}
        ),
    )
    return concatenate_with_real(real, empty)


def _train_and_evaluate(args: ExperimentArguments, train: Dataset, validation: Dataset, test: Dataset,
                        seed: int, work_dir: Path) -> dict:
    """Train the classifier with `GPT3MixTrainer` (early stopping on validation accuracy), score it on test."""
    from .classification import evaluate_classifier, train_classifier
    from .training_args import GPT3MixTrainingArguments

    training_args = GPT3MixTrainingArguments(
        output_dir=str(work_dir),
        seed=seed,
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        warmup_steps=args.warmup_ratio,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        early_stopping_patience=args.early_stopping_patience,
        save_only_model=True,
        disable_tqdm=args.disable_progress_bars,
        report_to="none",
    )
    start = time.perf_counter()
    trainer = train_classifier(
        train, validation, model_name_or_path=args.classifier, args=training_args, max_length=args.max_length
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_classifier(trainer, test, max_length=args.max_length)
    eval_seconds = time.perf_counter() - start
    state = trainer.state
    return {
        "accuracy": float(metrics["accuracy"]),
        "macro_f1": float(metrics["macro_f1"]),
        "best_validation_accuracy": state.best_metric,
        "epochs": state.epoch,
        "steps": state.global_step,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
    }


# -- the sweep --------------------------------------------------------------------------------------------


def _write_json(path: Path, record: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(record, indent=1, default=str))
    staging.replace(path)  # a run file is whole or absent, even if the sweep is killed mid-write


def _finished(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("status") == OK
    except json.JSONDecodeError:
        return False


def _claim(path: Path) -> bool:
    """Take the run at `path` for this process, so that several sweep processes can share one grid. A claim
    whose process is gone (an interrupted sweep) is taken over."""
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            owner = int(lock.read_text() or 0)
            os.kill(owner, 0)
        except (ValueError, ProcessLookupError, FileNotFoundError):
            lock.write_text(str(os.getpid()))
            return True
        except PermissionError:
            return False
        return owner == os.getpid()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(str(os.getpid()))
    return True


def run_experiment(args: ExperimentArguments, train: Dataset | None = None, test: Dataset | None = None,
                   backend=None) -> list[dict]:
    """Run (or resume) the sweep; return the records of the runs this call made or skipped.

    Args:
        args (`ExperimentArguments`): the sweep.
        train, test (`Dataset`, *optional*): the data, with `text` and a `ClassLabel` `label`; default:
            `load_benchmark(args.dataset, ...)` from `args.data_dir` or the Hub.
        backend (`Backend`, *optional*): the GPT3Mix LM (any backend, e.g. a served one); default:
            `TransformersBackend.from_pretrained(args.lm)`, loaded only if generation is needed.
    """
    if args.disable_progress_bars:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    train = train if train is not None else load_benchmark(args.dataset, "train", args.data_dir)
    if not args.augment_only:
        test = test if test is not None else load_benchmark(args.dataset, args.test_split, args.data_dir)
        if len(test) == 0:
            raise ValueError(f"The {args.test_split!r} split is empty: the classifiers need rows to be scored on.")
        if args.max_test_rows is not None and len(test) > args.max_test_rows:
            # One sample for every run, drawn from the master seed: all methods are scored on the same rows.
            per_class = args.max_test_rows // len(test.features["label"].names)
            test = class_balanced_sample(test, per_class=per_class, seed=args.master_seed)
    for name, dataset in (("train", train), ("test", test)):
        if dataset is not None and not isinstance(dataset.features.get("label"), ClassLabel):
            raise ValueError(f"{name} needs a ClassLabel column 'label' (it has {dataset.features}).")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "experiment.json").write_text(json.dumps(args.to_dict(), indent=1))
    augmentations = _Augmentations(args, train.features["label"].names, backend)
    records = []
    for index in range(args.data_seeds):
        seed = data_seed(args.master_seed, index)
        for level in args.levels:
            split = None
            for method in args.methods:
                for repeat in range(args.repeats):
                    path = run_path(output_dir, method, level, index, repeat)
                    if _finished(path):
                        logger.info(f"Skipping finished run {path}.")
                        records.append(json.loads(path.read_text()))
                        continue
                    if split is None:
                        split = make_split(train, level, index, seed, args.validation_per_class)
                    if args.skip_uncached and method.startswith("gpt3mix") and not augmentations.cached(split):
                        logger.info(f"Skipping {path}: its GPT3Mix generation is not cached yet.")
                        continue
                    if not _claim(path):
                        logger.info(f"Skipping {path}: another sweep process is running it.")
                        continue
                    try:
                        record = _run_one(args, augmentations, split, method, repeat, test, output_dir)
                        if record is not None:
                            _write_json(path, record)
                            records.append(record)
                    finally:
                        path.with_suffix(".lock").unlink(missing_ok=True)
    return records


def _run_one(args, augmentations: _Augmentations, split: Split, method: str, repeat: int, test: Dataset | None,
             output_dir: Path) -> dict | None:
    record = {
        "dataset": args.dataset,
        "method": method,
        "level": split.level,
        "data_index": split.index,
        "data_seed": split.seed,
        "repeat": repeat,
        "train_seed": train_seed(args.master_seed, split.index, split.level, repeat),
        "num_real": len(split.train),
        "num_validation": len(split.validation),
        "settings": args.to_dict(),
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    if method == "bt" and augmentations.bt_unavailable():
        record.update(status=UNAVAILABLE, reason=augmentations.bt_unavailable())
        return record
    timings = {}
    if method == "noaug":
        train = _real_only(split.train)
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
    work_dir = (output_dir / "checkpoints" / method / f"level={level_name(split.level)}"
                / f"data{split.index}-rep{repeat}")
    try:
        results = _train_and_evaluate(args, train, split.validation, test, record["train_seed"], work_dir)
    finally:
        # Checkpoints are only needed to restore the best epoch within a run.
        shutil.rmtree(work_dir, ignore_errors=True)
    timings["train_seconds"] = results.pop("train_seconds")
    timings["eval_seconds"] = results.pop("eval_seconds")
    record.update(status=OK, num_test=len(test), timings=timings, **results)
    return record


# -- the summary ------------------------------------------------------------------------------------------


def load_runs(output_dir: str | Path) -> list[dict]:
    """Every run JSON under `<output_dir>/runs`."""
    records = []
    for path in sorted((Path(output_dir) / "runs").rglob("*.json")):
        records.append(json.loads(path.read_text()))
    return records


def summarize(records: list[dict], metric: str = "accuracy") -> dict:
    """{method: {level: {"mean", "std", "n", "status"}}}; std is the sample standard deviation (ddof=1)."""
    table: dict[str, dict[float, dict]] = {}
    for record in records:
        cell = table.setdefault(record["method"], {}).setdefault(record["level"], {"values": [], "reasons": set()})
        if record["status"] == OK:
            cell["values"].append(100 * record[metric])
        else:
            cell["reasons"].add(record.get("reason", record["status"]))
    summary = {}
    for method, levels in table.items():
        for level, cell in levels.items():
            values = cell["values"]
            summary.setdefault(method, {})[level] = {
                "mean": float(np.mean(values)) if values else math.nan,
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                "n": len(values),
                "status": OK if values else UNAVAILABLE,
            }
    return summary


def markdown_table(records: list[dict], metric: str = "accuracy") -> str:
    """A Table-1-style markdown table: one row per method, one column per level, `mean ± std (n)` in %."""
    summary = summarize(records, metric)
    levels = sorted({level for cells in summary.values() for level in cells})
    header = "| method | " + " | ".join(f"{100 * level:g} %" for level in levels) + " |"
    lines = [header, "|---|" + "---|" * len(levels)]
    for method in [m for m in METHODS if m in summary]:
        cells = []
        for level in levels:
            cell = summary[method].get(level)
            if cell is None:
                cells.append("–")
            elif cell["status"] != OK:
                cells.append("n/a (no translation model offline)" if method == "bt" else "n/a")
            elif cell["n"] > 1:
                cells.append(f"{cell['mean']:.1f} ± {cell['std']:.1f} ({cell['n']})")
            else:
                cells.append(f"{cell['mean']:.1f} (1)")
        lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(records: list[dict], path: str | Path, metric: str = "accuracy", title: str | None = None) -> Path:
    """Accuracy (or macro-F1) against the sub-sample level, one line per method, error bars = std."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("The plot needs matplotlib: pip install 'gpt3mix_hf[plot]'") from error
    summary = summarize(records, metric)
    figure, axes = plt.subplots(figsize=(6, 4))
    unavailable = []
    for method in [m for m in METHODS if m in summary]:
        points = sorted((level, cell) for level, cell in summary[method].items() if cell["status"] == OK)
        if not points:
            unavailable.append(METHOD_NAMES[method])
            continue
        x = [100 * level for level, _ in points]
        y = [cell["mean"] for _, cell in points]
        errors = [0 if math.isnan(cell["std"]) else cell["std"] for _, cell in points]
        axes.errorbar(x, y, yerr=errors, marker="o", capsize=3, label=METHOD_NAMES[method])
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    levels = sorted({100 * level for cells in summary.values() for level in cells})
    axes.set_xticks(levels)
    axes.set_xticklabels([f"{level:g} %" for level in levels])
    axes.set_xlabel("training data (share of train, class balanced)")
    axes.set_ylabel(f"test {metric.replace('_', '-')} (%)")
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    if unavailable:
        figure.text(0.01, 0.01, f"n/a (no run could be made): {', '.join(unavailable)}", fontsize=8, color="gray")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_summary(output_dir: str | Path, metric: str = "accuracy", prefix: str | None = None) -> tuple[str, Path]:
    """Write `<prefix>_table.md` (accuracy and macro-F1) and `<prefix>_plot.png` into `output_dir`."""
    output_dir = Path(output_dir)
    records = load_runs(output_dir)
    if not records:
        raise FileNotFoundError(f"No run JSONs under {output_dir / 'runs'}: run the experiment first.")
    prefix = prefix or records[0]["dataset"]
    seeds = sorted({(r["data_index"], r["repeat"]) for r in records if r["status"] == OK})
    table = (
        f"Test accuracy (%), mean ± std over runs (number of runs in brackets; {len(seeds)} data seed x repeat "
        f"pairs found):\n\n{markdown_table(records, 'accuracy')}\n\nTest macro-F1 (%):\n\n"
        f"{markdown_table(records, 'macro_f1')}\n"
    )
    (output_dir / f"{prefix}_table.md").write_text(table)
    path = plot(records, output_dir / f"{prefix}_plot.png", metric, title=f"{prefix}: {metric} vs training data")
    return table, path
