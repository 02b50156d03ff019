"""`GPT3MixTrainer`: a `transformers.Trainer` for sequence classifiers that learns from GPT3Mix's soft labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from transformers import (
    EarlyStoppingCallback,
    EvalPrediction,
    IntervalStrategy,
    PreTrainedModel,
    SchedulerType,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging

from ..state import check_folder_path
from .arguments import SOFT_LABEL_COLUMNS, GPT3MixTrainingArguments
from .losses import kl_divergence, soft_cross_entropy
from .metrics import compute_metrics as default_compute_metrics

logger = logging.get_logger(__name__)

LABEL_KEYS = ("labels", "label", "label_ids")
# datasets' ClassLabel marks a row without a label with -1.
MISSING_LABEL = -1
# The schedulers whose warm-up is transformers' linear ramp t / W from 0 (see `nonzero_warmup`).
LINEAR_WARMUP_SCHEDULERS = {
    SchedulerType.LINEAR,
    SchedulerType.COSINE,
    SchedulerType.COSINE_WITH_RESTARTS,
    SchedulerType.POLYNOMIAL,
    SchedulerType.CONSTANT_WITH_WARMUP,
    SchedulerType.COSINE_WITH_MIN_LR,
}


def _nonzero_warmup(schedule: Callable[[int], float], warmup_steps: int) -> Callable[[int], float]:
    """`schedule` with its warm-up `t / W` replaced by `(t + 1) / (W + 1)`: the first step trains too."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return schedule(step)

    return factor


def _label_error(label: Any, num_labels: int, where: str) -> ValueError:
    return ValueError(
        f"{where} has label {label!r}, outside [0, {num_labels}) (the model has num_labels={num_labels}). Fix or "
        "drop the row (e.g. dataset.filter(lambda row: 0 <= row['label'] < num_labels)); -1 (datasets' 'no label') "
        "is accepted only on rows that carry soft_labels, which are then the target."
    )


def _label_kind_error(label: Any, key: str, where: str) -> ValueError | None:
    """Why `label` cannot be a class id (a name, a fraction), with how to encode the column; None when it can."""
    if getattr(label, "ndim", None) == 0 and hasattr(label, "item"):
        label = label.item()  # a numpy scalar or a 0-d tensor (a dataset formatted as torch)
    if isinstance(label, str):
        return ValueError(
            f"{where} has the label {label!r}, a name: the trainer needs class ids. Encode the column first: dataset "
            f"= dataset.class_encode_column({key!r}) (names in sorted order), or dataset.cast_column({key!r}, "
            "ClassLabel(names=[...])) to choose the order, then load the model with num_labels=<number of names>."
        )
    if isinstance(label, float | np.floating) and not float(label).is_integer():
        return ValueError(
            f"{where} has the label {label!r}, a fraction: a label is one class id. Give each row its class id, and "
            "a row's probabilities, if any, in a 'soft_labels' column (one value per class, summing to 1)."
        )
    if isinstance(label, bool) or not isinstance(label, int | float | np.integer | np.floating):
        return ValueError(f"{where} has the label {label!r} ({type(label).__name__}): give class ids (integers).")
    return None


def validate_soft_labels(
    soft_labels: Any, num_labels: int, tolerance: float, where: str = "", row_ids: list[int] | None = None
) -> np.ndarray:
    """Check a table of soft labels (one row per example) and return it as a float32 array.

    Raises a `ValueError` that names the first bad row (by its position, or by `row_ids[position]`) when a row has
    the wrong width, NaN or infinite values, negative values, or does not sum to 1 within `tolerance`.
    """
    where = f" in {where}" if where else ""
    rows = list(soft_labels)
    row_ids = list(range(len(rows))) if row_ids is None else row_ids
    for position, row in enumerate(rows):
        index = row_ids[position]
        if row is None or len(row) != num_labels:
            width = None if row is None else len(row)
            if not width:
                fix = (
                    "An empty soft label marks a synthetic row that failed: drop such rows (concatenate_with_real "
                    "does), or give the row one probability per label."
                )
            elif width < 2:
                fix = "A classifier needs at least 2 labels: give every row one probability per label."
            else:
                fix = f"Give every row one probability per label, or load the model with num_labels={width}."
            raise ValueError(
                f"soft_labels{where}: row {index} has {width or 0} values but the model has {num_labels} labels "
                f"(config.num_labels). {fix}"
            )
    array = np.asarray(rows, dtype=np.float32).reshape(len(rows), num_labels)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"soft_labels{where}: row {row_ids[position]} holds NaN or infinite values {array[position].tolist()}."
        )
    bad = (array < 0).any(axis=1)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"soft_labels{where}: row {row_ids[position]} has negative values {array[position].tolist()}: soft "
            "labels are probabilities."
        )
    sums = array.sum(axis=1)
    bad = np.abs(sums - 1.0) > tolerance
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"soft_labels{where}: row {row_ids[position]} sums to {sums[position]:.6g}, not 1 (tolerance "
            f"{tolerance}): {array[position].tolist()}. Normalise the rows (e.g. "
            "gpt3mix_hf.labels.normalize_logprobs on log-probabilities) or raise soft_label_tolerance."
        )
    return array


