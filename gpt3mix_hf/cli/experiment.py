"""`gpt3mix experiment`: the paper's Table 1 protocol (NoAug vs EDA vs back-translation vs GPT3Mix soft /
calibrated / hard labels on class-balanced sub-samples) on a benchmark, a folder of JSONL/CSV splits or a Hub
dataset; resumable, with a table of paired differences to NoAug and a plot at the end."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..backends.base import SamplingConfig
from ..experiment import ExperimentArguments, ProtocolAugmenterConfig, run_experiment, write_summary
from ..experiment.summary import METRICS
from ..validation import check_fields


@dataclass
class SummaryArguments:
    summarize_only: bool = field(
        default=False, metadata={"help": "Only rebuild the table and plot from the run JSONs in output_dir."}
    )
    metric: str = field(default="accuracy", metadata={"help": "Metric of the plot.", "choices": list(METRICS)})

    def __post_init__(self):
        check_fields(self)


def arguments(name: str) -> tuple[type, ...]:
    return ExperimentArguments, ProtocolAugmenterConfig, SamplingConfig, SummaryArguments


def run(name: str, args: ExperimentArguments, settings: ProtocolAugmenterConfig, sampling: SamplingConfig,
        summary: SummaryArguments) -> int:
    if not summary.summarize_only:
        records = run_experiment(args, settings=settings, sampling=sampling)
        sys.stdout.write(f"{len(records)} runs in {args.output_dir}\n")
        if args.augment_only:
            return 0
    table, plot_path = write_summary(args.output_dir, summary.metric)
    sys.stdout.write(f"{table}\nplot: {plot_path}\n")
    return 0
