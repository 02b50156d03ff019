"""Build the Table-1-style markdown table and the plot from the run JSONs of one or more sweeps.

    python scripts/summarize_experiments.py results/sst2 [--metric macro_f1]

Writes <dir>/<dataset>_table.md and <dir>/<dataset>_plot.png and prints the table.
"""

from __future__ import annotations

import argparse
import sys

from gpt3mix_hf.experiment import write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dirs", nargs="+", help="Sweep output folders (each with a runs/ folder).")
    parser.add_argument("--metric", default="accuracy", choices=["accuracy", "macro_f1"], help="Metric of the plot.")
    args = parser.parse_args(argv)
    for output_dir in args.output_dirs:
        table, plot_path = write_summary(output_dir, args.metric)
        print(f"## {output_dir}\n\n{table}\nplot: {plot_path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
