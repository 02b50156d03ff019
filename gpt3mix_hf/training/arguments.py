"""Training arguments of `GPT3MixTrainer`: the soft-label loss, the weight of synthetic rows, early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from transformers import IntervalStrategy, TrainingArguments
from transformers.utils import logging

from ..validation import check_fields

logger = logging.get_logger(__name__)

LOSS_TYPES = ("soft_ce", "kl")
# The columns GPT3MixTrainer reads besides the model's inputs; kept through the Trainer's column pruning.
SOFT_LABEL_COLUMNS = ["soft_labels", "is_synthetic"]


@dataclass
class GPT3MixTrainingArguments(TrainingArguments):
    r"""
    Configuration of [`GPT3MixTrainer`]. Only the parameters specific to GPT3Mix are listed here; see
    [`~transformers.TrainingArguments`] for the others.

    Some defaults differ from `TrainingArguments`, to follow the GPT3Mix paper: `learning_rate=3e-5`,
    `warmup_steps=0.1` (10 % of the steps), evaluation and saving once per epoch, `metric_for_best_model="accuracy"`,
    `load_best_model_at_end=True` when early stopping is on, and `save_total_limit=1`. `label_names` keeps its
    `TrainingArguments` meaning (the `soft_labels` and `is_synthetic` columns are kept through column pruning
    without being listed there), so `compute_metrics` gets the class labels as with the stock `Trainer`.

    [`GPT3MixTrainer`] also accepts a plain `TrainingArguments`: it is converted with
    [`GPT3MixTrainingArguments.from_training_arguments`], which keeps every value the user set and the stock
    behaviour (no early stopping), and gives the fields below their defaults.

    Parameters:
        loss_type (`str`, *optional*, defaults to `"soft_ce"`):
            `"soft_ce"`: cross-entropy against the soft label (the paper). `"kl"`: KL divergence from the soft label
            to the classifier's distribution, both at `temperature`, scaled by `temperature**2` (distillation).
        temperature (`float`, *optional*, defaults to `1.0`):
            Softmax temperature of the classifier's logits and of the soft labels (`p ** (1 / T)`, renormalised)
            for `loss_type="kl"`.
        synthetic_weight (`float`, *optional*, defaults to `1.0`):
            Weight of the loss of synthetic rows (`is_synthetic=True`); real rows weigh 1. The loss is the weighted
            sum divided by the number of rows.
        early_stopping_patience (`int` or `None`, *optional*, defaults to `20`):
            Stop when `metric_for_best_model` has not improved for this many evaluations (epochs with the default
            `eval_strategy="epoch"`; the paper uses 20). `None` (or 0, for the command line) turns early stopping
            off.
        soft_label_tolerance (`float`, *optional*, defaults to `1e-3`):
            How far a row's soft labels may sum from 1 before the trainer refuses them.
        nonzero_warmup (`bool`, *optional*, defaults to `True`):
            Linear warm-up over `W` steps gives step `t < W` the factor `(t + 1) / (W + 1)` instead of transformers'
            `t / W`, so that no optimizer step has a learning rate of 0. With a few rows (one step per epoch) the
            stock warm-up leaves the whole first epoch untrained, and early stopping may then keep the initial
            weights as "best". Applies to the schedulers with a linear warm-up (`linear`, `cosine`,
            `cosine_with_restarts`, `polynomial`, `constant_with_warmup`, `cosine_with_min_lr`); after warm-up the
            schedule is the stock one.

    Example:

    >>> args = GPT3MixTrainingArguments(output_dir="out", loss_type="kl", temperature=2.0, synthetic_weight=0.5)
    >>> args.early_stopping_patience, args.load_best_model_at_end
    (20, True)
    """

    # Paper defaults that differ from TrainingArguments.
    learning_rate: float = field(
        default=3e-5, metadata={"help": "The initial learning rate for AdamW (the GPT3Mix paper: 3e-5)."}
    )
    warmup_steps: float = field(
        default=0.1,
        metadata={"help": "Linear warm-up: a number of steps, or a float in [0, 1) for a ratio of all steps."},
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: 'no', 'steps' or 'epoch'."})
    save_strategy: str = field(
        default="epoch", metadata={"help": "When to save checkpoints: 'no', 'steps', 'epoch' or 'best'."}
    )
    save_total_limit: int | None = field(
        default=1,
        metadata={"help": "Checkpoints to keep; the best one is always kept when load_best_model_at_end is on."},
    )
    metric_for_best_model: str | None = field(
        default="accuracy", metadata={"help": "The validation metric for early stopping and the best checkpoint."}
    )
    load_best_model_at_end: bool | None = field(
        default=None,
        metadata={"help": "Reload the best checkpoint after training. Defaults to True when early stopping is on."},
    )
    # New parameters.
    loss_type: str = field(
        default="soft_ce",
        metadata={"help": "'soft_ce' (cross-entropy against the soft label, the paper) or 'kl' (KL at temperature)."},
    )
    temperature: float = field(
        default=1.0, metadata={"help": "Temperature of the classifier's softmax and of the soft labels for "
                                    "loss_type='kl' (loss times T²)."}
    )
    synthetic_weight: float = field(
        default=1.0, metadata={"help": "Weight of the loss of synthetic rows (is_synthetic=True); real rows weigh 1."}
    )
    early_stopping_patience: int | None = field(
        default=20,
        metadata={"help": "Evaluations without improvement before training stops (the paper: 20); 0/None disables."},
    )
    soft_label_tolerance: float = field(
        default=1e-3, metadata={"help": "How far a row's soft labels may sum from 1 before they are refused."}
    )
    nonzero_warmup: bool = field(
        default=True,
        metadata={
            "help": "Linear warm-up gives step t < W the factor (t+1)/(W+1), not t/W: no step has learning rate 0 "
            "(with one step per epoch, the stock warm-up leaves epoch 1 untrained)."
        },
    )

    def __post_init__(self):
        check_fields(self, inherited_from=TrainingArguments)
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type={self.loss_type!r} is not supported: use one of {LOSS_TYPES}.")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(
                f"temperature={self.temperature} must be a finite number > 0 (1.0 leaves the logits as they are)."
            )
        if not (math.isfinite(self.synthetic_weight) and self.synthetic_weight >= 0):
            raise ValueError(
                f"synthetic_weight={self.synthetic_weight} must be a finite number >= 0 (0 gives synthetic rows no "
                "loss, though they still count among the rows the loss is divided by; 1 weighs them like real ones)."
            )
        if not (math.isfinite(self.soft_label_tolerance) and self.soft_label_tolerance > 0):
            raise ValueError(
                f"soft_label_tolerance={self.soft_label_tolerance} must be a finite number > 0, e.g. 1e-3."
            )
        if self.early_stopping_patience == 0:
            # 0 is how a command line says "off" (HfArgumentParser cannot pass None).
            self.early_stopping_patience = None
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 0:
                raise ValueError(
                    f"early_stopping_patience={self.early_stopping_patience} must be >= 1, or None (or 0) to disable "
                    "early stopping."
                )
            if IntervalStrategy(self.eval_strategy) == IntervalStrategy.NO:
                raise ValueError(
                    f"early_stopping_patience={self.early_stopping_patience} needs evaluations, but "
                    f"eval_strategy={self.eval_strategy!r}: set eval_strategy='epoch' or early_stopping_patience=None "
                    "(0 on a command line)."
                )
            if self.metric_for_best_model is None:
                raise ValueError(
                    "early_stopping_patience is set but metric_for_best_model=None: set metric_for_best_model (e.g. "
                    "'accuracy') or early_stopping_patience=None (0 on a command line)."
                )
            if self.eval_on_start:
                raise ValueError(
                    "eval_on_start=True with early stopping would make the untrained model's score the one to beat "
                    "(and could keep the initial weights as the best model): set eval_on_start=False, or "
                    "early_stopping_patience=None (0 on a command line)."
                )
            if self.load_best_model_at_end is False:
                raise ValueError(
                    "early_stopping_patience is set but load_best_model_at_end=False: early stopping keeps the best "
                    "model, so set load_best_model_at_end=True (or leave it unset), or early_stopping_patience=None "
                    "(0 on a command line)."
                )
        if self.load_best_model_at_end is None:
            self.load_best_model_at_end = self.early_stopping_patience is not None
        super().__post_init__()

    @classmethod
    def from_training_arguments(cls, args: TrainingArguments) -> GPT3MixTrainingArguments:
        """A `GPT3MixTrainingArguments` with every value of a plain `TrainingArguments` (as trl converts to its
        configs); the GPT3Mix fields take their defaults, except those that change what the stock `Trainer` does:
        early stopping stays off and the warm-up stays transformers' own (`nonzero_warmup=False`).

        Example:

        >>> args = GPT3MixTrainingArguments.from_training_arguments(TrainingArguments("out", learning_rate=1e-4))
        >>> args.learning_rate, args.early_stopping_patience, args.loss_type
        (0.0001, None, 'soft_ce')
        """
        if isinstance(args, cls):
            return args
        if not isinstance(args, TrainingArguments):
            raise TypeError(
                f"args is a {type(args).__name__}; pass a transformers.TrainingArguments or a "
                "GPT3MixTrainingArguments."
            )
        values = args.to_dict()
        own = {item.name for item in fields(cls) if item.init}
        dropped = sorted(key for key in values if key not in own)
        if dropped:
            logger.warning(f"{type(args).__name__} fields that GPT3MixTrainingArguments does not have are ignored: "
                           f"{dropped}.")
        values = {key: value for key, value in values.items() if key in own}
        for key in values:
            # to_dict masks every token ("<HUB_TOKEN>"): take the real values back.
            if key.endswith("_token"):
                values[key] = getattr(args, key)
        values["early_stopping_patience"] = None
        values["nonzero_warmup"] = False
        return cls(**values)
