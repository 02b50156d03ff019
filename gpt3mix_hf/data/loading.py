"""Loading: where a task's labelled rows come from (one of the paper's benchmarks, a folder of JSONL/CSV split
files, one such file, or a Hub dataset), read with the label column a `ClassLabel`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import ClassLabel, Dataset, load_dataset

from ..validation import check_fields, has_visible_text
from .columns import align_label_names, check_label_values, rename_columns_to
from .sampling import class_balanced_sample


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
        return _encode_benchmark_labels(dataset.select_columns(["text", "label"]), class_label, str(path))
    hub_split = {ours: theirs for theirs, ours in benchmark.hub_splits}.get(split)
    if hub_split is None:
        raise ValueError(f"{key} has no {split!r} split; it has {[ours for _, ours in benchmark.hub_splits]}.")
    try:
        dataset = load_dataset(benchmark.hub_path, benchmark.hub_name, split=hub_split)
    except OSError as error:  # ConnectionError included
        # Offline, datasets names the Hub repository only: the local way in is the data folder.
        raise ConnectionError(f"{str(error).rstrip('.')}: to load {key!r} from local files instead, pass data_dir= "
                              f"(gpt3mix: --data_dir), a folder with {key}/{split}.jsonl.") from error
    label_feature = dataset.features[benchmark.label_column]
    if isinstance(label_feature, ClassLabel):
        dataset = dataset.map(
            lambda row: {"label_name": label_feature.int2str(row[benchmark.label_column])},
            desc="Label ids to names",
        )
        label_column = "label_name"
    else:
        label_column = benchmark.label_column
    dataset = rename_columns_to(dataset, benchmark.text_column, label_column)
    return _encode_benchmark_labels(dataset, class_label, f"{benchmark.hub_path} ({hub_split})")


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


def _encode_benchmark_labels(dataset: Dataset, class_label: ClassLabel, origin: str) -> Dataset:
    check_label_values(list(dataset["label"]), "label", origin)
    unknown = set(dataset.unique("label")) - set(class_label.names)
    if unknown:
        raise ValueError(f"{origin} has labels {sorted(unknown)} outside the expected {class_label.names}.")
    dataset = dataset.map(
        lambda row: {"label": class_label.str2int(row["label"])}, desc="Encoding label names"
    )
    return dataset.cast_column("label", class_label)


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


@dataclass
class DataArguments(DataSourceArguments):
    """The rows to augment: a split of a `DataSourceArguments` source, optionally a class-balanced sub-sample.
    These are the data flags of `gpt3mix augment` and, with the rows' size and hash, the `data` section of
    `gpt3mix_config.json` (`provenance.DataSource`).

    Example:

    >>> rows = DataArguments(dataset="sst2", data_dir="../shared/data", sample_per_class=8).load()
    """

    split: str = field(default="train", metadata={"help": "The split to augment."})
    sample_fraction: float | None = field(
        default=None, metadata={"help": "Augment a class-balanced sub-sample of this fraction of the split."}
    )
    sample_per_class: int | None = field(
        default=None, metadata={"help": "Augment a class-balanced sub-sample of this many rows per class."}
    )
    sample_seed: int = field(default=0, metadata={"help": "Seed of the sub-sample."})

    def __post_init__(self):
        check_fields(self)
        if self.sample_fraction is not None and self.sample_per_class is not None:
            raise ValueError(
                f"sample_fraction={self.sample_fraction} and sample_per_class={self.sample_per_class} both describe "
                "the class-balanced sub-sample: give one of them (--sample_fraction or --sample_per_class) and "
                "remove the other."
            )
        if self.sample_fraction is not None and not 0 < self.sample_fraction <= 1:
            raise ValueError(f"--sample_fraction must be in (0, 1], got {self.sample_fraction}.")
        if self.sample_per_class is not None and self.sample_per_class < 1:
            raise ValueError(f"--sample_per_class must be >= 1, got {self.sample_per_class}.")

    def load(self, data_dir: str | Path | None = None) -> Dataset:
        """The rows: the split, sub-sampled as described. `data_dir` replaces `self.data_dir` (a recorded folder
        is a path on the machine that made the data)."""
        source = self if data_dir is None else replace(self, data_dir=str(data_dir))
        rows = load_split(source, self.split)
        if self.sample_fraction is not None or self.sample_per_class is not None:
            rows = class_balanced_sample(rows, fraction=self.sample_fraction, per_class=self.sample_per_class,
                                         seed=self.sample_seed, label_column=self.label_column)
        return rows


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


def load_split(source: DataSourceArguments, split: str, names: list[str] | None = None) -> Dataset:
    """The split `split` of `source`, with its own column names, the label column a `ClassLabel`.

    Benchmarks keep the label order of `BENCHMARKS`; other label columns that hold names (or
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
        dataset = rename_columns_to(dataset, "text", "label", text=source.text_column, label=source.label_column,
                                    select=False)
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
        dataset = load_data_file(files[split])
    elif path.is_file():
        if path.suffix not in SPLIT_SUFFIXES:
            raise ValueError(f"{path} is not a .jsonl, .json or .csv file.")
        if split != "train":
            raise ValueError(
                f"{path} is a single file, so it has no {split!r} split: pass a folder holding {split}.jsonl beside "
                "train.jsonl."
            )
        dataset = load_data_file(path)
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
    # Numbers sort as numbers (2 before 10), so that integer labels keep their ids; 1.0 is the label 1 (a JSON or
    # CSV reader may give whole numbers as floats; fractions were refused above).
    numeric = all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)

    def name(value) -> str:
        return str(int(value)) if numeric else str(value)

    found = [name(value) for value in sorted(values)] if numeric else sorted(str(value) for value in values)
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
        lambda batch: {label_column: [class_label.str2int(name(v)) for v in batch[label_column]]},
        batched=True, desc="Encoding label names",
    )
    return dataset.cast_column(label_column, class_label)
