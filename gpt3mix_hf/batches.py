"""The rows of a `Dataset.map` batch: reading the mapped real rows in, writing the synthetic rows out.

`read_batch` turns a batch's columns into `Row`s (label ids in the pool's order, checked by name); `features` is
the synthetic rows' schema and `to_columns` lays the finished rows out in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from datasets import ClassLabel, Features, Sequence, Value
from transformers.utils import logging

from .data import batch_label_names
from .selection import content_key
from .validation import has_visible_text

logger = logging.get_logger(__name__)

# An optional input column: how many earlier rows have the same (text, label). `augment()` adds it so that
# duplicated real rows get distinct synthetic rows; see `augment_run.number_duplicates`.
OCCURRENCE_COLUMN = "gpt3mix_occurrence"


@dataclass(frozen=True)
class Row:
    """One mapped real row, as read from the batch: its text, label id, occurrence number and content key."""

    text: str
    label: int
    occurrence: int
    key: int


def features(label_names: list[str], label_mode: str, keep_prompt: bool) -> Features:
    """The synthetic rows' features (pass them to `Dataset.map(features=...)` to keep `label` a `ClassLabel`)."""
    features = {
        "text": Value("string"),
        "label": ClassLabel(names=label_names),
        "soft_labels": Sequence(Value("float32")),
        "uncalibrated_soft_labels": Sequence(Value("float32")),
        "label_prior": Sequence(Value("float32")),
        "written_label": ClassLabel(names=label_names),
        "source_ids": Sequence(Value("int64")),
        "generation": Value("string"),
        "failed_attempts": [{"generation": Value("string"), "error": Value("string")}],
        "generated_tokens": Value("int32"),
        "label_mass": Value("float32"),
    }
    if label_mode == "debiased":
        features["order_averaged_soft_labels"] = Sequence(Value("float32"))
        features["debias_prior"] = Sequence(Value("float32"))
    if keep_prompt:
        features["prompt"] = Value("string")
    return Features(features)


