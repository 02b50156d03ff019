"""The summary of a sweep: per task a table of mean ± std, the paired difference to NoAug with its 95 % interval,
and a plot.

Methods are compared on matched runs only. At each level every cell is computed on the same (data seed, repeat)
pairs: those that every method shown at that level has finished. A pair some method lacks (a seed an interrupted
sweep left half-done, a method run on fewer seeds) is left out of every cell and listed under the table with the
methods that lack it; no cell is ever shown on a different seed set.

The independent unit is the data seed: each has its own sub-sample and its own generation, while the classifier
repeats of one data seed share both. So the paired difference is taken over data seeds, each method's runs of a
seed averaged first: the mean of (method - NoAug) with a Student-t 95 % interval on (data seeds - 1) degrees of
freedom. Every table says how many such comparisons it makes (none is corrected for the others).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from ..state import load_rows, read_json, write_json, write_text
from .arguments import BASELINE, METHOD_NAMES, METHODS
from .records import OK

METRICS = ("accuracy", "macro_f1")


def load_runs(output_dir: str | Path) -> list[dict]:
    """Every run JSON under `<output_dir>/runs`.

    Records written before `record_version` 2 named the label the LM wrote "gpt3mix-hard"; they are read as
    `gpt3mix-written`, which is what they measured (the paper's hard label is the argmax of the distribution).
    """
    records = []
    for path in sorted((Path(output_dir) / "runs").rglob("*.json")):
        record = read_json(path)
        if record.get("record_version", 1) < 2 and record.get("method") == "gpt3mix-hard":
            record["method"] = "gpt3mix-written"
        records.append(record)
    return records


def paired_difference(values: list[float], baseline: list[float], confidence: float = 0.95) -> dict:
    """Mean of `values[i] - baseline[i]` and its Student-t interval (`low`/`high` are NaN with one pair)."""
    differences = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(differences)
    mean = float(differences.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": n}
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * differences.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def summarize(records: list[dict], metric: str = "accuracy", baseline: str = BASELINE) -> dict:
    """`{level: {"reference": [(data_index, repeat)...], "cells": {method: cell}, "left_out": {method: pairs}}}`:
    `reference` are the pairs every method at the level finished, on which every cell is computed; `left_out`
    maps each method that lacks some other method's pairs to those pairs (left out of every cell).

    A cell has `mean`, `std` (ddof=1, NaN with one run), `n`, and for methods other than `baseline` (NoAug by
    default; any method, e.g. `eda`, to compare against it instead) `delta` (see `paired_difference`); a method
    that could not run at all (e.g. no translation model) has `status` with the reason instead.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    if baseline not in METHODS:
        raise ValueError(f"baseline must be one of {METHODS}, got {baseline!r}.")
    runs: dict[float, dict[str, dict[tuple[int, int], float]]] = {}
    unavailable: dict[float, dict[str, str]] = {}
    for record in records:
        level, method = record["level"], record["method"]
        if record["status"] == OK:
            pair = (record["data_index"], record["repeat"])
            runs.setdefault(level, {}).setdefault(method, {})[pair] = 100 * record[metric]
        else:
            unavailable.setdefault(level, {})[method] = record.get("reason", record["status"])
    summary = {}
    for level in sorted(set(runs) | set(unavailable)):
        by_method = runs.get(level, {})
        order = [m for m in METHODS if m in by_method]
        every = set().union(*by_method.values())
        reference = sorted(every.intersection(*by_method.values()))
        lacking = {method: sorted(every - by_method[method].keys()) for method in order}
        left_out = {method: pairs for method, pairs in lacking.items() if pairs}
        cells = {}
        for method in order if reference else []:  # no pair that every method finished: no cell to show
            values = [by_method[method][pair] for pair in reference]
            cell = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                "n": len(values),
            }
            if method != baseline and baseline in by_method:
                cell["delta"] = paired_difference(seed_means(by_method[method], reference),
                                                  seed_means(by_method[baseline], reference))
            cells[method] = cell
        for method, reason in unavailable.get(level, {}).items():
            if method not in by_method:
                cells[method] = {"status": reason}
        summary[level] = {"reference": reference, "cells": cells, "left_out": left_out}
    return summary


def seed_means(runs: dict[tuple[int, int], float], pairs: list[tuple[int, int]]) -> list[float]:
    """The mean over its repeats of each data seed's runs, in data-seed order: one value per independent unit."""
    by_seed: dict[int, list[float]] = {}
    for data_index, repeat in pairs:
        by_seed.setdefault(data_index, []).append(runs[data_index, repeat])
    return [float(np.mean(by_seed[seed])) for seed in sorted(by_seed)]


def comparisons(summary: dict) -> int:
    """How many 95 % intervals (uncorrected) of a paired difference to NoAug a summary shows; a difference on one
    data seed has none."""
    return sum("delta" in cell and not math.isnan(cell["delta"]["low"])
               for level in summary.values() for cell in level["cells"].values())


def _signed(value: float) -> str:
    return f"{value:+.1f}".replace("-", "−")


def cell_text(cell: dict | None) -> list[str]:
    """A `summarize` cell as table text: `mean ± std (n=…)` and the paired Δ to NoAug `[95 % CI]`."""
    if cell is None:
        return ["–", "–"]
    if "status" in cell:
        return ["n/a", "n/a"]
    spread = f" ± {cell['std']:.1f}" if cell["n"] > 1 else ""
    delta = cell.get("delta")
    if delta is None:
        difference = "–"
    elif math.isnan(delta["low"]):
        difference = f"{_signed(delta['mean'])} (1 pair)"
    else:
        difference = f"{_signed(delta['mean'])} [{_signed(delta['low'])}, {_signed(delta['high'])}]"
    seeds = "" if delta is None or delta["n"] == cell["n"] else f", {delta['n']} data seeds"
    return [f"{cell['mean']:.1f}{spread} (n={cell['n']}{seeds})", difference]


