"""How the GPT3Mix LM labelled a sweep's synthetic rows: the share of each label as the argmax of the raw and of
the calibrated (or, for a sweep with gpt3mix-debiased, the debiased) distribution, as written by the LM, the mean
top probability, and how often the written label and the calibrated or debiased argmax are the raw argmax. Reads
`<output_dir>/synthetic/gpt3mix_*.jsonl` (written by `gpt3mix experiment`'s summary).

    python scripts/label_stats.py results/sst2-v2 results/subj-v2 results/trec6-v2 results/sst2-lm-gemma3
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np


def label_stats(folder: Path) -> str:
    rows = [json.loads(line) for path in sorted(folder.glob("synthetic/gpt3mix_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]
    if not rows:
        raise FileNotFoundError(f"No synthetic/gpt3mix_*.jsonl under {folder}: summarise the sweep first.")
    meta = json.loads(next(folder.glob("synthetic/gpt3mix_*.meta.json")).read_text(encoding="utf-8"))
    names = meta["augmenter"]["label_names"]
    raw = np.array([row["uncalibrated_soft_labels"] for row in rows])
    # `soft_labels` of a generation made for the calibrated methods is calibrated; of one made for
    # gpt3mix-debiased, debiased (the rows then also have `order_averaged_soft_labels`).
    mode = "debiased" if "order_averaged_soft_labels" in rows[0] else "calibrated"
    derived = np.array([row["soft_labels"] for row in rows])
    written = Counter(row["written_label"] for row in rows)

    def shares(argmax) -> str:
        return ", ".join(f"{name} {np.mean(argmax == i):.0%}" for i, name in enumerate(names))

    agree = np.mean([names.index(row["written_label"]) == a for row, a in zip(rows, raw.argmax(1), strict=True)])
    return "\n".join([
        f"{folder}: {len(rows)} rows",
        f"  argmax, raw:        {shares(raw.argmax(1))}",
        f"  argmax, {mode + ':':<11} {shares(derived.argmax(1))}",
        "  written:            " + ", ".join(f"{name} {written[name] / len(rows):.0%}" for name in names),
        f"  mean top probability raw {raw.max(1).mean():.2f}, {mode} {derived.max(1).mean():.2f}; "
        f"written label = raw argmax on {agree:.0%}; {mode} argmax = raw argmax on "
        f"{np.mean(derived.argmax(1) == raw.argmax(1)):.0%}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="+", type=Path, help="Output folders of `gpt3mix experiment` runs.")
    for folder in parser.parse_args().sweeps:
        try:
            print(label_stats(folder))
        except FileNotFoundError as error:
            raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
