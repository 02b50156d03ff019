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
from gpt3mix_hf.experiment.records import GRID_FIELDS, TASK_FIELDS, sweep_differences
from gpt3mix_hf.experiment.summary import cell_text, left_out_notes, load_runs, summarize

CONTROLS = ("noaug", "noaug-repeated", "eda")
CANDIDATES = ("gpt3mix-soft", "gpt3mix-debiased")


@dataclass
class DecideArguments:
    sweeps: list[str] = field(metadata={"help": "Sweep folders (each with runs/), one task each."})
    metric: str = field(default="accuracy", metadata={"help": "Compare on this.", "choices": ["accuracy", "macro_f1"]})


def check_one_protocol(sweeps: list[str]) -> None:
    """Refuse sweeps that are not one task each, or whose protocols differ (the ratio, the classifier, ...): the
    rule counts tasks, each at the same settings."""
    for sweep in sweeps[1:]:
        differ = sweep_differences(sweeps[0], sweep, ignore=GRID_FIELDS + TASK_FIELDS)
        if differ:
            raise SystemExit(f"{sweeps[0]} and {sweep} were run with other settings ({'; '.join(differ)}): the "
                             "rule compares tasks at one protocol.")


def main():
    (args,) = HfArgumentParser(DecideArguments).parse_args_into_dataclasses()
    check_one_protocol(args.sweeps)

    header = " | ".join(f"Δ vs {METHOD_NAMES[control]}" for control in CONTROLS)
    print(f"| task | level | method | seeds | {header} | beats all three |")
    print("|---|---|---|---|" + "---|" * (len(CONTROLS) + 1))
    wins = {candidate: set() for candidate in CANDIDATES}
    tasks, judged, computed, between, notes = [], set(), 0, 0, []
    for sweep in args.sweeps:
        records = load_runs(sweep)
        if not records:
            raise SystemExit(f"{sweep} holds no run JSONs under runs/: is it a sweep's --output_dir?")
        task = records[0]["dataset"]
        if task in tasks:
            raise SystemExit(f"Two of the sweeps are of {task}: the rule counts tasks, so give one sweep per task.")
        tasks.append(task)
        against = {control: summarize(records, args.metric, baseline=control) for control in CONTROLS}
        modes = summarize(records, args.metric, baseline=CANDIDATES[0])
        for level in sorted(against["noaug"]):
            # Every cell of a level is on the pairs all its methods finished (`summarize`); say what was left out.
            notes += left_out_notes(against["noaug"][level], f"from {task} at {100 * level:g} %")
            present = against["noaug"][level]["cells"]
            missing = [METHOD_NAMES[m] for m in (*CONTROLS, *CANDIDATES) if "mean" not in present.get(m, {})]
            if missing:
                notes.append(f"- {task} at {100 * level:g} % not judged: no finished runs of {', '.join(missing)}.")
                continue
            seeds = present[CANDIDATES[0]]["delta"]["n"]
            if seeds < 2:
                notes.append(f"- {task} at {100 * level:g} % not judged: {seeds} data seed, no interval yet.")
                continue
            judged.add(task)
            # Not part of the rule: the two label modes against each other, on the same generated texts.
            between += 1
            notes.append(f"- {task} at {100 * level:g} %: {METHOD_NAMES[CANDIDATES[1]]} against "
                         f"{METHOD_NAMES[CANDIDATES[0]]} (the same texts, not part of the rule): "
                         f"{cell_text(modes[level]['cells'][CANDIDATES[1]])[1]}")
            for candidate in CANDIDATES:
                cells = [against[control][level]["cells"][candidate] for control in CONTROLS]
                deltas = [cell["delta"] for cell in cells]
                computed += len(deltas)
                beats = all(delta["low"] > 0 for delta in deltas)
                if beats:
                    wins[candidate].add(task)
                intervals = " | ".join(cell_text(cell)[1] for cell in cells)
                print(f"| {task} | {100 * level:g} % | {METHOD_NAMES[candidate]} | {deltas[0]['n']} | {intervals} | "
                      f"{'yes' if beats else 'no'} |")
    print("\n".join(["", *notes, ""]) if notes else "")
    print(f"{computed} paired intervals for the rule and {between} between the modes ({args.metric}, percentage "
          "points), none corrected for the others.")
    for candidate in CANDIDATES:
        won = sorted(wins[candidate])
        verdict = "becomes the default" if len(won) > len(tasks) / 2 else "does not"
        unjudged = [task for task in tasks if task not in judged]
        counted = f"; not judged, so not beaten: {', '.join(unjudged)}" if unjudged else ""
        print(f"{METHOD_NAMES[candidate]}: beats all three controls on {len(won)} of {len(tasks)} tasks "
              f"({', '.join(won) or 'none'}{counted}): {verdict} by this rule.")


if __name__ == "__main__":
    main()
