"""The labelled rows `GPT3MixTrainer` trains on: the checks of their label and soft-label columns, made before
training starts, and the collator that gives every batch `labels`, `soft_labels` and `is_synthetic`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import torch
from transformers import PretrainedConfig

LABEL_KEYS = ("labels", "label", "label_ids")
# datasets' ClassLabel marks a row without a label with -1.
MISSING_LABEL = -1


def check_label_columns(config: PretrainedConfig, train_dataset, eval_sets: dict, tolerance: float) -> None:
    """Refuse, before training, label columns that would fail later or silently train the wrong thing: labels
    outside `[0, config.num_labels)` or not class ids, soft labels that are not distributions (`tolerance`), class
    names in another order than the model's `id2label` or than `train_dataset`'s, synthetic rows or no labels in an
    evaluation set (`eval_sets`: name -> dataset).

    Example:

    >>> check_label_columns(model.config, train, {"eval_dataset": validation}, tolerance=1e-3)
    """
    train_names = _class_names(train_dataset)
    model_names = [str(name) for _, name in sorted((getattr(config, "id2label", None) or {}).items())]
    if train_names is not None and model_names != train_names and sorted(model_names) == sorted(train_names):
        raise ValueError(
            f"The model's id2label lists {model_names}, train_dataset's labels are {train_names}: the same "
            "classes in another order, so its outputs would be read as the wrong class. Re-encode the data by "
            "name (from gpt3mix_hf.data import align_label_names; align_label_names(dataset, 'label', "
            f"{model_names})), or load the model with id2label in the data's order."
        )
    for name, dataset in {"train_dataset": train_dataset, **eval_sets}.items():
        _check_dataset(dataset, config.num_labels, tolerance, name)
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
        _check_real_rows(dataset, name)
        _check_eval_columns(dataset, name)


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

def _check_real_rows(dataset, name: str) -> None:
    if not isinstance(dataset, datasets.Dataset) or "is_synthetic" not in dataset.column_names:
        return
    synthetic = int(np.sum([bool(flag) for flag in dataset["is_synthetic"]]))
    if synthetic:
        raise ValueError(
            f"{name} holds {synthetic} synthetic rows (is_synthetic=True): the metrics would score the model "
            f"against the LM's labels. Evaluate on real rows: {name}.filter(lambda row: not row['is_synthetic'])."
        )


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
