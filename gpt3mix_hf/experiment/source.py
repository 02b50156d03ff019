"""Where a task's labelled rows come from: one of the paper's benchmarks, a folder of JSONL/CSV split files, or
a Hub dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Dataset, load_dataset

from ..data import BENCHMARKS, align_label_names, check_label_values, load_benchmark, load_data_file
from ..validation import check_fields, has_visible_text

SPLIT_SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass
class DataSourceArguments:
    """A labelled dataset: a benchmark short name, a folder of `<split>.jsonl`/`.csv` files, a single file, or a
    Hub id, and the columns holding its text and label.

    Example:

    >>> source = DataSourceArguments(dataset="data/reviews", text_column="review", label_column="stars")
    >>> train = load_split(source, "train")
    """

    # No default: a command that silently read SST-2 when the flag was forgotten would report on the wrong data.
    dataset: str | None = field(
        default=None,
        metadata={
            "help": f"Required: a benchmark ({', '.join(BENCHMARKS)}), a folder of <split>.jsonl/.json/.csv files, "
            "one such file, or a Hub dataset id."
        },
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "The Hub dataset's configuration name (e.g. 'cola' of nyu-mll/glue)."}
    )
    revision: str | None = field(default=None, metadata={"help": "The Hub dataset's revision (branch, tag, commit)."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "For a benchmark name: a folder holding <benchmark>/<split>.jsonl; default: the Hub."},
    )
    text_column: str = field(default="text", metadata={"help": "The column holding the text."})
    label_column: str = field(default="label", metadata={"help": "The column holding the label."})

    def __post_init__(self):
        check_fields(self)

    @property
    def is_benchmark(self) -> bool:
        if self.dataset is None:
            return False
        return self.dataset.lower().replace("-", "") in BENCHMARKS and not Path(self.dataset).exists()


def split_files(folder: Path) -> dict[str, Path]:
    """`{split: file}` for the `<split>.jsonl` / `.json` / `.csv` files of `folder`."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in SPLIT_SUFFIXES and path.is_file():
            if path.stem in files:
                raise ValueError(f"{folder} has two files for the split {path.stem!r}: keep one of {files[path.stem]}"
                                 f" and {path}.")
            files[path.stem] = path
    return files


def _load_file(path: Path) -> Dataset:
    return load_data_file(path)


def load_split(source: DataSourceArguments, split: str, names: list[str] | None = None) -> Dataset:
    """The split `split` of `source`, with its own column names, the label column a `ClassLabel`.

    Benchmarks keep the label order of `gpt3mix_hf.data.BENCHMARKS`; other label columns that hold names (or
    numbers) are encoded in sorted order, or with `names` (train's label names, for an evaluation split: a label
    train does not have is an error). Raises a `ValueError` naming the fix when the split, a column or the
    rows are missing.
    """
    if source.dataset is None:
        raise ValueError(
            f"No dataset given: pass --dataset (dataset= in Python): a benchmark ({', '.join(BENCHMARKS)}, e.g. "
            "--dataset sst2 with --data_dir), a folder of <split>.jsonl files, one such file, or a Hub dataset id."
        )
    if source.is_benchmark:
        dataset = load_benchmark(source.dataset, split, source.data_dir)
        columns = {"text": source.text_column, "label": source.label_column}
        renames = {ours: theirs for ours, theirs in columns.items() if ours != theirs}
        dataset = dataset.rename_columns(renames) if renames else dataset
        return encode_labels(dataset, source.text_column, source.label_column, origin=f"{source.dataset} ({split})",
                             names=names)
    path = Path(source.dataset)
    if path.is_dir():
        files = split_files(path)
        if split not in files:
            raise ValueError(
                f"{path} has no {split!r} split: it needs a file {split}.jsonl (or .json / .csv); found "
                f"{sorted(files) or 'no split files'}."
            )
        dataset = _load_file(files[split])
    elif path.is_file():
        if path.suffix not in SPLIT_SUFFIXES:
            raise ValueError(f"{path} is not a .jsonl, .json or .csv file.")
        if split != "train":
            raise ValueError(
                f"{path} is a single file, so it has no {split!r} split: pass a folder holding {split}.jsonl beside "
                "train.jsonl."
            )
        dataset = _load_file(path)
    elif path.suffix in SPLIT_SUFFIXES or source.dataset.startswith((".", "/", "~")):
        raise FileNotFoundError(f"No file or folder {path}: check the path given as --dataset.")
    else:
        dataset = load_dataset(source.dataset, source.dataset_config, revision=source.revision, split=split)
    return encode_labels(dataset, source.text_column, source.label_column, origin=f"{source.dataset} ({split})",
                         names=names)


def encode_labels(dataset: Dataset, text_column: str, label_column: str, *, origin: str,
                  names: list[str] | None = None) -> Dataset:
    """`dataset` with both columns checked and the label column a `ClassLabel` (with `names`, when given)."""
    for flag, column in (("--text_column", text_column), ("--label_column", label_column)):
        if column not in dataset.column_names:
            raise ValueError(f"{origin} has no column {column!r} (it has {dataset.column_names}): pass {flag}.")
    texts = dataset[text_column]
    empty = [index for index, text in enumerate(texts) if not isinstance(text, str) or not has_visible_text(text)]
    if empty:
        # Said in terms of the data, not of Python: this is what `gpt3mix` commands read.
        raise ValueError(
            f"{origin} has {len(empty)} row(s) without a visible text in {text_column!r} (rows {empty[:5]}, counting "
            "from 0): remove those rows from the data or give them a text, then run again."
        )
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        if names is not None and list(feature.names) != list(names) and sorted(feature.names) == sorted(names):
            # The same classes in another order: the ids are remapped by name, never reused.
            return align_label_names(dataset, label_column, list(names))
        if names is not None and list(feature.names) != list(names):
            raise ValueError(
                f"{origin} has the labels {feature.names}, train has {names}: the label ids would not mean the same. "
                "Use an evaluation set with train's labels."
            )
        return dataset
    check_label_values(list(dataset[label_column]), label_column, origin)
    values = dataset.unique(label_column)
    if any(value is None for value in values):
        raise ValueError(f"{origin} has rows without a label in {label_column!r}: drop or label them.")
    # Numbers sort as numbers (2 before 10), so that integer labels keep their ids.
    numeric = all(isinstance(value, int) and not isinstance(value, bool) for value in values)
    found = [str(value) for value in sorted(values)] if numeric else sorted(str(value) for value in values)
    if names is None:
        names = found
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise ValueError(
            f"{origin} has the labels {unknown} that train does not have (train: {names}): the classifier cannot "
            "predict them. Use an evaluation set with train's labels."
        )
    class_label = ClassLabel(names=list(names))
    dataset = dataset.map(
        lambda batch: {label_column: [class_label.str2int(str(v)) for v in batch[label_column]]},
        batched=True, desc="Encoding label names",
    )
    return dataset.cast_column(label_column, class_label)
