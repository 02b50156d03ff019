"""`GPT3MixTrainer`: a `transformers.Trainer` for sequence classifiers that learns from GPT3Mix's soft labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from transformers import EarlyStoppingCallback, PreTrainedModel, Trainer, TrainingArguments
from transformers.utils import logging

from .losses import kl_divergence, soft_cross_entropy
from .metrics import compute_metrics as default_compute_metrics
from .training_args import GPT3MixTrainingArguments

logger = logging.get_logger(__name__)

LABEL_KEYS = ("labels", "label", "label_ids")


def validate_soft_labels(soft_labels: Any, num_labels: int, tolerance: float, where: str = "") -> np.ndarray:
    """Check a table of soft labels (one row per example) and return it as a float32 array.

    Raises a `ValueError` that names the first bad row when a row has the wrong width, NaN or infinite values,
    negative values, or does not sum to 1 within `tolerance`.
    """
    where = f" in {where}" if where else ""
    rows = list(soft_labels)
    for index, row in enumerate(rows):
        if row is None or len(row) != num_labels:
            width = None if row is None else len(row)
            raise ValueError(
                f"soft_labels{where}: row {index} has {width} values but the model has {num_labels} labels "
                f"(config.num_labels). Give every row one probability per label, or load the model with "
                f"num_labels={width}."
            )
    array = np.asarray(rows, dtype=np.float32).reshape(len(rows), num_labels)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"soft_labels{where}: row {index} holds NaN or infinite values {array[index].tolist()}.")
    bad = (array < 0).any(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"soft_labels{where}: row {index} has negative values {array[index].tolist()}: soft labels are "
            "probabilities."
        )
    sums = array.sum(axis=1)
    bad = np.abs(sums - 1.0) > tolerance
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"soft_labels{where}: row {index} sums to {sums[index]:.6g}, not 1 (tolerance {tolerance}): "
            f"{array[index].tolist()}. Normalise the rows (e.g. gpt3mix_hf.soft_labels.normalize_logprobs on "
            "log-probabilities) or raise soft_label_tolerance."
        )
    return array


class SoftLabelCollator:
    """Wraps a data collator so that every labelled batch carries `labels`, `soft_labels` and `is_synthetic`.

    `soft_labels` and `is_synthetic` are taken out of the rows before the wrapped collator runs (tokenizer padding
    has no business with them). A row without soft labels gets the one-hot of its label, a row without a label the
    arg-max of its soft labels, a row without `is_synthetic` counts as real.
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
        has_labels = any(label is not None for label in label_rows) or any(soft is not None for soft in soft_rows)
        if has_labels:
            for row, feature in enumerate(features):
                if soft_rows[row] is None:
                    if label_rows[row] is None:
                        raise ValueError(
                            "A row of the batch has neither a label nor soft_labels; label every row (a 'label' "
                            "column, 'soft_labels', or both)."
                        )
                    soft_rows[row] = np.eye(self.num_labels, dtype=np.float32)[int(label_rows[row])]
                if label_rows[row] is None:
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


class GPT3MixTrainer(Trainer):
    """A [`~transformers.Trainer`] for any `AutoModelForSequenceClassification` that trains on soft labels.

    Rows may carry `soft_labels` (one probability per label, as made by [`GPT3MixAugmenter`]) and `is_synthetic`;
    rows without soft labels use the one-hot of `label`, so real data needs no extra column. The loss is
    [`soft_cross_entropy`] (the paper) or [`kl_divergence`] at a temperature, per `args.loss_type`, with synthetic
    rows weighted by `args.synthetic_weight`; it is summed over rows and divided by the number of rows of the whole
    accumulated batch, so gradient accumulation gives the same loss as one large batch. Evaluation reports accuracy
    and macro-F1 on real rows, and training stops early after `args.early_stopping_patience` evaluations without
    improvement.

    The model's `problem_type` is pinned to `"single_label_classification"`, so the saved model predicts with a
    softmax (float targets would otherwise make transformers treat it as multi-label).

    Args:
        model (`PreTrainedModel`): a sequence classifier with `config.num_labels` equal to the dataset's labels.
        args (`GPT3MixTrainingArguments`, *optional*): defaults to `GPT3MixTrainingArguments("<model>-gpt3mix")`.
        compute_metrics (`Callable`, *optional*): defaults to [`gpt3mix_hf.metrics.compute_metrics`].
        Other arguments are those of [`~transformers.Trainer`].

    Example:

    >>> from transformers import AutoModelForSequenceClassification, AutoTokenizer
    >>> model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    >>> trainer = GPT3MixTrainer(model, GPT3MixTrainingArguments("out"), train_dataset=train, eval_dataset=val,
    ...                          processing_class=AutoTokenizer.from_pretrained(path))
    >>> trainer.train()
    """

    # compute_loss divides by the row count of the whole accumulated batch itself.
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model: PreTrainedModel | None = None,
        args: GPT3MixTrainingArguments | None = None,
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
            kind = type(args).__name__ if isinstance(args, TrainingArguments) else repr(type(args))
            raise TypeError(
                f"args is a {kind}; GPT3MixTrainer needs GPT3MixTrainingArguments (the loss options and the "
                "label_names that keep soft_labels through column pruning). Build it with the same keyword arguments."
            )
        self._check_model(model)
        eval_sets = eval_dataset if isinstance(eval_dataset, dict) else {"eval_dataset": eval_dataset}
        for name, dataset in {"train_dataset": train_dataset, **eval_sets}.items():
            self._check_dataset(dataset, model.config.num_labels, args.soft_label_tolerance, name)

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
            names = getattr(dataset.features.get("label"), "names", None)
            raise ValueError(
                f"{name} has {dataset_labels} labels{f' {names}' if names else ''} but the model has num_labels="
                f"{num_labels}. Load the model with AutoModelForSequenceClassification.from_pretrained(..., "
                f"num_labels={dataset_labels}), or use a dataset with {num_labels} labels."
            )
        if isinstance(dataset, datasets.Dataset) and "soft_labels" in dataset.column_names:
            validate_soft_labels(dataset["soft_labels"], num_labels, tolerance, name)

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

    def create_model_card(
        self,
        language=None,
        license=None,
        tags=None,
        model_name=None,
        finetuned_from=None,
        tasks=None,
        dataset_tags=None,
        dataset=None,
        dataset_args=None,
        **card_kwargs,
    ) -> None:
        """The GPT3Mix model card (the one `push_classifier` publishes) in `args.output_dir/README.md`, with the
        provenance beside it: `trainer.push_to_hub(provenance=..., dataset_tags="me/sst2-gpt3mix")`."""
        if not self.is_world_process_zero():
            return
        from .cards import save_trainer_model_card

        save_trainer_model_card(
            self,
            language=language,
            license=license,
            tags=tags,
            model_name=model_name,
            finetuned_from=finetuned_from,
            tasks=tasks,
            dataset_tags=dataset_tags,
            dataset=dataset,
            dataset_args=dataset_args,
            **card_kwargs,
        )
