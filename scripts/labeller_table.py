"""The labeller study's table (README, "Debiased labels") from results/labeller/<task>.json.

    python scripts/labeller_table.py results/labeller
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MODES = ("soft", "calibrated", "averaged", "soft-batch", "debiased", "debiased-batch", "debiased-cf")


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "results/labeller")
    results = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    if not results:
        raise SystemExit(f"No <task>.json in {folder}: run scripts/labeller_check.py first.")
    header = "| task (rows, mixed-label prompts) | " + " | ".join(MODES) + " |"
    print("Accuracy / recency rate (true rate of the last example's label on mixed-label prompts in brackets)\n")
    print(header)
    print("|" + "---|" * (len(MODES) + 1))
    for result in results:
        modes = result["modes"]
        true_rate = modes["soft"]["true_recency_rate"]
        cells = [f"{modes[m]['accuracy']:.3f} / {modes[m]['recency_rate']:.2f}" if m in modes else "-" for m in MODES]
        print(f"| {result['task']} ({result['rows']}, {result['mixed_label_prompts']}; true {true_rate:.2f}) | "
              + " | ".join(cells) + " |")
    print("\nMacro-F1 and mean log p(true label)\n")
    print(header)
    print("|" + "---|" * (len(MODES) + 1))
    for result in results:
        modes = result["modes"]
        cells = [f"{modes[m]['macro_f1']:.3f} / {modes[m]['true_label_log_likelihood']:.2f}" if m in modes else "-"
                 for m in MODES]
        print(f"| {result['task']} | " + " | ".join(cells) + " |")
    print("\nThe debiased label's extra cost (prefill only)\n")
    print("| task | extra prefill tokens / own prompt's | other orders s / row | task prior s |")
    print("|---|---|---|---|")
    for result in results:
        cost = result["cost"]
        print(f"| {result['task']} | {cost['extra_prefill_per_row']:.2f}x | "
              f"{cost['seconds']['other_orders'] / result['rows']:.2f} | {cost['task_prior_seconds']:.0f} |")
    machines = {(r["machine"]["cpu"], r["machine"]["dtype"], r["machine"]["torch_threads"]) for r in results}
    print(f"\nMachine(s): {sorted(machines)}")
    for result in results:
        print(f"{result['task']}: {result['command']}")


if __name__ == "__main__":
    main()
