"""`gpt3mix experiment`: the paper's Table 1 protocol (NoAug vs EDA vs back-translation vs GPT3Mix soft/hard
on class-balanced sub-samples), resumable, with a markdown table and a plot at the end."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..experiment import ExperimentArguments, run_experiment, write_summary


@dataclass
class SummaryArguments:
    summarize_only: bool = field(
        default=False, metadata={"help": "Only rebuild the table and plot from the run JSONs in output_dir."}
    )
    metric: str = field(default="accuracy", metadata={"help": "Metric of the plot: accuracy or macro_f1."})


def arguments(name: str) -> tuple[type, ...]:
    return ExperimentArguments, SummaryArguments


def run(name: str, args: ExperimentArguments, summary: SummaryArguments) -> int:
    if summary.metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"metric must be 'accuracy' or 'macro_f1', got {summary.metric!r}.")
    if not summary.summarize_only:
        records = run_experiment(args)
        sys.stdout.write(f"{len(records)} runs in {args.output_dir}\n")
        if args.augment_only:
            return 0
    table, plot_path = write_summary(args.output_dir, summary.metric)
    sys.stdout.write(f"{table}\nplot: {plot_path}\n")
    return 0
