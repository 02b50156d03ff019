"""The paper's benchmarks, from the Hub or a local data directory, and class-balanced sub-samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, load_dataset
from transformers.utils import logging

logger = logging.get_logger(__name__)


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


# The local copies in ../shared/data are {"text", "label"} JSONL with label names; their label order is
# the one below. The Hub ids are the usual homes of the paper's versions of each dataset.
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
        data_dir (`str`, *optional*): a folder with `<name>/<split>.jsonl` (as in ../shared/data). Without
            it, the dataset is loaded from the Hub.

    Example:

    >>> train = load_benchmark("sst2", "train", data_dir="../shared/data")
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
        dataset = load_dataset("json", data_files=str(path), split="train")
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


def _encode_labels(dataset: Dataset, class_label: ClassLabel, origin: str) -> Dataset:
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
    names = dataset.features[label_column].names
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
        per_class = per_class_for(fraction, len(dataset), len(names))
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}.")
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
