"""`ExperimentArguments`: what a sweep runs — the data, the grid of levels, seeds and methods, the augmenters and
the classifier. The GPT3Mix settings are an `AugmenterConfig` (`ProtocolAugmenterConfig`: the paper's selection
by default) and a `SamplingConfig`, passed beside it, as `gpt3mix augment` takes them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..config import AugmenterConfig
from ..data import DataSourceArguments
from ..models import DEFAULT_CLASSIFIER, DEFAULT_LM
from ..spec import TaskSpecArguments
from ..training.pooling import classifier_head_field, pooling_field
from ..validation import check_fields

# GPT3Mix methods all come from one generation per sub-sample (see `caches.derive_method_rows`).
GPT3MIX_METHODS = ("gpt3mix-soft", "gpt3mix-calibrated", "gpt3mix-hard", "gpt3mix-written", "gpt3mix-debiased")
# "noaug-repeated": NoAug's rows repeated to an augmented run's row count (1 + ratio per real row), so that an epoch
# takes as many optimiser steps as GPT3Mix's: the step-matched control.
METHODS = ("noaug", "noaug-repeated", "eda", "bt", *GPT3MIX_METHODS)
DEFAULT_METHODS = ("noaug", "eda", "gpt3mix-soft", "gpt3mix-calibrated", "gpt3mix-hard")
METHOD_NAMES = {
    "noaug": "NoAug",
    "noaug-repeated": "NoAug, rows repeated (step-matched)",
    "eda": "EDA",
    "bt": "BT",
    "gpt3mix-soft": "GPT3Mix soft",
    "gpt3mix-calibrated": "GPT3Mix soft, calibrated",
    "gpt3mix-hard": "GPT3Mix hard (paper)",
    "gpt3mix-written": "GPT3Mix written label",
    "gpt3mix-debiased": "GPT3Mix debiased (not the paper's)",
}
BASELINE = "noaug"
VALIDATION_SETS = ("held-out", "per-sample")
# 50 rows per class: 100 on a binary task, 300 on TREC6 (whose ABBR class has 86 train rows).
HELD_OUT_PER_CLASS = 50


@dataclass
class ExperimentArguments(DataSourceArguments, TaskSpecArguments):
    """What a sweep runs. The data fields are those of `DataSourceArguments` (a benchmark name, a folder of
    JSONL/CSV splits, a file or a Hub id, and its columns), the task spec those of `TaskSpecArguments`.

    Every method sees the same sub-samples (data seeds) and the same classifier seeds (repeats), so their runs
    pair up: the summary compares methods on matched (data seed, repeat) pairs only.

    Example:

    >>> args = ExperimentArguments(dataset="data/reviews", output_dir="results/reviews", levels=[0.01],
    ...                            methods=["noaug", "gpt3mix-soft"], text_type="review", label_type="sentiment")
    >>> run_experiment(args)
    """

    output_dir: str = field(
        kw_only=True,
        metadata={"help": "Where run JSONs and caches are written (required: a sweep resumes from what is there, and "
                  "refuses a folder whose runs were made with other settings)."},
    )
    test_split: str = field(default="test", metadata={"help": "The split the classifiers are scored on."})
    levels: list[float] = field(
        default_factory=lambda: [0.001, 0.003, 0.01],
        metadata={"help": "Sub-sample fractions of train (class balanced, at least one row per class)."},
    )
    methods: list[str] = field(
        default_factory=lambda: list(DEFAULT_METHODS), metadata={"help": "Methods to run.", "choices": list(METHODS)}
    )
    data_seeds: int = field(
        default=10,
        metadata={"help": "Sub-samples per level, each with its own generation: the independent repeats the intervals "
                  "are taken over (the paper: 5)."},
    )
    repeats: int = field(
        default=1,
        metadata={"help": "Classifier trainings per sub-sample, each with its own seed; they share the sub-sample and "
                  "its generation, so the intervals average them within the data seed."},
    )
    master_seed: int = field(default=42, metadata={"help": "Every data, augmentation and training seed."})
    validation_set: str = field(
        default="held-out",
        metadata={"help": "held-out: one fixed class-balanced set of train rows, drawn once from master_seed and "
                  "kept out of every sub-sample, for all levels, seeds and methods; per-sample: a set carved from the "
                  "rest of train for each sub-sample (the first releases).",
                  "choices": list(VALIDATION_SETS)},
    )
    validation_per_class: int | None = field(
        default=None,
        metadata={"help": f"Validation rows per class; default: {HELD_OUT_PER_CLASS} for held-out (half the "
                  f"smallest class where it has {HELD_OUT_PER_CLASS} rows or fewer), as many as the sample for "
                  "per-sample."},
    )
    max_test_rows: int | None = field(
        default=None,
        metadata={"help": "Score on a fixed class-balanced sample of this many test rows (default: all of them)."},
    )
    lm: str = field(default=DEFAULT_LM, metadata={"help": "GPT3Mix LM: an embedded short name, Hub id or folder."})
    lm_batch_size: int | None = field(
        default=None, metadata={"help": "The local LM's decoding slots (default: the backend's, 64 on CPU)."}
    )
    bt_models: list[str] = field(
        default_factory=lambda: ["Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en"],
        metadata={"help": "Back-translation: the forward and the backward translation model (Hub ids or folders)."},
    )
    classifier: str = field(
        default=DEFAULT_CLASSIFIER, metadata={"help": "Classifier: embedded short name, Hub id or folder."}
    )
    classifier_head: str = classifier_head_field()
    pooling: str = pooling_field()
    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "AdamW learning rate. 1e-4: chosen once on NoAug validation accuracy (SST-2, TREC6 at 1 "
                  "percent; scripts/choose_learning_rate.py, results/lr-sweep/lr_sweep.json) over 3e-5 (the paper's, "
                  "for BERT-base) and 3e-4."},
    )
    num_train_epochs: float = field(
        default=100,
        metadata={"help": "Most training epochs; early stopping usually ends a run well before (50 cut NoAug off on "
                  "TREC6 at the 1 percent level)."},
    )
    early_stopping_patience: int = field(
        default=20,
        metadata={"help": "Epochs without a better validation score before stopping (the paper: 20, on accuracy). The "
                  "score is accuracy_then_nll: an epoch of equal accuracy and lower validation loss is better."},
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    warmup_steps: float = field(
        default=0.1,
        metadata={"help": "Linear warm-up, as GPT3MixTrainingArguments.warmup_steps: steps, or a float < 1 for a "
                  "share of all steps."},
    )
    bf16: bool = field(
        default=False,
        metadata={"help": "Train and score the classifier under bf16 autocast (a GPU, or a CPU with bf16 matrix "
                  "units); weights and optimizer stay fp32."},
    )
    max_length: int = field(default=64, metadata={"help": "Tokens per classifier input (longer texts are cut)."})
    augment_only: bool = field(
        default=False, metadata={"help": "Only build the augmentation caches (e.g. to generate ahead of training)."}
    )
    skip_uncached: bool = field(
        default=False,
        metadata={"help": "Skip GPT3Mix runs whose generation is not cached yet (another process is making it)."},
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "Switch progress bars off."})

    def __post_init__(self):
        check_fields(self)
        for item in fields(self):
            value = getattr(self, item.name)
            for number in value if isinstance(value, list) else [value]:
                if isinstance(number, float) and not math.isfinite(number):
                    raise ValueError(f"{item.name}={number} is not a finite number: give a finite value.")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods {unknown} are unknown; choose from {list(METHODS)}.")
        if not self.methods:
            raise ValueError(f"methods is empty: give at least one of {list(METHODS)}.")
        if not self.levels:
            raise ValueError("levels is empty: give at least one sub-sample fraction, e.g. --levels 0.01.")
        for level in self.levels:
            if not 0 < level <= 1:
                raise ValueError(f"levels must be fractions in (0, 1], got {level}.")
        for name in ("data_seeds", "repeats", "lm_batch_size", "max_length", "per_device_train_batch_size",
                     "per_device_eval_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_test_rows is not None and self.max_test_rows < 1:
            raise ValueError(f"max_test_rows must be >= 1 (or unset for the whole split), got {self.max_test_rows}.")
        if self.validation_per_class is not None and self.validation_per_class < 1:
            raise ValueError(
                f"validation_per_class={self.validation_per_class} gives an empty validation split: early stopping "
                "needs validation rows. Give at least 1 (or leave it unset: as many as the training sample)."
            )
        if self.test_split == "train":
            raise ValueError(
                "test_split='train' would score the classifiers on the rows they are sub-sampled and validated from: "
                "give a split kept apart from train (e.g. --test_split test or validation)."
            )
        if self.validation_set not in VALIDATION_SETS:
            raise ValueError(f"validation_set={self.validation_set!r} is unknown: use one of {list(VALIDATION_SETS)}.")
        if len(self.bt_models) != 2:
            raise ValueError(f"bt_models needs two models (forward, backward), got {self.bt_models}.")
        numbers = (self.learning_rate, self.num_train_epochs, self.warmup_steps)
        if not all(map(math.isfinite, numbers)) or not self.learning_rate > 0 or self.num_train_epochs <= 0 \
                or self.warmup_steps < 0:
            raise ValueError(
                "learning_rate and num_train_epochs must be finite numbers > 0 and warmup_steps >= 0, got "
                f"{self.learning_rate}, {self.num_train_epochs} and {self.warmup_steps}."
            )

    @property
    def source(self) -> DataSourceArguments:
        return DataSourceArguments(**{f.name: getattr(self, f.name) for f in fields(DataSourceArguments)})

    @property
    def task(self) -> TaskSpecArguments:
        return TaskSpecArguments(**{f.name: getattr(self, f.name) for f in fields(TaskSpecArguments)})

    @property
    def name(self) -> str:
        """A short name for the data, for file names and tables."""
        return (self.dataset or "").rstrip("/").replace("\\", "/").split("/")[-1].split(".")[0] or "dataset"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProtocolAugmenterConfig(AugmenterConfig):
    """`AugmenterConfig` as the harness takes it: the paper's selection (`uniform`) by default. The harness sets
    what its methods and seeds decide (`label_mode`, `calibrate`, `seed`), so those must keep their defaults; the
    ratio applies to every augmentation method, and EDA and back-translation make whole rows."""

    selection: str = field(default="uniform", metadata=AugmenterConfig.__dataclass_fields__["selection"].metadata)


def check_protocol_settings(config: AugmenterConfig, methods: list[str]) -> None:
    """Refuse settings the harness would not use: said here, before any run, rather than silently ignored."""
    decided = {"label_mode": "the methods (gpt3mix-soft, -hard, -calibrated, -debiased, -written)",
               "calibrate": "the gpt3mix-calibrated method", "seed": "--master_seed",
               "keep_prompt": "the harness (it keeps no prompts)"}
    defaults = AugmenterConfig()
    for name, by in decided.items():
        if getattr(config, name) != getattr(defaults, name):
            raise ValueError(
                f"{name}={getattr(config, name)!r}: in a sweep, {name} is set by {by}; leave it at its default "
                f"({getattr(defaults, name)!r})."
            )
    whole = [method for method in methods if method in ("eda", "bt")]
    if whole and not float(config.ratio).is_integer():
        raise ValueError(
            f"ratio={config.ratio:g} is not a whole number, but {whole} make whole rows per real row: give a whole "
            "ratio, or leave those methods out."
        )
