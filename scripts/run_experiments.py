"""Run (or resume) the paper's Table 1 protocol and write the summary table and plot.

    python scripts/run_experiments.py --dataset sst2 --data_dir ../shared/data --output_dir results/sst2 \
        --data_seeds 1 --ratio 2

Every finished run is a JSON under <output_dir>/runs; running the same command again skips those, so a long
sweep resumes after an interruption and a larger --data_seeds only adds runs. Flags: `--help`.
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser

from gpt3mix_hf.experiment import ExperimentArguments, run_experiment, write_summary


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser(ExperimentArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    records = run_experiment(args)
    print(f"{len(records)} runs in {args.output_dir}")
    if not args.augment_only:
        table, _ = write_summary(args.output_dir)
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