def read_batch(batch: Mapping[str, list], text_column: str, label_column: str, label_names: list[str]) -> list[Row]:
    """The rows of a mapped batch, label ids in the pool's order `label_names` (checked by name where the batch
    has names), each keyed by its content (`selection.content_key`)."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            f"GPT3MixAugmenter is called with a batch (a dict of columns), got {type(batch).__name__}."
        )
    for argument, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in batch:
            raise ValueError(
                f"The batch has no column {column!r} (it has {sorted(batch)}): build the augmenter with "
                f"{argument}=<the column's name>, or rename the column of the mapped dataset."
            )
    texts, labels = batch[text_column], batch[label_column]
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise ValueError(
            "GPT3MixAugmenter makes several rows per real row, so it works on batches: call "
            "dataset.map(augmenter, batched=True, remove_columns=dataset.column_names, "
            "features=augmenter.features)."
        )
    occurrences = batch.get(OCCURRENCE_COLUMN)
    if occurrences is None:  # not `or`: a numpy-formatted column has no truth value
        occurrences = [0] * len(texts)
    names = batch_label_names(batch, label_column)
    if names is None and any(isinstance(label, int | np.integer) for label in labels):
        # A stream's batches (IterableDataset.map) carry no features: its ids cannot be checked by name here.
        logger.warning_once(
            f"The mapped batch carries label ids without label names (a streaming dataset): they are read as "
            f"ids of the pool's labels {label_names}. If the stream's ClassLabel lists them in another "
            "order, re-encode it by name first, or give the label column as names."
        )
    remap = remap_by_name(names, label_names)
    rows = []
    for text, label, occurrence in zip(texts, labels, occurrences, strict=True):
        if remap is not None and isinstance(label, int | np.integer) and 0 <= label < len(remap):
            label = remap[label]
        label_id = label_id_of(label, label_names)
        if not has_visible_text(text):
            raise ValueError(
                f"A mapped row has an empty text ({text!r}): the LM cannot learn from it. Drop such rows first: "
                f"from gpt3mix_hf.data import has_visible_text; "
                f"dataset.filter(lambda row: has_visible_text(row[{text_column!r}]))."
            )
        rows.append(Row(text, label_id, int(occurrence), content_key(text, label_names[label_id])))
    return rows

def remap_by_name(names: list[str] | None, label_names: list[str]) -> list[int] | None:
    """For a batch whose `ClassLabel` lists the pool's label names in another order, the pool's id of each of
    its ids (label ids are compared by name, never by position); None when the orders agree or are unknown."""
    if names is None or names == label_names:
        return None
    if sorted(names) != sorted(label_names):
        raise ValueError(
            f"The mapped dataset's labels are {names}, the pool's {label_names}: they are not the same "
            "classes, so no prompt could show them right. Map a dataset of the pool's task, or build the "
            "augmenter with a pool of this one."
        )
    return [label_names.index(name) for name in names]

def label_id_of(label, label_names: list[str]) -> int:
    if isinstance(label, str) and label in label_names:
        return label_names.index(label)
    if isinstance(label, int | np.integer) and not isinstance(label, bool) and 0 <= label < len(label_names):
        return int(label)
    raise ValueError(
        f"A mapped row has the label {label!r}, which is neither a label id in [0, {len(label_names)}) "
        f"nor one of the pool's label names {label_names}: drop unlabelled rows, and give the mapped "
        "dataset the pool's ClassLabel (dataset.cast_column(label_column, pool.features[label_column]))."
    )

# -- generation --------------------------------------------------------------------------------------


def warn_on_uncarried_columns(batch: Mapping[str, list], text_column: str, label_column: str, rows: int,
                              made: int) -> None:
    """Before any generation: say which argument a `map` call needs when the batch has columns the augmenter
    does not read and it makes another number of rows than it was given. `datasets` keeps such columns unless
    they are in `remove_columns`, and then fails with a pyarrow length error after the batch was generated.
    The batch cannot tell whether `remove_columns` was passed, so this is a warning, once per process."""
    extra = [column for column in batch if column not in (text_column, label_column, OCCURRENCE_COLUMN)]
    if extra and made != rows:
        logger.warning_once(
            f"The mapped dataset has the columns {extra}, which GPT3MixAugmenter does not carry: it makes {made} "
            f"rows from {rows}. Unless the map call removes them, datasets fails with a column length error: "
            "pass remove_columns=dataset.column_names (and features=augmenter.features), or call "
            "augmenter.augment(dataset)."
        )

def to_columns(results: list[dict], features: Features) -> dict[str, list]:
    """The finished rows (`results`, one dict per (row, copy)) as the columns of `features`; a row that
    failed every attempt gets its empty values."""
    columns = {name: [] for name in features}
    for result in results:
        done = "text" in result
        columns["text"].append(result["text"] if done else "")
        columns["label"].append(result["label"] if done else -1)
        columns["soft_labels"].append(result["soft_labels"] if done else [])
        columns["uncalibrated_soft_labels"].append(result["uncalibrated_soft_labels"] if done else [])
        columns["label_prior"].append(result["label_prior"] if done else [])
        columns["written_label"].append(result["written_label"] if done else -1)
        columns["source_ids"].append(result["source_ids"])
        columns["generation"].append(result["generation"] if done else "")
        columns["failed_attempts"].append(result["failed_attempts"])
        columns["generated_tokens"].append(result["generated_tokens"])
        columns["label_mass"].append(result["label_mass"] if done else 0.0)
        if "debias_prior" in features:
            columns["order_averaged_soft_labels"].append(result["order_averaged_soft_labels"] if done else [])
            columns["debias_prior"].append(result["debias_prior"] if done else [])
        if "prompt" in features:
            columns["prompt"].append(result["prompt"])
    return columns
