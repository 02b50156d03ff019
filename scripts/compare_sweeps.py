"""The same methods in two sweeps, run for run: e.g. a classifier trained in fp32 against bf16 autocast.

Sweeps made with the same master seed share their data seeds and training seeds, so each (method, level, data
seed, repeat) that both finished is a matched pair: the only difference is what the two sweeps' settings differ in.
Prints each pair (with both runs' stopping epochs and training seconds) and, per method and level, the mean
paired difference (second minus first) with its Student-t interval over data seeds (the repeats of a data seed
averaged first: they share its sub-sample and generation). Pairs whose data or training seeds differ are refused.

    python scripts/compare_sweeps.py --first results/bf16-check/fp32 --second results/bf16-check/bf16
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from gpt3mix_hf.experiment import load_runs
from gpt3mix_hf.experiment.records import sweep_differences
from gpt3mix_hf.experiment.summary import paired_difference, seed_means


@dataclass
class CompareArguments:
    first: str = field(metadata={"help": "A sweep's output_dir (the reference)."})
    second: str = field(metadata={"help": "Another sweep's output_dir, made with the same master seed."})
    metric: str = field(default="accuracy", metadata={"help": "Compare on this.", "choices": ["accuracy", "macro_f1"]})


def finished(output_dir: str) -> dict[tuple, dict]:
    return {(r["method"], r["level"], r["data_index"], r["repeat"]): r
            for r in load_runs(output_dir) if r["status"] == "ok"}


def per_seed(runs: dict[tuple, dict], keys: list[tuple], metric: str) -> list[float]:
    """The metric of the runs `keys` (method, level, data seed, repeat), averaged over each data seed's repeats."""
    return seed_means({key[2:]: runs[key][metric] for key in keys}, [key[2:] for key in keys])


def main():
    (args,) = HfArgumentParser(CompareArguments).parse_args_into_dataclasses()
    first, second = finished(args.first), finished(args.second)
    pairs = sorted(set(first) & set(second))
    if not pairs:
        raise SystemExit(f"No run finished in both {args.first} and {args.second}: nothing to compare.")
    unmatched = [key for key in pairs if (first[key]["data_seed"], first[key]["train_seed"])
                 != (second[key]["data_seed"], second[key]["train_seed"])]
    if unmatched:
        raise SystemExit(f"The runs {unmatched[:5]} have other data or training seeds in {args.second} than in "
                         f"{args.first}: they are not matched (another --master_seed?), so nothing is compared.")
    # What "second minus first" measures: everything the two sweeps' settings differ in.
    differ = sweep_differences(args.first, args.second)
    print(f"The sweeps differ in (first / second): {'; '.join(differ) or 'nothing but the grid'}.\n")
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
        delta = paired_difference(*(per_seed(runs, keys, args.metric) for runs in (second, first)))
        print(f"{method} at {level:g}: second - first {100 * delta['mean']:+.1f} points, 95 % interval "
              f"[{100 * delta['low']:+.1f}, {100 * delta['high']:+.1f}], {len(keys)} matched runs on "
              f"{delta['n']} data seeds")


if __name__ == "__main__":
    main()
