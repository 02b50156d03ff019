"""`make demo`: the whole GPT3Mix job on the embedded default models, on a 2-core CPU in a few minutes.

A class-balanced 0.3 % sub-sample of SST-2 train is augmented with ratio 5 by SmolLM2-135M-Instruct; a few
synthetic rows are printed with their soft labels (like the paper's Table 4) and the dataset is saved. Then
all-MiniLM-L6-v2 is trained twice, on the real rows alone (NoAug) and on real + synthetic rows with the
soft-label loss (GPT3Mix), early-stopped on a class-balanced validation set carved from the rest of train,
and both are evaluated on SST-2 test. One run each is an illustration, not a result: one seed's difference is
mostly noise at this size, so the demo ends by pointing to the sweep that measures it (10 data seeds, paired
differences with their intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gpt3mix_hf import (
    GPT3MixAugmenter,
    GPT3MixConfig,
    SamplingConfig,
    TaskSpec,
    TransformersBackend,
    concatenate_with_real,
)
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.state import write_text
from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
from gpt3mix_hf.training.classification import evaluate_classifier, train_classifier

# The evidence the demo points to (issue 22's sweep; scripts and commands in the README).
SWEEP_TABLE = "results/sst2-v3/sst2_table.md"


@dataclass
class DemoArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    output_dir: str = field(default="outputs/demo", metadata={"help": "Where the datasets are saved."})
    fraction: float = field(default=0.003, metadata={"help": "Class-balanced share of SST-2 train to start from."})
    ratio: float = field(default=5.0, metadata={"help": "Synthetic rows per real row."})
    model: str = field(default="smollm2", metadata={"help": "The causal LM that writes the new rows."})
    dtype: str = field(default="auto", metadata={"help": "The LM's dtype: auto, float32 or bfloat16."})
    seed: int = field(default=42, metadata={"help": "Seed of the sub-sample and the augmentation."})
    show: int = field(default=6, metadata={"help": "Synthetic rows to print."})
    classifier: str = field(default="minilm", metadata={"help": "The classifier trained on the rows."})
    validation_per_class: int = field(default=50, metadata={"help": "Validation rows per class, from train."})
    epochs: int = field(default=10, metadata={"help": "Most training epochs (early stopping may end sooner)."})
    patience: int = field(default=4, metadata={"help": "Early-stopping patience in epochs (the paper: 20)."})
    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "The classifier's learning rate: the harness's, chosen on NoAug validation accuracy "
                  "(scripts/choose_learning_rate.py, results/lr-sweep)."},
    )


def main():
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses()
    output_dir = Path(args.output_dir)
    full_train = load_benchmark("sst2", "train", args.data_dir)
    sample_rows = class_balanced_sample(
        full_train.add_column("row", list(range(len(full_train)))), fraction=args.fraction, seed=args.seed
    )["row"]
    train = full_train.select(sample_rows)
    # Validation rows come from the rest of train, class-balanced, as in the paper.
    validation = class_balanced_sample(
        full_train, per_class=args.validation_per_class, seed=args.seed, exclude=list(sample_rows)
    )
    test = load_benchmark("sst2", "test", args.data_dir)
    print(f"SST-2: {len(train)} real rows ({args.fraction:.1%} of train, class-balanced); ratio {args.ratio:g}.")

    # dtype "auto": bf16 where the CPU multiplies bf16 natively (AVX512_BF16 / AMX), else fp32; default slots.
    backend = TransformersBackend.from_pretrained(args.model, dtype=args.dtype)
    augmenter = GPT3MixAugmenter(
        backend, train, TaskSpec.from_preset("sst2"), ratio=args.ratio, seed=args.seed,
        sampling=SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=48),
    )
    # Large map batches keep the decoding slots full (a map batch is one continuous-batching run).
    checkpoints = output_dir / "checkpoints"
    resumed = checkpoints.is_dir() and any(checkpoints.iterdir())
    synthetic = augmenter.augment(checkpoint_dir=checkpoints, batch_size=64)
    report = augmenter.report
    names = synthetic.features["label"].names
    print(f"\nSynthetic rows (soft labels as p({names[0]}) / p({names[1]})):")
    for row in synthetic.select(range(min(args.show, len(synthetic)))):
        soft = " / ".join(f"{p:.2f}" for p in row["soft_labels"])
        print(f"  [{names[row['label']]:>8} {soft}] {row['text']}")
    # Rows read back from an earlier run's shards took no time now: no speed to report for them.
    speed = (
        f"read back (at least in part) from {checkpoints}: delete it to time the generation"
        if resumed
        else f"{report.seconds:.0f} s: {report.generated_tokens / report.seconds:.1f} tokens/s, "
        f"{report.samples_per_second:.2f} rows/s ({backend.model.dtype}, {backend.batch_size} slots)"
    )
    print(
        f"\n{report.rows_written} rows written of {report.rows_requested}, {report.parse_failures} parse failures "
        f"({report.parse_failure_rate:.0%} of generations), {report.generated_tokens} tokens, {speed}."
    )
    train.save_to_disk(output_dir / "real")
    synthetic.save_to_disk(output_dir / "synthetic")
    data = {"dataset": "sst2", "data_dir": args.data_dir, "split": "train", "sample_fraction": args.fraction,
            "sample_seed": args.seed}
    GPT3MixConfig.from_augmenter(augmenter, train, data=data).save_pretrained(output_dir)
    print(f"Saved to {output_dir}/ (real, synthetic, gpt3mix_config.json).")

    results = {}
    for method, rows in (("NoAug", train), ("GPT3Mix", concatenate_with_real(train, synthetic))):
        training_args = GPT3MixTrainingArguments(
            output_dir=str(output_dir / f"classifier-{method.lower()}"),
            num_train_epochs=args.epochs,
            early_stopping_patience=args.patience,
            per_device_train_batch_size=16,
            learning_rate=args.learning_rate,
            seed=args.seed,
            report_to="none",
            disable_tqdm=True,
        )
        print(f"\nTraining {args.classifier} on {len(rows)} rows ({method}) ...")
        trainer = train_classifier(rows, validation, args.classifier, training_args, keep_checkpoints=False)
        trainer.save_model()
        results[method] = evaluate_classifier(trainer, test)
        # What the model card reads: test results, hyper-parameters and the training log.
        trainer.save_metrics("test", results[method])
        trainer.save_state()
        write_text(Path(training_args.output_dir, "training_args.json"), training_args.to_json_string())
    print(f"\nSST-2 test ({len(test)} rows), one run each, seed {args.seed}:")
    print(f"{'':<10}{'accuracy':>10}{'macro-F1':>10}")
    for method, metrics in results.items():
        print(f"{method:<10}{metrics['accuracy']:>10.4f}{metrics['macro_f1']:>10.4f}")
    print(
        "\nOne seed each: an illustration, not a result (at this size one seed's difference is mostly noise). The "
        "measured effect, over 10 independent sub-samples with paired 95 % intervals, is the sweep's table: "
        f"{SWEEP_TABLE} (README, 'The sweep that decides the defaults')."
    )


if __name__ == "__main__":
    main()
