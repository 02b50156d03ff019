"""The data layer: the one check of text and label columns, the features of training rows, real + synthetic
rows put together, the paper's benchmarks (from the Hub or a local data directory) and class-balanced
sub-samples."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    load_dataset,
)
from transformers.utils import logging

from .labels import one_hot
from .validation import has_visible_text

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
        _check_rows(dataset, text_column, label_column, feature, name)
    return feature


def _check_rows(dataset: Dataset, text_column: str | None, label_column: str, feature: ClassLabel, name: str) -> None:
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
    if len(present) == 1 and len(feature.names) > 1:
        logger.warning(
            f"Every row of {name} has the label {feature.names[present[0]]!r}: prompts show one class only and a "
            "classifier trained on these rows has nothing to tell apart."
        )


def _sentence(name: str) -> str:
    return name[:1].upper() + name[1:]


def _validate_dataset(dataset, text_column: str, label_column: str) -> tuple[list[str], list[int], ClassLabel]:
    """The texts, labels and label feature of a real-row pool, after `check_columns` (rows included)."""
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


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark lives on the Hub, and its label names in the order used everywhere here."""

    labels: tuple[str, ...]
    hub_path: str
    hub_name: str | None = None
    text_column: str = "text"
    label_column: str = "label_text"
    # Hub split -> our split (CoLA's test labels are hidden: its validation split is the test set).
    hub_splits: tuple[tuple[str, str], ...] = (("train", "train"), ("validation", "validation"), ("test", "test"))


# A local data directory holds `<name>/<split>.jsonl` files of {"text", "label"} rows with label names; the
# label order is the one below. The Hub ids are the usual homes of the paper's versions of each dataset.
BENCHMARKS: dict[str, Benchmark] = {
    "sst2": Benchmark(("negative", "positive"), "SetFit/sst2"),
    "cr": Benchmark(("negative", "positive"), "SetFit/SentEval-CR"),
    "subj": Benchmark(("subjective", "objective"), "SetFit/subj"),
    "trec6": Benchmark(
        ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"), "CogComp/trec", text_column="text", label_column="coarse_label"
    ),
    "cola": Benchmark(
        ("acceptable", "unacceptable"),
        "nyu-mll/glue",
        "cola",
        text_column="sentence",
        label_column="label",
        hub_splits=(("train", "train"), ("validation", "test")),
    ),
}


def load_benchmark(name: str, split: str = "train", data_dir: str | Path | None = None) -> Dataset:
    """A benchmark split with columns `text` and `label` (a `ClassLabel` in the order of `BENCHMARKS`).

    Args:
        name (`str`): `sst2`, `cr`, `subj`, `trec6` or `cola`.
        split (`str`): `train`, `test` (and `validation` for SST-2).
        data_dir (`str`, *optional*): a folder with `<name>/<split>.jsonl` files of `{"text", "label"}` rows
            (label names). Without it, the dataset is loaded from the Hub.

    Example:

    >>> train = load_benchmark("sst2", "train", data_dir="data")
    >>> train.features["label"].names
    ['negative', 'positive']
    """
    key = name.lower().replace("-", "")
    if key not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}.")
    benchmark = BENCHMARKS[key]
    class_label = ClassLabel(names=list(benchmark.labels))
    if data_dir is not None:
        path = Path(data_dir) / key / f"{split}.jsonl"
        if not path.exists():
            found = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.exists() else []
            raise FileNotFoundError(f"No {path}. Splits found for {key!r} in {data_dir}: {found or 'none'}.")
        dataset = load_data_file(path)
        missing = [column for column in ("text", "label") if column not in dataset.column_names]
        if missing:
            raise ValueError(f"{path} has no {missing} field(s) (it has {dataset.column_names}): each line needs "
                             '{"text": ..., "label": <label name>}.')
        return _encode_labels(dataset.select_columns(["text", "label"]), class_label, str(path))
    hub_split = {ours: theirs for theirs, ours in benchmark.hub_splits}.get(split)
    if hub_split is None:
        raise ValueError(f"{key} has no {split!r} split; it has {[ours for _, ours in benchmark.hub_splits]}.")
    dataset = load_dataset(benchmark.hub_path, benchmark.hub_name, split=hub_split)
    label_feature = dataset.features[benchmark.label_column]
    if isinstance(label_feature, ClassLabel):
        dataset = dataset.map(
            lambda row: {"label_name": label_feature.int2str(row[benchmark.label_column])},
            desc="Label ids to names",
        )
        label_column = "label_name"
    else:
        label_column = benchmark.label_column
    dataset = dataset.select_columns([benchmark.text_column, label_column])
    dataset = dataset.rename_columns({benchmark.text_column: "text", label_column: "label"})
    return _encode_labels(dataset, class_label, f"{benchmark.hub_path} ({hub_split})")


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
        raise ValueError(f"Cannot align the labels {feature.names} with {names}: they are not the same classes.")
    if list(feature.names) == list(names):
        return dataset
    ids = [names.index(name) for name in feature.names]

    def realign(batch):
        # -1 (datasets' "no label") and None stay as they are.
        return {label_column: [label if label is None or label < 0 else ids[label] for label in batch[label_column]]}

    dataset = dataset.map(realign, batched=True, desc="Aligning label ids by name")
    return dataset.cast_column(label_column, ClassLabel(names=list(names)))


