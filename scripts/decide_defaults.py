"""Apply issue 22's rule to the sweeps that decide the defaults, from their run JSONs.

The rule: a GPT3Mix label mode at the sweep's ratio becomes the default if it beats NoAug, the step-matched
control (`noaug-repeated`) and EDA at the same ratio on most tasks. "Beats" is read strictly here: at some
level of the task, the paired 95 % interval over data seeds (t, seeds - 1 degrees of freedom) against each of
the three controls lies above 0. Every interval is printed, with how many were computed (none is corrected
for the others), so a reader can apply a looser or a stricter reading.

    python scripts/decide_defaults.py --sweeps results/sst2-v3 results/trec6-v3 results/subj-v3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from gpt3mix_hf.experiment.arguments import METHOD_NAMES
from gpt3mix_hf.experiment.summary import cell_text, load_runs, summarize

CONTROLS = ("noaug", "noaug-repeated", "eda")
CANDIDATES = ("gpt3mix-soft", "gpt3mix-debiased")


@dataclass
class DecideArguments:
    sweeps: list[str] = field(metadata={"help": "Sweep folders (each with runs/), one task each."})
    metric: str = field(default="accuracy", metadata={"help": "Compare on this.", "choices": ["accuracy", "macro_f1"]})


def main():
    (args,) = HfArgumentParser(DecideArguments).parse_args_into_dataclasses()

    header = " | ".join(f"Δ vs {METHOD_NAMES[control]}" for control in CONTROLS)
    print(f"| task | level | method | seeds | {header} | beats all three |")
    print("|---|---|---|---|" + "---|" * (len(CONTROLS) + 1))
    wins = {candidate: set() for candidate in CANDIDATES}
    tasks, computed = [], 0
    for sweep in args.sweeps:
        records = load_runs(sweep)
        if not records:
            raise SystemExit(f"{sweep} holds no run JSONs under runs/: is it a sweep's --output_dir?")
        task = records[0]["dataset"]
        tasks.append(task)
        against = {control: summarize(records, args.metric, baseline=control) for control in CONTROLS}
        for level in sorted(against["noaug"]):
            for candidate in CANDIDATES:
                cells = [against[control][level]["cells"].get(candidate, {}) for control in CONTROLS]
                deltas = [cell.get("delta") for cell in cells]
                if any(delta is None for delta in deltas):
                    continue  # a method or control missing at this level (or lacking NoAug's seeds)
                computed += len(deltas)
                beats = all(delta["low"] > 0 for delta in deltas)
                if beats:
                    wins[candidate].add(task)
                intervals = " | ".join(cell_text(cell)[1] for cell in cells)
                print(f"| {task} | {100 * level:g} % | {METHOD_NAMES[candidate]} | {deltas[0]['n']} | {intervals} | "
                      f"{'yes' if beats else 'no'} |")
    print(f"\n{computed} paired intervals ({args.metric}, percentage points), none corrected for the others.")
    for candidate in CANDIDATES:
        won = sorted(wins[candidate])
        verdict = "becomes the default" if len(won) > len(tasks) / 2 else "does not"
        print(f"{METHOD_NAMES[candidate]}: beats all three controls on {len(won)} of {len(tasks)} tasks "
              f"({', '.join(won) or 'none'}): {verdict} by this rule.")


if __name__ == "__main__":
    main()
