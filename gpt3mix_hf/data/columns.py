"""Columns: the one check of text and label columns, the features of training rows, label names aligned by name,
the names of the text and label columns, and real + synthetic rows put together."""

from __future__ import annotations

import math

from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    IterableDataset,
    IterableDatasetDict,
    Sequence,
    Value,
    concatenate_datasets,
)
from transformers.utils import logging

from ..labels import one_hot
from ..validation import has_visible_text

logger = logging.get_logger(__name__)

_STRING_DTYPES = ("string", "large_string")


def training_features(label_names: list[str], *, is_synthetic: bool = False) -> Features:
    """The features of rows a classifier trains on: `text`, `label` (a `ClassLabel` of `label_names`) and
    `soft_labels` (one probability per label), and with `is_synthetic=True` the `is_synthetic` flag.

    Example:

    >>> training_features(["negative", "positive"])["label"].names
    ['negative', 'positive']
    """
    features = {
        "text": Value("string"),
        "label": ClassLabel(names=list(label_names)),
        "soft_labels": Sequence(Value("float32")),
    }
    if is_synthetic:
        features["is_synthetic"] = Value("bool")
    return Features(features)


def check_columns(
    dataset: Dataset | IterableDataset,
    text_column: str | None = "text",
    label_column: str = "label",
    *,
    name: str = "the dataset",
    rows: bool = True,
    one_class_warning: bool = True,
) -> ClassLabel:
    """Check the text and label columns of `dataset` and return its label feature. The one check of the package.

    The dataset must be a `Dataset` (or `IterableDataset`), with a string column `text_column` and a `ClassLabel`
    column `label_column`. With `rows=True` (a `Dataset` only: a stream is not read ahead) every row must also
    have a text with at least one visible character and a label among the `ClassLabel`'s names. A label set of
    one class, or rows of one class only, is allowed with a warning.

    Args:
        dataset (`Dataset` or `IterableDataset`): the rows to check.
        text_column (`str`): where the text is; `None` checks the label column alone.
        label_column (`str`): where the `ClassLabel` label is.
        name (`str`): how messages call the dataset, e.g. `"train_dataset"`.
        rows (`bool`): also check every row (texts and labels), not only the columns.
        one_class_warning (`bool`): warn when every row has one label (off for rows whose prompts show examples of
            another dataset, the augmenter's pool).

    Raises `TypeError` for something that is not a dataset (a `DatasetDict` gets the split to pick) and
    `ValueError` for a missing column, a column of the wrong type, no rows, an empty text or a missing label,
    each naming the fix.

    Example:

    >>> check_columns(train, "text", "label").names
    ['negative', 'positive']
    """
    if isinstance(dataset, DatasetDict | IterableDatasetDict):
        splits = list(dataset)
        first = splits[0] if splits else "train"
        raise TypeError(
            f"{_sentence(name)} is a {type(dataset).__name__} with splits {splits}, not one split: pass one, e.g. "
            f"dataset[{first!r}]."
        )
    if not isinstance(dataset, Dataset | IterableDataset):
        raise TypeError(f"{_sentence(name)} must be a datasets.Dataset, got {type(dataset).__name__}.")
    features = dataset.features
    if features is None:
        raise ValueError(
            f"{_sentence(name)} is a stream whose features are unknown: give them, e.g. "
            f"dataset = dataset.cast(Features({{{text_column!r}: Value('string'), {label_column!r}: "
            "ClassLabel(names=[...])}))."
        )
    for argument, column in (("text_column", text_column), ("label_column", label_column)):
        if column is not None and column not in features:
            raise ValueError(
                f"{_sentence(name)} has no column {column!r} (it has {list(features)}): pass "
                f"{argument}=<the column's name>."
            )
    text_feature = features[text_column] if text_column is not None else Value("string")
    if not (isinstance(text_feature, Value) and text_feature.dtype in _STRING_DTYPES):
        raise ValueError(
            f"Column {text_column!r} of {name} holds {text_feature!r}, not strings: the LM and the tokenizer read "
            f"text. Pass the text column as text_column=, or convert it: "
            f"dataset = dataset.cast_column({text_column!r}, Value('string'))."
        )
    feature = features[label_column]
    if not isinstance(feature, ClassLabel):
        raise ValueError(
            f"Column {label_column!r} of {name} is {feature!r}, not a ClassLabel: the label names are needed. "
            f"Encode it with dataset = dataset.class_encode_column({label_column!r}), or cast it with "
            f"dataset.cast_column({label_column!r}, ClassLabel(names=[...])) to fix the label order."
        )
    if len(feature.names) < 2:
        logger.warning(
            f"The label column {label_column!r} of {name} has {len(feature.names)} class(es) {feature.names}: "
            "there is nothing to tell apart, every soft label is the same and a classifier learns nothing."
        )
    if rows and isinstance(dataset, Dataset):
        _check_rows(dataset, text_column, label_column, feature, name, one_class_warning)
    return feature


