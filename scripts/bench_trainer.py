"""Step time of GPT3MixTrainer against the stock transformers Trainer, on the same data and model, and (with
`--variants stock gpt3mix gpt3mix-bf16`) of GPT3MixTrainer in bf16 autocast against fp32.

Every variant starts from the same weights and sees the same batches (same seed). They run in rotation, several
repeats each, so that the load of a shared machine falls on all alike. A step is the time between two
`on_step_end` calls (data loading, forward, backward, optimizer step); the first step of each run is dropped. Wall
and CPU time are both reported: on a busy machine the wall time swings with the other processes' load (and so, less,
does the CPU time, through thread spinning: --threads 1 steadies it). What the trainer adds outside the model
(collator columns, soft loss) is also timed alone, in short calls.

    python scripts/bench_trainer.py --data_dir ../shared/data --steps 10 --repeats 5
    python scripts/bench_trainer.py --data_dir ../shared/data --variants gpt3mix gpt3mix-bf16

bf16 is native on CPUs with AVX512_BF16 or AMX and emulated (far slower) elsewhere: the figures say which CPU made
them. Ratios are to the first variant named.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.utils import logging

from gpt3mix_hf.backends.local.machine import machine_kind
from gpt3mix_hf.data import load_benchmark
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.state import write_json
from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
from gpt3mix_hf.training.label_columns import SoftLabelCollator
from gpt3mix_hf.training.losses import soft_cross_entropy
from gpt3mix_hf.training.trainer import GPT3MixTrainer


class StepTimer(TrainerCallback):
    """Wall time and this process's CPU time (all its threads) between consecutive step ends. On a shared machine
    the wall time also counts the time other processes held the cores; the CPU time mostly does not."""

    def __init__(self):
        self.ends: list[tuple[float, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append((time.perf_counter(), time.process_time()))

    def step_times(self) -> tuple[list[float], list[float]]:
        # The first step (from nothing) is dropped: only the differences of consecutive step ends count.
        pairs = list(zip(self.ends, self.ends[1:], strict=False))
        return [later[0] - earlier[0] for earlier, later in pairs], [later[1] - earlier[1] for earlier, later in pairs]


def common_settings(output_dir: str, options) -> dict:
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": options.batch_size,
        "max_steps": options.steps + 1,
        "learning_rate": 3e-5,
        "warmup_steps": 0,
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


VARIANTS = ("stock", "gpt3mix", "gpt3mix-bf16")


def run_once(kind: str, initial_model, tokenizer, stock_data, soft_data, options) -> tuple[list[float], list[float]]:
    model = copy.deepcopy(initial_model)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        if kind == "stock":
            args = TrainingArguments(**common_settings(output_dir, options))
            trainer = Trainer(model, args, train_dataset=stock_data, processing_class=tokenizer, callbacks=[timer])
        else:
            args = GPT3MixTrainingArguments(
                **common_settings(output_dir, options), early_stopping_patience=None,
                synthetic_weight=options.synthetic_weight, bf16=kind == "gpt3mix-bf16",
            )
            trainer = GPT3MixTrainer(model, args, train_dataset=soft_data, processing_class=tokenizer,
                                     callbacks=[timer])
        trainer.train()
    return timer.step_times()


def time_call(function, repeats: int) -> float:
    """The shortest wall time of `function()` over `repeats` calls, in seconds: for short calls the load of a shared
    machine only ever adds time, so the minimum is the least blurred estimate."""
    function()  # warm-up
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return min(durations)


def component_overheads(tokenizer, stock_data, soft_data, options, repeats: int = 300) -> dict[str, float]:
    """What GPT3MixTrainer adds per step outside the model, timed alone: the collator's soft-label columns and the
    soft loss against torch's cross-entropy (forward and backward on the logits). Short calls timed many times, so a
    busy machine blurs them far less than whole training steps."""
    collator = DataCollatorWithPadding(tokenizer)
    soft_collator = SoftLabelCollator(collator, num_labels=2)
    stock_rows = [stock_data[index] for index in range(options.batch_size)]
    soft_rows = [soft_data[index] for index in range(options.batch_size)]
    logits = torch.randn(options.batch_size, 2, requires_grad=True)
    labels = torch.tensor([row["label"] for row in stock_rows])
    targets = torch.tensor([row["soft_labels"] for row in soft_rows])
    synthetic = torch.tensor([row["is_synthetic"] for row in soft_rows])

    def stock_loss():
        F.cross_entropy(logits, labels).backward()

    def soft_loss():
        weights = torch.where(synthetic, options.synthetic_weight, 1.0)
        (soft_cross_entropy(logits, targets, weights).sum() / len(labels)).backward()

    return {
        "collate_stock_s": time_call(lambda: collator(stock_rows), repeats),
        "collate_gpt3mix_s": time_call(lambda: soft_collator(soft_rows), repeats),
        "loss_stock_s": time_call(stock_loss, repeats),
        "loss_gpt3mix_s": time_call(soft_loss, repeats),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="A classifier: 'minilm' (embedded), a folder or Hub id.")
    parser.add_argument("--data_dir", default="../shared/data", help="The local benchmark data (SST-2 is used).")
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per run (one more is run and dropped).")
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each trainer, in alternation.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=64, help="Every row is padded/truncated to this length.")
    parser.add_argument("--synthetic_weight", type=float, default=0.5, help="So that the weighting path is timed.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["stock", "gpt3mix"],
                        help="What to time, in rotation; ratios are to the first.")
    parser.add_argument("--output", default=None, help="Write the figures as JSON here.")
    options = parser.parse_args()
    if len(set(options.variants)) != len(options.variants) or len(options.variants) < 2:
        parser.error(f"--variants needs at least two different variants of {VARIANTS}, got {options.variants}.")
    for name in ("steps", "repeats", "batch_size", "max_length"):
        if getattr(options, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(options, name)}.")
    if options.threads:
        torch.set_num_threads(options.threads)
    logging.set_verbosity_error()

    path = resolve_classifier(options.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = options.batch_size * (options.steps + 1)
    train = load_benchmark("sst2", "train", data_dir=options.data_dir).shuffle(seed=0).select(range(rows))
    stock_data = train.map(
        lambda batch: tokenizer(batch["text"], truncation=True, padding="max_length", max_length=options.max_length),
        batched=True, remove_columns=["text"], desc="Tokenizing",
    )
    # Half the rows as "synthetic", with soft labels drawn at random: the GPT3Mix trainer's full path.
    rng = np.random.default_rng(0)
    mass = rng.uniform(0.5, 1.0, size=rows)
    soft = [[1.0 - m, m] if label == 1 else [m, 1.0 - m] for m, label in zip(mass, stock_data["label"], strict=True)]
    synthetic = [index % 2 == 1 for index in range(rows)]
    soft_data = stock_data.add_column("soft_labels", soft).add_column("is_synthetic", synthetic)

    torch.manual_seed(0)
    initial_model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    variants = options.variants
    times = {clock: {kind: [] for kind in variants} for clock in ("wall", "cpu")}
    per_repeat = {clock: {kind: [] for kind in variants} for clock in ("wall", "cpu")}
    for repeat in range(options.repeats):
        shift = repeat % len(variants)
        for kind in variants[shift:] + variants[:shift]:
            wall, cpu = run_once(kind, initial_model, tokenizer, stock_data, soft_data, options)
            for clock, values in (("wall", wall), ("cpu", cpu)):
                times[clock][kind].extend(values)
                per_repeat[clock][kind].append(statistics.median(values))
            print(f"repeat {repeat + 1}/{options.repeats} {kind:12s} median step "
                  f"{statistics.median(wall):.4f} s wall, {statistics.median(cpu):.4f} s CPU")

    print()
    print(f"model {options.model}, batch {options.batch_size} x {options.max_length} tokens, "
          f"{options.steps} timed steps x {options.repeats} repeats per variant, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} CPUs ({machine_kind('cpu')}), "
          f"load average {os.getloadavg()[0]:.1f}")
    reference = variants[0]
    print(f"| clock | variant | median step (s) | ratio to {reference} (all steps) | "
          "ratio (median of per-repeat ratios) |")
    print("|---|---|---|---|---|")
    summary = {}
    for clock in ("wall", "cpu"):
        reference_median = statistics.median(times[clock][reference])
        for kind in variants:
            median = statistics.median(times[clock][kind])
            per_repeat_ratio = statistics.median(
                ours / theirs
                for ours, theirs in zip(per_repeat[clock][kind], per_repeat[clock][reference], strict=True)
            )
            summary.setdefault(clock, {})[kind] = {"median_s": median, "ratio": median / reference_median,
                                                   "per_repeat_ratio": per_repeat_ratio}
            print(f"| {clock} | {kind} | {median:.4f} | {median / reference_median:.3f} | {per_repeat_ratio:.3f} |")
    if "stock" not in variants or "gpt3mix" not in variants:
        write_output(options, times, per_repeat, summary, None)
        return
    ratio = summary["cpu"]["gpt3mix"]["median_s"] / summary["cpu"]["stock"]["median_s"]
    print(f"target overhead <= 5 % (CPU time, all steps): {'met' if ratio <= 1.05 else 'NOT met'} "
          f"({(ratio - 1) * 100:+.1f} %)")
    stock_median = summary["wall"]["stock"]["median_s"]

    components = component_overheads(tokenizer, stock_data, soft_data, options)
    added = (components["collate_gpt3mix_s"] - components["collate_stock_s"]
             + components["loss_gpt3mix_s"] - components["loss_stock_s"])
    print()
    print("Outside the model, per step (fastest of 300 calls each):")
    print(f"  collate: stock {components['collate_stock_s'] * 1e6:.0f} us, "
          f"GPT3Mix {components['collate_gpt3mix_s'] * 1e6:.0f} us")
    print(f"  loss fwd+bwd: torch cross-entropy {components['loss_stock_s'] * 1e6:.0f} us, "
          f"soft CE {components['loss_gpt3mix_s'] * 1e6:.0f} us")
    print(f"  added: {added * 1e6:.0f} us per step = {added / stock_median * 100:.3f} % of the stock median step")
    write_output(options, times, per_repeat, summary, components)


def write_output(options, times, per_repeat, summary, components) -> None:
    if options.output:
        write_json(options.output, {"options": vars(options), "step_times": times, "per_repeat_medians": per_repeat,
                                    "summary": summary, "components": components})


if __name__ == "__main__":
    main()
