"""Choose the classifier's learning rate once, on NoAug validation accuracy, for every method of the harness.

Runs `gpt3mix experiment` (NoAug only) for each learning rate on each task, through the public API, and picks the
rate with the best mean validation accuracy (the held-out validation set that early stopping uses), averaged over
the tasks; test accuracy is never looked at. Resumable: finished runs are read back, so cells can run in separate
processes (`--datasets trec6 --learning_rates 3e-5 --only_run`, ...) and a last call with all of them prints the
table and writes `<output_dir>/lr_sweep.json`, with the machine it ran on.

    OMP_NUM_THREADS=1 python scripts/choose_learning_rate.py --datasets sst2 trec6 --levels 0.01 \
        --learning_rates 3e-5 1e-4 3e-4 --data_seeds 1 --output_dir results/lr-sweep
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from transformers import HfArgumentParser

from gpt3mix_hf.backends.local.machine import machine_kind, resolve_device
from gpt3mix_hf.experiment import ExperimentArguments, run_experiment
from gpt3mix_hf.state import write_json


@dataclass
class SweepArguments:
    datasets: list[str] = field(default_factory=lambda: ["sst2", "trec6"], metadata={"help": "Benchmarks."})
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder of <benchmark>/<split>.jsonl."})
    levels: list[float] = field(default_factory=lambda: [0.01], metadata={"help": "Sub-sample levels."})
    learning_rates: list[float] = field(default_factory=lambda: [3e-5, 1e-4, 3e-4], metadata={"help": "Rates."})
    data_seeds: int = field(default=1, metadata={"help": "Sub-samples per level."})
    repeats: int = field(default=1, metadata={"help": "Classifier seeds per sub-sample."})
    max_test_rows: int = field(default=500, metadata={"help": "As the harness (test is scored, never used here)."})
    output_dir: str = field(default="results/lr-sweep", metadata={"help": "Runs go to <output_dir>/<task>/lr=<lr>/."})
    only_run: bool = field(default=False, metadata={"help": "Run the grid without writing the summary JSON."})


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "machine_kind": machine_kind(resolve_device()),
    }


def main() -> int:
    (args,) = HfArgumentParser(SweepArguments).parse_args_into_dataclasses()
    cells = []
    for dataset in args.datasets:
        for rate in args.learning_rates:
            experiment = ExperimentArguments(
                dataset=dataset, data_dir=args.data_dir, output_dir=f"{args.output_dir}/{dataset}/lr={rate:g}",
                levels=args.levels, methods=["noaug"], data_seeds=args.data_seeds, repeats=args.repeats,
                max_test_rows=args.max_test_rows, learning_rate=rate, disable_tqdm=True,
            )
            for record in run_experiment(experiment):
                cells.append({
                    "dataset": dataset, "learning_rate": rate, "level": record["level"],
                    "data_index": record["data_index"], "repeat": record["repeat"],
                    "best_validation_accuracy": record["best_validation_accuracy"],
                    "best_epoch": record["best_epoch"], "epochs": record["epochs"],
                    "num_validation": record["num_validation"], "train_seconds": record["timings"]["train_seconds"],
                })
    if args.only_run:
        return 0
    expected = args.data_seeds * args.repeats
    for dataset in args.datasets:
        for level in args.levels:
            for rate in args.learning_rates:
                found = sum((c["dataset"], c["level"], c["learning_rate"]) == (dataset, level, rate) for c in cells)
                if found != expected:
                    # Runs another process holds are left out of run_experiment's records: never average fewer.
                    sys.stderr.write(f"{dataset} at level {level:g}, lr {rate:g}: {found} of {expected} runs are "
                                     "finished (others are running elsewhere or failed): run this again once all "
                                     "are done.\n")
                    return 1
    sys.stdout.write(f"{'task':8} {'level':>6} {'lr':>8} {'val acc mean':>12} {'runs':>5} {'best epochs':>16}\n")
    table = {}
    for dataset in args.datasets:
        for level in args.levels:
            for rate in args.learning_rates:
                runs = [c for c in cells if (c["dataset"], c["level"], c["learning_rate"]) == (dataset, level, rate)]
                mean = statistics.mean(c["best_validation_accuracy"] for c in runs)
                table.setdefault(rate, []).append(mean)
                epochs = ",".join(f"{c['best_epoch']:g}/{c['epochs']:g}" for c in runs)
                sys.stdout.write(f"{dataset:8} {level:>6g} {rate:>8g} {mean:>12.4f} {len(runs):>5} {epochs:>16}\n")
    scores = {rate: statistics.mean(means) for rate, means in table.items()}
    chosen = max(scores, key=scores.get)
    for rate, score in scores.items():
        sys.stdout.write(f"lr {rate:g}: mean validation accuracy over tasks and levels {score:.4f}\n")
    sys.stdout.write(f"chosen learning rate: {chosen:g}\n")
    summary = {
        "command": " ".join(["python", *sys.argv]),
        "criterion": "mean over tasks and levels of the mean best-epoch NoAug validation accuracy",
        "arguments": vars(args),
        "scores": {f"{rate:g}": score for rate, score in scores.items()},
        "chosen_learning_rate": chosen,
        "runs": cells,
        "environment": machine(),
    }
    path = write_json(Path(args.output_dir) / "lr_sweep.json", summary)
    sys.stdout.write(f"written: {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