def markdown_table(records: list[dict], metric: str = "accuracy") -> str:
    """One row per method, two columns per level: `mean ± std` over the matched runs, and the paired Δ to NoAug
    with its 95 % interval; then the (data seed, repeat) pairs left out because some method lacks them, if any."""
    summary = summarize(records, metric)
    levels = list(summary)
    header = "| method | " + " | ".join(f"{100 * level:g} %: mean ± std | Δ vs NoAug [95 % CI]" for level in levels)
    lines = [header + " |", "|---|" + "---|---|" * len(levels)]
    methods = [m for m in METHODS if any(m in summary[level]["cells"] for level in levels)]
    for method in methods:
        row = []
        for level in levels:
            row += cell_text(summary[level]["cells"].get(method))
        lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(row) + " |")
    count = comparisons(summary)
    notes = [f"- {count} comparisons to NoAug, each a 95 % interval over data seeds (t, seeds − 1 degrees of "
             f"freedom), none corrected for the others: were no method different from NoAug, about "
             f"{count / 20:.1f} would exclude 0 by chance."]
    for level in levels:
        notes += left_out_notes(summary[level], f"at {100 * level:g} %")
        for method, cell in summary[level]["cells"].items():
            if "status" in cell:
                notes.append(f"- n/a: {METHOD_NAMES[method]} at {100 * level:g} % ({cell['status']})")
    return "\n".join(lines + [""] + notes)


def left_out_notes(level_summary: dict, where: str) -> list[str]:
    """One line per method whose missing runs left (data seed, repeat) pairs out of every cell."""
    return [f"- left out {where}: the (data seed, repeat) pairs {[tuple(pair) for pair in pairs]}, which "
            f"{METHOD_NAMES[method]} has not finished" for method, pairs in level_summary["left_out"].items()]


def plot(records: list[dict], path: str | Path, metric: str = "accuracy", title: str | None = None) -> Path:
    """The metric against the sub-sample level, one line per method (matched runs), error bars = std."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("The plot needs matplotlib: pip install 'gpt3mix_hf[plot]'") from error
    summary = summarize(records, metric)
    figure, axes = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        points = [(level, cells["cells"][method]) for level, cells in summary.items()
                  if "mean" in cells["cells"].get(method, {})]
        if not points:
            continue
        x = [100 * level for level, _ in points]
        y = [cell["mean"] for _, cell in points]
        errors = [0 if math.isnan(cell["std"]) else cell["std"] for _, cell in points]
        axes.errorbar(x, y, yerr=errors, marker="o", capsize=3, label=METHOD_NAMES[method])
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    levels = [100 * level for level in summary]
    axes.set_xticks(levels)
    axes.set_xticklabels([f"{level:g} %" for level in levels])
    axes.set_xlabel("training data (share of train, class balanced)")
    axes.set_ylabel(f"test {metric.replace('_', '-')} (%)")
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def export_synthetic(output_dir: str | Path) -> list[Path]:
    """Write each finished augmentation cache (`<output_dir>/augmentations/<family>/level=<l>/data<i>`) as
    `<output_dir>/synthetic/<family>_level=<l>_data<i>.jsonl`, labels by name, with its metadata beside it as
    `.meta.json`: the synthetic rows of a sweep in a form small enough to publish with its run JSONs."""
    output_dir = Path(output_dir)
    written = []
    for meta_path in sorted((output_dir / "augmentations").glob("*/level=*/data*/meta.json")):
        rows, meta = load_rows(meta_path.parent)
        names = rows.features["label"].names
        name = f"{meta_path.parents[2].name}_{meta_path.parents[1].name}_{meta_path.parent.name}"
        target = output_dir / "synthetic" / f"{name}.jsonl"
        lines = []
        for row in rows:
            for column in ("label", "written_label"):
                if column in row:
                    row[column] = names[row[column]] if row[column] >= 0 else None
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        write_text(target, "".join(lines))  # whole or not at all: label_stats.py reads these files
        write_json(target.with_suffix(".meta.json"), meta)
        written.append(target)
    return written


def write_summary(output_dir: str | Path, metric: str = "accuracy", prefix: str | None = None) -> tuple[str, Path]:
    """Write `<prefix>_table.md` (accuracy and macro-F1), `<prefix>_summary.json` and `<prefix>_plot.png` into
    `output_dir`, and the synthetic rows as JSONL (`export_synthetic`); return the table text and the plot's
    path."""
    output_dir = Path(output_dir)
    records = load_runs(output_dir)
    if not records:
        raise FileNotFoundError(f"No run JSONs under {output_dir / 'runs'}: run the experiment first.")
    prefix = prefix or records[0]["dataset"]
    parts = []
    for name, label in (("accuracy", "Test accuracy"), ("macro_f1", "Test macro-F1")):
        parts.append(
            f"{label} (%): mean ± std over matched (data seed, repeat) runs, and the paired difference to NoAug "
            f"with its 95 % t-interval.\n\n{markdown_table(records, name)}\n"
        )
    table = "\n".join(parts)
    write_text(output_dir / f"{prefix}_table.md", table)
    write_json(output_dir / f"{prefix}_summary.json",
               {name: {str(level): cells for level, cells in summarize(records, name).items()} for name in METRICS})
    path = plot(records, output_dir / f"{prefix}_plot.png", metric, title=f"{prefix}: {metric} vs training data")
    export_synthetic(output_dir)
    return table, path