def load_data_file(path: str | Path) -> Dataset:
    """The rows of one `.jsonl`/`.json`/`.csv` file, or a `ValueError` that names the file and what to do when it is
    missing, empty, blank, not UTF-8 or not readable as rows."""
    path = Path(path)
    kind = "CSV" if path.suffix == ".csv" else "JSON Lines"
    if not path.is_file():
        raise FileNotFoundError(f"No file {path}" + (" (it is a folder)" if path.exists() else "") + ".")
    fix = "one labelled row per line (JSON Lines), or a header line and rows (CSV)"
    has_content = False
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path} is not UTF-8 text (line {number}): save it as UTF-8, then retry.") from None
            has_content = has_content or bool(line.strip())
    if not has_content:
        raise ValueError(f"{path} is empty or holds only blank lines: it needs {fix}.")
    try:
        dataset = load_dataset("csv" if path.suffix == ".csv" else "json", data_files=str(path), split="train")
    except Exception as error:  # noqa: BLE001 - datasets' parse errors have many types; all mean "not readable"
        reason = " ".join(str(error).split())[:200]
        raise ValueError(f"{path} could not be read as {kind} ({type(error).__name__}: {reason}): it needs {fix}.") \
            from None
    if len(dataset) == 0:
        raise ValueError(f"{path} holds no rows: it needs {fix}.")
    return dataset


def check_label_values(values: list, column: str, origin: str) -> None:
    """Refuse a label column whose values are neither all label names (strings) nor all integer ids, with how to
    write or encode them."""
    kinds = {type(value).__name__ for value in values if value is not None}
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


def _encode_labels(dataset: Dataset, class_label: ClassLabel, origin: str) -> Dataset:
    check_label_values(list(dataset["label"]), "label", origin)
    unknown = set(dataset.unique("label")) - set(class_label.names)
    if unknown:
        raise ValueError(f"{origin} has labels {sorted(unknown)} outside the expected {class_label.names}.")
    dataset = dataset.map(
        lambda row: {"label": class_label.str2int(row["label"])}, desc="Encoding label names"
    )
    return dataset.cast_column("label", class_label)


def class_balanced_sample(
    dataset: Dataset, *, fraction: float | None = None, per_class: int | None = None, seed: int = 0,
    label_column: str = "label", exclude: list[int] | None = None,
) -> Dataset:
    """A seeded sample with the same number of rows from every class.

    Give either `fraction` (of the whole dataset: `round(fraction * len(dataset) / num_classes)` rows per
    class, at least one, as the paper's 0.1 % sub-samples need) or `per_class`. Rows listed in `exclude`
    are never drawn (to carve a validation set from what a training sample left).
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("Give exactly one of fraction= or per_class=.")
    names = check_columns(dataset, None, label_column, rows=False).names
    if fraction is not None:
        # `not 0 < x <= 1` also refuses NaN, for which every comparison is false.
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}.")
        per_class = per_class_for(fraction, len(dataset), len(names))
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}.")
    excluded = set(exclude or [])
    labels = np.asarray(dataset[label_column])
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label, name in enumerate(names):
        rows = [i for i in np.flatnonzero(labels == label).tolist() if i not in excluded]
        if len(rows) < per_class:
            raise ValueError(
                f"Class {name!r} has {len(rows)} rows available, fewer than the {per_class} per class asked for: "
                "lower the fraction or per_class."
            )
        chosen.extend(rng.choice(rows, size=per_class, replace=False).tolist())
    return dataset.select(sorted(chosen))



def per_class_for(fraction: float, num_rows: int, num_classes: int) -> int:
    """The rows per class that `class_balanced_sample(fraction=...)` takes: at least one."""
    return max(1, round(fraction * num_rows / num_classes))