class SoftLabelCollator:
    """Wraps a data collator so that every labelled batch carries `labels`, `soft_labels` and `is_synthetic`.

    `soft_labels` and `is_synthetic` are taken out of the rows before the wrapped collator runs (tokenizer padding
    has no business with them). A row without soft labels gets the one-hot of its label, which must lie in
    `[0, num_labels)`; a row without a label (or with datasets' "no label" -1) gets the arg-max of its soft labels; a
    row without `is_synthetic` counts as real.
    """

    def __init__(self, data_collator: Callable, num_labels: int, tolerance: float = 1e-3):
        self.data_collator = data_collator
        self.num_labels = num_labels
        self.tolerance = tolerance

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        features = [dict(feature) for feature in features]
        soft_rows = [feature.pop("soft_labels", None) for feature in features]
        synthetic_rows = [feature.pop("is_synthetic", None) for feature in features]
        label_rows = [next((feature[key] for key in LABEL_KEYS if feature.get(key) is not None), None)
                      for feature in features]
        for row, label in enumerate(label_rows):
            error = None if label is None else _label_kind_error(label, "label", f"Row {row} of the batch")
            if error is not None:
                raise error
        has_labels = any(label is not None for label in label_rows) or any(soft is not None for soft in soft_rows)
        if has_labels:
            for row, feature in enumerate(features):
                label = label_rows[row]
                if label is not None and not (0 <= int(label) < self.num_labels or int(label) == MISSING_LABEL):
                    raise _label_error(label, self.num_labels, f"Row {row} of the batch")
                if soft_rows[row] is None:
                    if label is None:
                        raise ValueError(
                            "A row of the batch has neither a label nor soft_labels; label every row (a 'label' "
                            "column, 'soft_labels', or both)."
                        )
                    if int(label) == MISSING_LABEL:
                        raise _label_error(label, self.num_labels, f"Row {row} of the batch")
                    soft_rows[row] = np.eye(self.num_labels, dtype=np.float32)[int(label)]
                if label is None or int(label) == MISSING_LABEL:
                    for key in LABEL_KEYS:
                        feature.pop(key, None)
                    feature["label"] = int(np.argmax(soft_rows[row]))
        batch = self.data_collator(features)
        if not has_labels:
            return batch
        batch["soft_labels"] = torch.from_numpy(validate_soft_labels(soft_rows, self.num_labels, self.tolerance,
                                                                     "the batch"))
        batch["is_synthetic"] = torch.tensor([bool(flag) for flag in synthetic_rows])
        if "labels" not in batch and "label" in batch:
            batch["labels"] = batch.pop("label")
        return batch


def _dataset_num_labels(dataset) -> int | None:
    """The number of labels a dataset declares: its ClassLabel, else the width of its soft labels."""
    features = getattr(dataset, "features", None)
    if not features:
        return None
    for key in LABEL_KEYS:
        if key in features and hasattr(features[key], "num_classes"):
            return features[key].num_classes
    if "soft_labels" in features and isinstance(dataset, datasets.Dataset) and len(dataset) > 0:
        return len(dataset[0]["soft_labels"])
    return None


def _class_names(dataset) -> list[str] | None:
    """The names of a dataset's ClassLabel column, if it has one."""
    features = getattr(dataset, "features", None) or {}
    for key in LABEL_KEYS:
        if key in features and hasattr(features[key], "names"):
            return list(features[key].names)
    return None