def _check_rows(dataset: Dataset, text_column: str | None, label_column: str, feature: ClassLabel, name: str,
                one_class_warning: bool) -> None:
    if len(dataset) == 0:
        raise ValueError(f"{_sentence(name)} has no rows: it needs labelled rows (at least one per class).")
    texts = dataset[text_column] if text_column is not None else []
    empty = [i for i, text in enumerate(texts) if not has_visible_text(text)]
    if empty:
        raise ValueError(
            f"{len(empty)} row(s) of {name} have an empty text (first: {empty[:5]}): {[texts[i] for i in empty[:5]]} "
            "have no visible character, and whitespace or invisible characters alone give the LM and the "
            "classifier nothing. Drop them first: from gpt3mix_hf.data import has_visible_text; dataset = "
            f"dataset.filter(lambda row: has_visible_text(row[{text_column!r}]))."
        )
    labels = dataset[label_column]
    unlabelled = [i for i, label in enumerate(labels) if label is None or not 0 <= label < len(feature.names)]
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} row(s) of {name} have no label among {feature.names} (first rows: {unlabelled[:5]}, "
            f"labels {[labels[i] for i in unlabelled[:5]]}): label them or drop them, e.g. "
            f"dataset.filter(lambda row: row[{label_column!r}] >= 0)."
        )
    present = sorted(set(labels))
    if one_class_warning and len(present) == 1 and len(feature.names) > 1:
        logger.warning(
            f"Every row of {name} has the label {feature.names[present[0]]!r}: prompts show one class only and a "
            "classifier trained on these rows has nothing to tell apart."
        )


def _sentence(name: str) -> str:
    return name[:1].upper() + name[1:]


def read_labelled_rows(dataset: Dataset, text_column: str = "text",
                       label_column: str = "label") -> tuple[list[str], list[int], ClassLabel]:
    """The texts, the label ids and the `ClassLabel` of a pool of real rows, after `check_columns` (every row
    checked). A stream is refused: a pool is read more than once.

    Example:

    >>> texts, labels, feature = read_labelled_rows(train, "text", "label")
    >>> feature.names
    ['negative', 'positive']
    """
    if isinstance(dataset, IterableDataset):
        raise TypeError(
            "The pool of real rows must be a datasets.Dataset (it is read more than once), not a stream: "
            "materialise it, e.g. Dataset.from_list(list(stream.take(n)), features=stream.features)."
        )
    feature = check_columns(dataset, text_column, label_column)
    return list(dataset[text_column]), list(dataset[label_column]), feature


