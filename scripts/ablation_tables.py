"""One table from several sweeps at one level: the paper's ablations in small (augmentation ratio, LM size).

Each sweep is a `gpt3mix experiment` output folder. Sweeps made with the same master seed share their data seeds
and training seeds, so each row compares its methods with its own NoAug runs on matched (data seed, repeat) pairs
(`gpt3mix_hf.experiment.summarize`), and rows are comparable with each other. Printed, and written to --output.

    python scripts/ablation_tables.py --level 0.003 --output results/sst2_ablation_ratio.md \
        --sweeps "ratio 1=results/sst2-v2" "ratio 5=results/sst2-ratio5" "ratio 10=results/sst2-ratio10"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gpt3mix_hf.experiment import METHOD_NAMES, load_runs, summarize
from gpt3mix_hf.experiment.arguments import BASELINE
from gpt3mix_hf.experiment.summary import METRICS, cell_text, left_out_notes
from gpt3mix_hf.state import write_text


@dataclass
class AblationArguments:
    sweeps: list[str] = field(metadata={"help": "'<row name>=<sweep output_dir>' pairs, one table row each."})
    level: float = field(metadata={"help": "The sub-sample level the rows are compared at, e.g. 0.003."})
    methods: list[str] = field(
        default_factory=lambda: ["gpt3mix-soft", "gpt3mix-calibrated", "gpt3mix-hard"],
        metadata={"help": "Methods compared with NoAug (a row lacking one shows –)."},
    )
    data_indices: list[int] | None = field(
        default=None,
        metadata={"help": "Only these data seeds (e.g. 0 1), to compare rows on the seeds every sweep finished."},
    )
    repeat_indices: list[int] | None = field(
        default=None, metadata={"help": "Only these classifier seeds (repeats), e.g. 0."}
    )
    metric: str = field(default="accuracy", metadata={"help": "accuracy or macro_f1."})
    output: str | None = field(default=None, metadata={"help": "Also write the table to this markdown file."})

    def __post_init__(self):
        if self.metric not in METRICS:
            raise SystemExit(f"--metric must be one of {list(METRICS)}, got {self.metric!r}.")
        unknown = [method for method in self.methods if method not in METHOD_NAMES]
        if unknown:
            raise SystemExit(f"--methods {unknown} are not methods of the harness ({sorted(METHOD_NAMES)}).")


def ablation_table(args: AblationArguments) -> str:
    header = ["setting", f"{METHOD_NAMES[BASELINE]}: mean ± std"]
    for method in args.methods:
        header += [f"{METHOD_NAMES[method]}: mean ± std", "Δ vs NoAug [95 % CI]"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    notes = []
    for item in args.sweeps:
        name, sep, folder = item.partition("=")
        if not sep or not Path(folder, "runs").is_dir():
            raise SystemExit(f"--sweeps item {item!r}: give '<row name>=<folder with runs/>'.")
        runs = load_runs(folder)
        records = [r for r in runs if math.isclose(r["level"], args.level)
                   and (args.data_indices is None or r["data_index"] in args.data_indices)
                   and (args.repeat_indices is None or r["repeat"] in args.repeat_indices)]
        if not records:
            levels = sorted({r["level"] for r in runs})
            raise SystemExit(f"{folder} has no runs at --level {args.level:g} (with the seeds asked for); its levels: "
                             f"{', '.join(f'{level:g}' for level in levels)}.")
        level = summarize(records, args.metric).get(args.level, {"cells": {}, "left_out": {}})
        row = [name, cell_text(level["cells"].get(BASELINE))[0]]
        for method in args.methods:
            row += cell_text(level["cells"].get(method))
        lines.append("| " + " | ".join(row) + " |")
        notes += left_out_notes(level, f"from {name}")
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> None:
    (args,) = HfArgumentParser(AblationArguments).parse_args_into_dataclasses()
    table = ablation_table(args)
    print(table)
    if args.output:
        write_text(args.output, table + "\n")


if __name__ == "__main__":
    main()
