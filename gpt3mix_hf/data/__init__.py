"""The data layer, the one place that knows column names:

- `loading`: the paper's benchmarks, JSONL/CSV files, folders of split files and Hub datasets, read with the label
  column a `ClassLabel` (`DataSourceArguments`, `load_split`);
- `columns`: the one check of text and label columns, the features of training rows, label names aligned by name,
  the renaming of the text and label columns, and real + synthetic rows put together;
- `sampling`: class-balanced, seeded sub-samples.
"""

from ..validation import has_visible_text
from .columns import (
    align_label_names,
    batch_label_names,
    check_columns,
    check_label_values,
    concatenate_with_real,
    read_labelled_rows,
    rename_columns_to,
    training_features,
)
from .loading import (
    BENCHMARKS,
    SPLIT_SUFFIXES,
    Benchmark,
    DataArguments,
    DataSourceArguments,
    encode_labels,
    load_benchmark,
    load_data_file,
    load_split,
    split_files,
)
from .sampling import class_balanced_sample, per_class_for

__all__ = [
    "BENCHMARKS",
    "SPLIT_SUFFIXES",
    "Benchmark",
    "DataArguments",
    "DataSourceArguments",
    "align_label_names",
    "batch_label_names",
    "check_columns",
    "check_label_values",
    "class_balanced_sample",
    "concatenate_with_real",
    "encode_labels",
    "has_visible_text",
    "load_benchmark",
    "load_data_file",
    "load_split",
    "per_class_for",
    "read_labelled_rows",
    "rename_columns_to",
    "split_files",
    "training_features",
]