def concatenate_with_real(real: Dataset, synthetic: Dataset, text_column: str = "text",
                          label_column: str = "label") -> Dataset:
    """Real rows (one-hot soft labels) followed by synthetic rows, with an `is_synthetic` column.

    The result has `text`, `label`, `soft_labels` and `is_synthetic` ([`training_features`]): what
    `GPT3MixTrainer` trains on. Synthetic rows that failed (label -1, no visible text or an empty soft label,
    as `dataset.map(augmenter, ...)` keeps them) are dropped, and their count logged.

    Args:
        real (`Dataset`): the real rows, with `text_column` and a `ClassLabel` `label_column`.
        synthetic (`Dataset`): rows with `text`, `label` (the same `ClassLabel`) and `soft_labels`.

    Example:

    >>> mixed = concatenate_with_real(train, train.map(augmenter, batched=True, remove_columns=train.column_names,
    ...                                                features=augmenter.features))
    >>> mixed.column_names
    ['text', 'label', 'soft_labels', 'is_synthetic']
    """
    names = list(check_columns(real, text_column, label_column, name="real").names)
    synthetic_names = check_columns(synthetic, "text", "label", name="synthetic", rows=False).names
    for name, dataset in (("real", real), ("synthetic", synthetic)):
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"{_sentence(name)} is a stream ({type(dataset).__name__}): concatenate_with_real reads whole "
                "datasets. "
                f"Materialise it first, e.g. Dataset.from_list(list({name}), features={name}.features)."
            )
    if isinstance(synthetic, Dataset) and "soft_labels" not in synthetic.column_names:
        raise ValueError(
            f"synthetic needs 'text', 'label' and 'soft_labels' columns; it has {synthetic.column_names}. Pass the "
            "rows an augmenter wrote (GPT3MixAugmenter, EDAAugmenter, BackTranslationAugmenter)."
        )
    if list(synthetic_names) != names and sorted(synthetic_names) == sorted(names):
        synthetic = _align_synthetic(synthetic, names)
    elif list(synthetic_names) != names:
        raise ValueError(
            f"Label names differ: real {names}, synthetic {synthetic_names}: they are not the same classes. Make the "
            "synthetic rows from this real data."
        )
    features = training_features(names, is_synthetic=True)
    real_part = Dataset.from_dict(
        {
            "text": real[text_column],
            "label": real[label_column],
            "soft_labels": [one_hot(label, len(names)) for label in real[label_column]],
            "is_synthetic": [False] * len(real),
        },
        features=features,
    )
    synthetic_part = synthetic.select_columns(["text", "label", "soft_labels"])
    keep = _usable_synthetic_rows(synthetic_part, len(names))
    if len(keep) < len(synthetic_part):
        synthetic_part = synthetic_part.select(keep)
    synthetic_part = synthetic_part.add_column("is_synthetic", [True] * len(synthetic_part)).cast(features)
    return concatenate_datasets([real_part, synthetic_part])


def _align_synthetic(synthetic: Dataset, names: list[str]) -> Dataset:
    """Synthetic rows whose `ClassLabel` lists `names` in another order, re-encoded by name: the label through
    `align_label_names`, and each soft label's values put in the order of `names`."""
    old = list(synthetic.features["label"].names)
    order = [old.index(name) for name in names]

    def reorder(batch):
        return {"soft_labels": [[soft[i] for i in order] if soft and len(soft) == len(order) else soft
                                for soft in batch["soft_labels"]]}

    synthetic = synthetic.select_columns(["text", "label", "soft_labels"])
    synthetic = synthetic.map(reorder, batched=True, desc="Aligning soft labels by name")
    return align_label_names(synthetic, "label", names)


def _usable_synthetic_rows(synthetic: Dataset, num_labels: int) -> list[int]:
    """The synthetic rows that can train; the failed ones (see `concatenate_with_real`) are counted and logged."""
    reasons = {"no label": 0, "no visible text": 0, "an empty soft label": 0}
    keep = []
    columns = zip(synthetic["text"], synthetic["label"], synthetic["soft_labels"], strict=True)
    for index, (text, label, soft) in enumerate(columns):
        if label is None or not 0 <= label < num_labels:
            reasons["no label"] += 1
        elif not has_visible_text(text):
            reasons["no visible text"] += 1
        elif not soft:
            reasons["an empty soft label"] += 1
        else:
            if len(soft) != num_labels:
                raise ValueError(
                    f"Synthetic row {index} has {len(soft)} soft-label values for {num_labels} labels: the synthetic "
                    "rows were made for another label set."
                )
            if not all(isinstance(value, int | float) and math.isfinite(value) for value in soft):
                raise ValueError(f"Synthetic row {index} has a soft label with NaN or infinite values: {soft}.")
            keep.append(index)
    dropped = len(synthetic) - len(keep)
    if dropped:
        detail = ", ".join(f"{count} with {reason}" for reason, count in reasons.items() if count)
        logger.warning(
            f"Dropped {dropped} of {len(synthetic)} synthetic rows that failed ({detail}): they cannot train. "
            "GPT3MixAugmenter.augment() leaves them out and keeps them in augmenter.report.failures."
        )
    return keep