class GPT3MixTrainer(Trainer):
    """A [`~transformers.Trainer`] for any `AutoModelForSequenceClassification` that trains on soft labels.

    A drop-in for `Trainer`: it takes the same arguments (a plain `TrainingArguments` is converted with
    [`GPT3MixTrainingArguments.from_training_arguments`]), and on a dataset without soft labels it trains exactly
    as `Trainer` does on `labels` (the same loss, the same steps), on one process without gradient accumulation.
    With accumulation or several processes, transformers 5.24's `Trainer` multiplies a sequence classifier's mean
    loss by the number of micro-batches or processes; this class gives the loss of one large batch.

    On top of that, rows may carry `soft_labels` (one probability per label, as made by [`GPT3MixAugmenter`]) and
    `is_synthetic`; rows without soft labels use the one-hot of `label`. The loss is [`soft_cross_entropy`] (the
    paper) or [`kl_divergence`] at a temperature, per `args.loss_type`, with synthetic rows weighted by
    `args.synthetic_weight`; it is summed over rows and divided by the number of rows of the whole accumulated batch
    (over all processes). `compute_metrics` receives `EvalPrediction(predictions, label_ids)` with the class labels,
    as from `Trainer`; the default reports accuracy and macro-F1. Training stops early after
    `args.early_stopping_patience` evaluations without improvement; without an `eval_dataset`, evaluation, early
    stopping and best-model selection are turned off (with one warning).

    The model's `problem_type` is pinned to `"single_label_classification"`, so the saved model predicts with a
    softmax (float targets would otherwise make transformers treat it as multi-label).

    Args:
        model (`PreTrainedModel`): a sequence classifier with `config.num_labels` equal to the dataset's labels (a
            `peft` model wrapping one works too).
        args (`GPT3MixTrainingArguments` or `TrainingArguments`, *optional*): defaults to
            `GPT3MixTrainingArguments("<model>-gpt3mix")`.
        compute_metrics (`Callable`, *optional*): defaults to [`gpt3mix_hf.training.metrics.compute_metrics`].
        Other arguments are those of [`~transformers.Trainer`].

    Example:

    >>> from transformers import AutoModelForSequenceClassification, AutoTokenizer
    >>> model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    >>> trainer = GPT3MixTrainer(model, GPT3MixTrainingArguments("out"), train_dataset=train, eval_dataset=val,
    ...                          processing_class=AutoTokenizer.from_pretrained(path))
    >>> trainer.train()
    """

    # compute_loss divides by the row count of the whole accumulated batch itself (transformers >= 5.19 reads this).
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model: PreTrainedModel | None = None,
        args: GPT3MixTrainingArguments | TrainingArguments | None = None,
        data_collator: Callable | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        compute_metrics: Callable | None = None,
        callbacks: list | None = None,
        **kwargs,
    ):
        if model is None:
            raise ValueError("GPT3MixTrainer needs a model, e.g. AutoModelForSequenceClassification.from_pretrained.")
        if args is None:
            name = getattr(model.config, "_name_or_path", "") or "model"
            args = GPT3MixTrainingArguments(output_dir=f"{name.rstrip('/').split('/')[-1]}-gpt3mix")
        elif not isinstance(args, GPT3MixTrainingArguments):
            if not isinstance(args, TrainingArguments):
                raise TypeError(
                    f"args is a {type(args).__name__}; pass a GPT3MixTrainingArguments or a transformers "
                    "TrainingArguments."
                )
            args = GPT3MixTrainingArguments.from_training_arguments(args)
        if eval_dataset is None and (
            IntervalStrategy(args.eval_strategy) != IntervalStrategy.NO or args.early_stopping_patience is not None
        ):
            logger.warning(
                f"No eval_dataset: training without evaluation (eval_strategy was {args.eval_strategy!r}), early "
                f"stopping (patience {args.early_stopping_patience}) or best-model selection. Pass an eval_dataset of "
                "real rows to have them."
            )
            # A copy, so that the caller's arguments still hold what they set.
            args = dataclasses.replace(
                args, eval_strategy="no", early_stopping_patience=None, load_best_model_at_end=False,
                save_strategy="no" if args.save_strategy == "best" else args.save_strategy,
            )
        self._check_model(model)
        if args.output_dir is not None:
            check_folder_path(args.output_dir, "args.output_dir")  # saved into after training: said now
        eval_sets = eval_dataset if isinstance(eval_dataset, dict) else {"eval_dataset": eval_dataset}
        train_names = _class_names(train_dataset)
        model_names = [str(name) for _, name in sorted((getattr(model.config, "id2label", None) or {}).items())]
        if train_names is not None and model_names != train_names and sorted(model_names) == sorted(train_names):
            raise ValueError(
                f"The model's id2label lists {model_names}, train_dataset's labels are {train_names}: the same "
                "classes in another order, so its outputs would be read as the wrong class. Re-encode the data by "
                "name (from gpt3mix_hf.data import align_label_names; align_label_names(dataset, 'label', "
                f"{model_names})), or load the model with id2label in the data's order."
            )
        for name, dataset in {"train_dataset": train_dataset, **eval_sets}.items():
            self._check_dataset(dataset, model.config.num_labels, args.soft_label_tolerance, name)
            names = _class_names(dataset)
            if name != "train_dataset" and train_names is not None and names is not None and names != train_names:
                # Casting to the other ClassLabel would keep the ids and so flip the classes: re-encode by name.
                fix = (
                    f"re-encode it by name: from gpt3mix_hf.data import align_label_names; {name} = "
                    f"align_label_names({name}, 'label', {train_names})"
                    if sorted(names) == sorted(train_names) else "evaluate on data with train_dataset's classes"
                )
                raise ValueError(
                    f"{name}'s label names {names} differ from train_dataset's {train_names}: the same label id "
                    f"would mean different classes. To compare them by name, {fix}."
                )
        for name, dataset in eval_sets.items():
            self._check_real_rows(dataset, name)
            self._check_eval_columns(dataset, name)
        if compute_metrics is None and eval_dataset is not None:
            self._check_metric_for_best_model(args)

        callbacks = list(callbacks or [])
        if args.early_stopping_patience is not None and not any(
            isinstance(callback, EarlyStoppingCallback) or callback is EarlyStoppingCallback for callback in callbacks
        ):
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics if compute_metrics is not None else default_compute_metrics,
            callbacks=callbacks,
            **kwargs,
        )
        self.data_collator = SoftLabelCollator(
            self.data_collator, model.config.num_labels, tolerance=args.soft_label_tolerance
        )

    @staticmethod
    def _check_model(model: PreTrainedModel) -> None:
        config = model.config
        if getattr(config, "num_labels", 0) < 2:
            raise ValueError(
                f"The model has num_labels={getattr(config, 'num_labels', None)}; GPT3MixTrainer trains single-label "
                "classifiers with at least 2 labels. Load it with num_labels=<number of classes>."
            )
        if config.problem_type not in (None, "single_label_classification"):
            logger.warning(
                f"The model's problem_type was {config.problem_type!r}; GPT3MixTrainer sets it to "
                "'single_label_classification' (soft labels are distributions over one label per row)."
            )
        # Float targets would make the model's own loss (and pipelines after saving) treat it as multi-label.
        config.problem_type = "single_label_classification"

    @staticmethod
    def _check_dataset(dataset, num_labels: int, tolerance: float, name: str) -> None:
        if dataset is None:
            return
        dataset_labels = _dataset_num_labels(dataset)
        if dataset_labels is not None and dataset_labels != num_labels:
            names = _class_names(dataset)
            raise ValueError(
                f"{name} has {dataset_labels} labels{f' {names}' if names else ''} but the model has num_labels="
                f"{num_labels}. Load the model with AutoModelForSequenceClassification.from_pretrained(..., "
                f"num_labels={dataset_labels}), or use a dataset with {num_labels} labels."
            )
        if not isinstance(dataset, datasets.Dataset):
            return  # an IterableDataset is checked batch by batch, by the collator
        soft = None
        if "soft_labels" in dataset.column_names:
            soft = dataset["soft_labels"]
            # Rows without soft labels (None) train on their one-hot label; the rest must be distributions.
            present = [index for index, row in enumerate(soft) if row is not None]
            validate_soft_labels([soft[index] for index in present], num_labels, tolerance, name, row_ids=present)
        label_key = next((key for key in LABEL_KEYS if key in dataset.column_names), None)
        if label_key is None:
            return
        for index, label in enumerate(dataset[label_key]):
            error = None if label is None else _label_kind_error(label, label_key, f"{name} row {index}")
            if error is not None:
                raise error
        labels = np.asarray([MISSING_LABEL if label is None else label for label in dataset[label_key]])
        has_soft = np.zeros(len(labels), dtype=bool) if soft is None else np.array([row is not None for row in soft])
        valid = (labels >= 0) & (labels < num_labels)
        bad = ~valid & ~(has_soft & (labels == MISSING_LABEL))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise _label_error(int(labels[index]), num_labels, f"{name} row {index}")

    @staticmethod
    def _check_metric_for_best_model(args) -> None:
        """With the default `compute_metrics`, a `metric_for_best_model` it does not report would fail at the first
        evaluation, after an epoch of training: refused here, with the names it does report."""
        metric = args.metric_for_best_model
        if metric is None or IntervalStrategy(args.eval_strategy) == IntervalStrategy.NO:
            return
        sample = EvalPrediction(predictions=np.array([[1.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 1]))
        reported = {"loss", *default_compute_metrics(sample)}
        if metric.removeprefix("eval_") not in reported:
            raise ValueError(
                f"metric_for_best_model={metric!r}, but the evaluation reports {sorted(reported)}: choose one of "
                "them, or pass a compute_metrics that reports it."
            )

    @staticmethod
    def _check_eval_columns(dataset, name: str) -> None:
        """An evaluation set needs labels (`label`/`labels`/`label_ids` or `soft_labels`): refused here rather
        than at the first evaluation, after an epoch of training."""
        features = getattr(dataset, "features", None)
        if dataset is None or not features:
            return  # a stream of unknown features is checked batch by batch
        if not any(key in features for key in (*LABEL_KEYS, "soft_labels")):
            raise ValueError(
                f"{name} has no labels: it has the columns {list(features)}, and neither 'label' nor 'soft_labels'. "
                "The metrics and early stopping compare predictions with labels: keep the label column when you "
                "tokenize (e.g. remove_columns=['text'] only), or rename it to 'label'."
            )

    @staticmethod
    def _check_real_rows(dataset, name: str) -> None:
        if not isinstance(dataset, datasets.Dataset) or "is_synthetic" not in dataset.column_names:
            return
        synthetic = int(np.sum([bool(flag) for flag in dataset["is_synthetic"]]))
        if synthetic:
            raise ValueError(
                f"{name} holds {synthetic} synthetic rows (is_synthetic=True): the metrics would score the model "
                f"against the LM's labels. Evaluate on real rows: {name}.filter(lambda row: not row['is_synthetic'])."
            )

    def _set_signature_columns_if_needed(self) -> None:
        # Keep the soft-label columns through remove_unused_columns without listing them in label_names, which
        # would turn the label_ids handed to compute_metrics into a tuple.
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            missing = [column for column in SOFT_LABEL_COLUMNS if column not in self._signature_columns]
            self._signature_columns += missing

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """The stock scheduler, with a warm-up that never gives a step a learning rate of 0 (`args.nonzero_warmup`)."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        warmup_steps = self.args.get_warmup_steps(num_training_steps)
        if (
            getattr(self.args, "nonzero_warmup", False)
            and warmup_steps > 0
            and SchedulerType(self.args.lr_scheduler_type) in LINEAR_WARMUP_SCHEDULERS
            and isinstance(scheduler, LambdaLR)
        ):
            # A second LambdaLR on the same optimizer starts from the learning rates the first one recorded.
            self.lr_scheduler = LambdaLR(
                scheduler.optimizer, [_nonzero_warmup(schedule, warmup_steps) for schedule in scheduler.lr_lambdas]
            )
        return self.lr_scheduler

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor | Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """The soft-label loss of a batch; the model's own loss is not computed (no `labels` reach it)."""
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        soft_labels = inputs.pop("soft_labels", None)
        is_synthetic = inputs.pop("is_synthetic", None)
        outputs = model(**inputs)
        logits = (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float()
        if soft_labels is None:
            if labels is None:
                raise ValueError("The batch has neither 'labels' nor 'soft_labels': the loss needs one of them.")
            soft_labels = F.one_hot(labels.long(), logits.shape[-1])
        weights = None
        if is_synthetic is not None and self.args.synthetic_weight != 1.0:
            weights = torch.where(is_synthetic.to(logits.device).bool(), self.args.synthetic_weight, 1.0)
        if self.args.loss_type == "kl":
            per_row = kl_divergence(logits, soft_labels.float(), self.args.temperature, weights)
        else:
            per_row = soft_cross_entropy(logits, soft_labels.float(), weights)

        if num_items_in_batch is not None:
            # num_items_in_batch counts the rows (labels != -100) of all micro-batches of this optimizer step.
            loss = per_row.sum() / num_items_in_batch
            if self.args.average_tokens_across_devices:
                # As in Trainer.compute_loss: the count was summed over processes, whose gradients are averaged.
                loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1
                               else self.args.n_gpu)
        else:
            # The Trainer counts rows only for models whose forward takes **kwargs; otherwise fall back to the
            # per-batch mean, shared between the micro-batches of the step.
            loss = per_row.mean()
            if model.training:
                loss = loss / getattr(self, "current_gradient_accumulation_steps", 1)
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, **kwargs) -> None:
        """The GPT3Mix model card (the one `push_classifier` publishes) in `args.output_dir/README.md`, with the
        provenance beside it: `trainer.push_to_hub(provenance=..., dataset_tags="me/sst2-gpt3mix")`. The arguments
        are `Trainer.create_model_card`'s and the card's fields (`cards.write_trainer_model_card`)."""
        if not self.is_world_process_zero():
            return
        from ..hub.cards import write_trainer_model_card

        write_trainer_model_card(self, **kwargs)
