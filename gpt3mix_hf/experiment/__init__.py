"""The paper's Table 1 protocol on any labelled dataset: class-balanced sub-samples of train, NoAug vs EDA vs
back-translation vs GPT3Mix (soft, calibrated, hard, written labels), matched seeds across methods, one JSON per
run, then a table with paired differences to NoAug and a plot.

- `arguments`: `ExperimentArguments`, the methods;
- `caches`: the synthetic rows of each method, one GPT3Mix generation per sub-sample;
- `sweep`: the grid of runs, resumable and shareable between processes;
- `summary`: tables, paired differences and plots.
"""

from .arguments import (
    DEFAULT_METHODS,
    GPT3MIX_METHODS,
    METHOD_NAMES,
    METHODS,
    ExperimentArguments,
    ProtocolAugmenterConfig,
)
from .caches import Augmentations, derive_method_rows
from .summary import (
    export_synthetic,
    load_runs,
    markdown_table,
    paired_difference,
    plot,
    summarize,
    write_summary,
)
from .sweep import (
    HeldOut,
    Split,
    data_seed,
    held_out_seed,
    held_out_validation,
    load_task_data,
    make_split,
    run_experiment,
    run_path,
    train_seed,
)

__all__ = [
    "DEFAULT_METHODS",
    "GPT3MIX_METHODS",
    "METHODS",
    "METHOD_NAMES",
    "Augmentations",
    "ExperimentArguments",
    "ProtocolAugmenterConfig",
    "HeldOut",
    "Split",
    "data_seed",
    "derive_method_rows",
    "export_synthetic",
    "held_out_seed",
    "held_out_validation",
    "load_runs",
    "load_task_data",
    "make_split",
    "markdown_table",
    "paired_difference",
    "plot",
    "run_experiment",
    "run_path",
    "summarize",
    "train_seed",
    "write_summary",
]