def batch_label_names(batch, label_column: str) -> list[str] | None:
    """The `ClassLabel` names of `label_column` in a batch `Dataset.map` hands its function (the features travel
    in the batch's Arrow schema), or None where the batch does not carry them (a plain dict, a stream)."""
    table = getattr(batch, "pa_table", None)
    if table is None or not table.schema.metadata or b"huggingface" not in table.schema.metadata:
        return None
    try:
        feature = Features.from_arrow_schema(table.schema).get(label_column)
    except Exception:  # noqa: BLE001 - metadata we cannot read tells us nothing
        return None
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def align_label_names(dataset: Dataset, label_column: str, names: list[str]) -> Dataset:
    """`dataset` with its `ClassLabel` column re-encoded to `names` (the same classes in another order), by name:
    a row labelled "positive" stays "positive" whatever id each order gives it."""
    feature = dataset.features[label_column]
    if sorted(feature.names) != sorted(names):
        raise ValueError(f"Cannot align the labels {feature.names} with {names}: they are not the same classes. "
                         "Give both datasets the same label names.")
    if list(feature.names) == list(names):
        return dataset
    ids = [names.index(name) for name in feature.names]

    def realign(batch):
        # -1 (datasets' "no label") and None stay as they are.
        return {label_column: [label if label is None or label < 0 else ids[label] for label in batch[label_column]]}

    dataset = dataset.map(realign, batched=True, desc="Aligning label ids by name")
    return dataset.cast_column(label_column, ClassLabel(names=list(names)))


def check_label_values(values: list, column: str, origin: str) -> None:
    """Refuse a label column whose values are neither all label names (strings) nor all integer ids, with how to
    write or encode them."""
    kinds = {type(value).__name__ for value in values if value is not None}
    if kinds == {"bool"}:
        raise ValueError(
            f"{origin}: the label column {column!r} holds true/false values: write the labels as names (\"yes\", "
            "\"no\") or integer ids (1, 0), then load it again. In Python: dataset.map(lambda row: {"
            f"{column!r}: int(row[{column!r}])}}) then dataset.class_encode_column({column!r})."
        )
    strings = any(isinstance(value, str) for value in values)
    numbers = any(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
    others = kinds - {"str", "int", "float"}
    if (strings and numbers) or others:
        examples = []
        for value in values:
            if value is not None and type(value).__name__ not in {type(e).__name__ for e in examples}:
                examples.append(value)
        raise ValueError(
            f"{origin}: the label column {column!r} mixes kinds of values ({', '.join(sorted(kinds))}; e.g. "
            f"{examples[:4]}): write every label the same way, all as label names (\"positive\") or all as integer "
            "ids (1), then load it again. In Python: dataset.map(lambda row: {"
            f"{column!r}: str(row[{column!r}])}}) then dataset.class_encode_column({column!r})."
        )
    fractions = [value for value in values if isinstance(value, float) and not float(value).is_integer()]
    if fractions:
        raise ValueError(
            f"{origin}: the label column {column!r} holds fractions ({fractions[:3]}): a label is one class. Give "
            "each row its class (an integer id or a name), and probabilities, if any, in a 'soft_labels' column."
        )


def rename_columns_to(dataset: Dataset, text_column: str, label_column: str, *, text: str = "text",
                      label: str = "label", select: bool = True) -> Dataset:
    """`dataset` with its columns `text_column` and `label_column` renamed `text` and `label` (a name that already
    matches is left as it is), and with `select=True` only those two columns kept. The one place columns are
    renamed: to the package's `text`/`label` (the default), or back to a dataset's own names.

    Example:

    >>> rename_columns_to(reviews, "review", "stars").column_names
    ['text', 'label']
    >>> rename_columns_to(train, "text", "label", text="review", label="stars", select=False).column_names
    ['review', 'stars']
    """
    if select:
        dataset = dataset.select_columns([text_column, label_column])
    renames = {old: new for old, new in ((text_column, text), (label_column, label)) if old != new}
    return dataset.rename_columns(renames) if renames else dataset
