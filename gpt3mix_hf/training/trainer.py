"""`GPT3MixTrainer`: a `transformers.Trainer` for sequence classifiers that learns from GPT3Mix's soft labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

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
from transformers.trainer_utils import number_of_arguments
from transformers.utils import logging

from ..state import check_folder_path
from .arguments import SOFT_LABEL_COLUMNS, GPT3MixTrainingArguments
from .label_columns import SoftLabelCollator, check_label_columns
from .losses import kl_divergence, soft_cross_entropy
from .metrics import compute_metrics as default_compute_metrics

logger = logging.get_logger(__name__)

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
    stopping and best-model selection are turned off (with one warning), except for a stock `TrainingArguments`
    that asks for evaluations, which is refused as `Trainer` refuses it.

    The model's `problem_type` is pinned to `"single_label_classification"`, so the saved model predicts with a
    softmax (float targets would otherwise make transformers treat it as multi-label).

    Args:
        model (`PreTrainedModel`, *optional*): a sequence classifier with `config.num_labels` equal to the
            dataset's labels (a `peft` model wrapping one works too); or pass `model_init`, as to `Trainer` (for
            `hyperparameter_search`), and each model it makes is checked the same way.
        args (`GPT3MixTrainingArguments` or `TrainingArguments`, *optional*): defaults to
            `GPT3MixTrainingArguments("<model>-gpt3mix")`.
        compute_metrics (`Callable`, *optional*): defaults to [`gpt3mix_hf.training.metrics.compute_metrics`]
            (none under `args.batch_eval_metrics`, whose function must be batch-aware: the loss only, as `Trainer`).
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
        model_init = kwargs.get("model_init")
        if model is None and model_init is None:
            raise ValueError("GPT3MixTrainer needs a model (e.g. AutoModelForSequenceClassification.from_pretrained) "
                             "or a model_init that makes one.")
        if model_init is not None:
            # Every model it makes (one per hyperparameter_search trial) is checked as a model passed in is.
            kwargs["model_init"] = _checked_model_init(model_init, self._check_model)
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError(
                "GPT3MixTrainer computes its own loss (args.loss_type against each row's soft_labels), so "
                "compute_loss_func would never be called: use transformers.Trainer for a loss of your own, or "
                "override compute_loss in a subclass."
            )
        stock_args = args is not None and not isinstance(args, GPT3MixTrainingArguments)
        if args is None:
            name = getattr(getattr(model, "config", None), "_name_or_path", "") or "model"
            args = GPT3MixTrainingArguments(output_dir=f"{name.rstrip('/').split('/')[-1]}-gpt3mix")
        elif not isinstance(args, GPT3MixTrainingArguments):
            if not isinstance(args, TrainingArguments):
                raise TypeError(
                    f"args is a {type(args).__name__}; pass a GPT3MixTrainingArguments or a transformers "
                    "TrainingArguments."
                )
            args = GPT3MixTrainingArguments.from_training_arguments(args)
        # GPT3MixTrainingArguments evaluate each epoch by default: without an eval set that is switched off. A stock
        # TrainingArguments that asks for evaluations without one is refused by Trainer, as it would be there.
        if eval_dataset is None and not stock_args and (
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
        eval_sets = eval_dataset if isinstance(eval_dataset, dict) else {"eval_dataset": eval_dataset}
        if model is not None:
            self._check_model(model)
            # Before Trainer.__init__, which makes output_dir (and a Hub repository under push_to_hub).
            check_label_columns(model.config, train_dataset, eval_sets, args.soft_label_tolerance)
        if args.output_dir is not None:
            check_folder_path(args.output_dir, "args.output_dir")  # saved into after training: said now
        if compute_metrics is None and eval_dataset is not None:
            self._check_metric_for_best_model(args, eval_dataset)
        if compute_metrics is None and not args.batch_eval_metrics:
            # batch_eval_metrics needs a compute_metrics of its own kind: without one, as with the stock Trainer,
            # the evaluation reports the loss only.
            compute_metrics = default_compute_metrics

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
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            **kwargs,
        )
        if model is None:  # the model model_init made: only now is there a config to check the data against
            check_label_columns(self.model.config, train_dataset, eval_sets, args.soft_label_tolerance)
        self.data_collator = SoftLabelCollator(
            self.data_collator, self.model.config.num_labels, tolerance=args.soft_label_tolerance
        )

    @staticmethod
    def _check_model(model: PreTrainedModel) -> PreTrainedModel:
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
        return model

    @staticmethod
    def _check_metric_for_best_model(args, eval_dataset) -> None:
        """With the default `compute_metrics`, a `metric_for_best_model` it does not report would fail at the first
        evaluation, after an epoch of training: refused here, with the names it does report (the loss only under
        `prediction_loss_only` or `batch_eval_metrics`; each name prefixed with its set's for a dict of eval sets,
        as the Trainer reports them)."""
        metric = args.metric_for_best_model
        if metric is None or IntervalStrategy(args.eval_strategy) == IntervalStrategy.NO:
            return
        reported = {"loss"}
        if not (args.prediction_loss_only or args.batch_eval_metrics):
            sample = EvalPrediction(predictions=np.array([[1.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 1]))
            reported |= set(default_compute_metrics(sample))
        if isinstance(eval_dataset, dict):
            reported = {f"{name}_{key}" for name in eval_dataset for key in reported}
        if metric.removeprefix("eval_") not in reported:
            raise ValueError(
                f"metric_for_best_model={metric!r}, but the evaluation reports "
                f"{sorted(f'eval_{name}' for name in reported)}: choose one of them, or pass a compute_metrics that "
                "reports it."
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
        soft_labels = soft_labels.float()
        if self.args.label_smoothing_factor:
            # As the stock Trainer's LabelSmoother: the target moves epsilon of its mass to a uniform share.
            epsilon = self.args.label_smoothing_factor
            soft_labels = (1 - epsilon) * soft_labels + epsilon / logits.shape[-1]
        weights = None
        if is_synthetic is not None and self.args.synthetic_weight != 1.0:
            weights = torch.where(is_synthetic.to(logits.device).bool(), self.args.synthetic_weight, 1.0)
        if self.args.loss_type == "kl":
            per_row = kl_divergence(logits, soft_labels, self.args.temperature, weights)
        else:
            per_row = soft_cross_entropy(logits, soft_labels, weights)

        if num_items_in_batch is not None and self.args.n_gpu > 1:
            # DataParallel: the logits come back gathered, so per_row holds the whole batch, while the Trainer
            # hands one count per replica (n_gpu x 1), divided by n_gpu unless averaged across devices.
            count = num_items_in_batch.flatten()[0]
            loss = per_row.sum() / (count if self.args.average_tokens_across_devices else count * self.args.n_gpu)
        elif num_items_in_batch is not None:
            # num_items_in_batch counts the rows (labels != -100) of all micro-batches of this optimizer step.
            loss = per_row.sum() / num_items_in_batch
            if self.args.average_tokens_across_devices:
                # As in Trainer.compute_loss: the count was summed over processes, whose gradients are averaged.
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        else:
            # The Trainer counts rows only for models whose forward takes **kwargs; otherwise fall back to the
            # per-batch mean, shared between the micro-batches of the step.
            loss = per_row.mean()
            if model.training:
                loss = loss / getattr(self, "current_gradient_accumulation_steps", 1)
        return (loss, outputs) if return_outputs else loss

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **card_fields,
    ) -> None:
        """The GPT3Mix model card (the one `push_classifier` publishes) in `args.output_dir/README.md`, with the
        provenance beside it: `trainer.push_to_hub(provenance=..., dataset_tags="me/sst2-gpt3mix")`. The arguments
        are `Trainer.create_model_card`'s, in its order, then the card's fields by keyword
        (`cards.write_trainer_model_card`)."""
        if not self.is_world_process_zero():
            return
        from ..hub.cards import write_trainer_model_card

        stock = {"language": language, "license": license, "tags": tags, "model_name": model_name,
                 "finetuned_from": finetuned_from, "tasks": tasks, "dataset_tags": dataset_tags, "dataset": dataset,
                 "dataset_args": dataset_args}
        write_trainer_model_card(self, **{name: value for name, value in stock.items() if value is not None},
                                 **card_fields)


def _checked_model_init(model_init: Callable, check: Callable) -> Callable:
    """`model_init` whose models pass `check`, taking the same arguments (the Trainer counts them)."""
    if number_of_arguments(model_init) == 0:
        return lambda: check(model_init())
    return lambda trial: check(model_init(trial))
