"""What a training run records for its model card: the hyper-parameters and the loss read from the arguments it
was trained with, written to `gpt3mix_training.json` beside the model (or, without that file, read from the
`training_args.bin` the `Trainer` saved there)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transformers.modelcard import extract_hyperparameters_from_trainer

from ...state import read_json

_LOSS_FIELDS = ("loss_type", "temperature", "synthetic_weight")
# What the card needs from a training run, written beside the model by `create_model_card` (and `gpt3mix train`):
# the hyper-parameters and loss read from the arguments actually used, and where the evaluation was made.
TRAINING_RECORD_NAME = "gpt3mix_training.json"
# Read from a folder without that record: the arguments the `Trainer` pickles beside its checkpoints.
TRAINING_ARGS_NAME = "training_args.bin"


def training_hyperparameters(args) -> dict[str, Any]:
    """The hyper-parameters of a run, read from its `TrainingArguments` as the stock `Trainer` card reads them,
    plus the GPT3Mix loss settings and early stopping; values at full precision (3e-05 stays 3e-05)."""
    hyperparameters = extract_hyperparameters_from_trainer(SimpleNamespace(args=args))
    optim = getattr(args, "optim", None)
    if "optimizer" in hyperparameters and hasattr(optim, "value"):
        # transformers formats the enum itself ("OptimizerNames.ADAMW_TORCH"): show the name one passes.
        hyperparameters["optimizer"] = hyperparameters["optimizer"].replace(str(optim), optim.value)
    warmup = hyperparameters.get("lr_scheduler_warmup_steps")
    if isinstance(warmup, float) and 0 < warmup < 1:
        # transformers reads a warm-up in (0, 1) as a share of the steps; its card still calls it "steps".
        hyperparameters["lr_scheduler_warmup_ratio"] = hyperparameters.pop("lr_scheduler_warmup_steps")
    if getattr(args, "weight_decay", 0.0):
        hyperparameters["weight_decay"] = args.weight_decay
    if getattr(args, "bf16", False):
        hyperparameters["bf16"] = True
    for name in ("early_stopping_patience", "metric_for_best_model", "nonzero_warmup", *_LOSS_FIELDS):
        value = getattr(args, name, None)
        if value is not None and (name != "metric_for_best_model" or getattr(args, "load_best_model_at_end", False)):
            hyperparameters[name] = value
    return {name: value.value if hasattr(value, "value") else value for name, value in hyperparameters.items()}


def training_loss(args, train_dataset=None) -> dict[str, Any]:
    """The loss a run used: the GPT3Mix loss settings when the arguments have them (`GPT3MixTrainer`), else
    nothing (the stock `Trainer`'s cross-entropy); `soft_targets` says whether the rows had soft labels."""
    if getattr(args, "loss_type", None) is None:
        return {}
    loss = {name: getattr(args, name) for name in _LOSS_FIELDS if getattr(args, name, None) is not None}
    columns = getattr(train_dataset, "column_names", None)
    if columns is not None:
        loss["soft_targets"] = "soft_labels" in columns
    return loss


def read_training_record(folder: str | Path) -> dict[str, Any]:
    """What a model folder says about its training: `gpt3mix_training.json` (written by `create_model_card` and
    `gpt3mix train`), else the `training_args.bin` the `Trainer` saved beside the model. That file is a pickle:
    it is read with `torch.load(weights_only=False)`, as the `Trainer` reads it when it resumes, so only read
    folders you trust. Returns `hyperparameters`, `loss` and the recorded card fields; `{}` when neither exists."""
    folder = Path(folder)
    if (folder / TRAINING_RECORD_NAME).exists():
        record = read_json(folder / TRAINING_RECORD_NAME)
        return {key: value for key, value in record.items() if value is not None}
    if (folder / TRAINING_ARGS_NAME).exists():
        import torch

        args = torch.load(folder / TRAINING_ARGS_NAME, weights_only=False)
        return {"hyperparameters": training_hyperparameters(args), "loss": training_loss(args)}
    return {}
