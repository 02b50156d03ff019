"""The same methods in two sweeps, run for run: e.g. a classifier trained in fp32 against bf16 autocast.

Sweeps made with the same master seed share their data seeds and training seeds, so each (method, level, data
seed, repeat) that both finished is a matched pair: the only difference is what the two sweeps' settings differ in.
Prints each pair (with both runs' stopping epochs and training seconds) and, per method and level, the mean
paired difference (second minus first) with its Student-t interval.

    python scripts/compare_sweeps.py --first results/bf16-check/fp32 --second results/bf16-check/bf16
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from gpt3mix_hf.experiment import load_runs
from gpt3mix_hf.experiment.summary import paired_difference


@dataclass
class CompareArguments:
    first: str = field(metadata={"help": "A sweep's output_dir (the reference)."})
    second: str = field(metadata={"help": "Another sweep's output_dir, made with the same master seed."})
    metric: str = field(default="accuracy", metadata={"help": "accuracy or macro_f1."})


def finished(output_dir: str) -> dict[tuple, dict]:
    return {(r["method"], r["level"], r["data_index"], r["repeat"]): r
            for r in load_runs(output_dir) if r["status"] == "ok"}


def main():
    (args,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses()
    first, second = finished(args.first), finished(args.second)
    pairs = sorted(set(first) & set(second))
    if not pairs:
        raise SystemExit(f"No run finished in both {args.first} and {args.second}: nothing to compare.")
    print(f"{'method':<20}{'level':>8}{'data':>6}{'repeat':>8}{'first':>9}{'second':>9}{'second-first':>14}"
          f"{'epochs':>10}{'train s':>14}")
    for key in pairs:
        method, level, data, repeat = key
        a, b = first[key], second[key]
        print(f"{method:<20}{level:>8g}{data:>6}{repeat:>8}{a[args.metric]:>9.4f}{b[args.metric]:>9.4f}"
              f"{b[args.metric] - a[args.metric]:>+14.4f}{a['epochs']:>5g} /{b['epochs']:>3g}"
              f"{a['timings']['train_seconds']:>7.0f} /{b['timings']['train_seconds']:>5.0f}")
    print()
    for method, level in sorted({(m, lv) for m, lv, _, _ in pairs}):
        keys = [key for key in pairs if key[:2] == (method, level)]
        delta = paired_difference([second[k][args.metric] for k in keys], [first[k][args.metric] for k in keys])
        print(f"{method} at {level:g}: second - first {100 * delta['mean']:+.1f} points, 95 % interval "
              f"[{100 * delta['low']:+.1f}, {100 * delta['high']:+.1f}], n={delta['n']} matched runs")


if __name__ == "__main__":
    main()
