"""`make demo`: the whole GPT3Mix job on the embedded default models, on a 2-core CPU in a few minutes.

A class-balanced 0.3 % sub-sample of SST-2 train is augmented with ratio 5 by SmolLM2-135M-Instruct; a few
synthetic rows are printed with their soft labels (like the paper's Table 4) and the dataset is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.data import class_balanced_sample, load_benchmark


@dataclass
class DemoArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    output_dir: str = field(default="outputs/demo", metadata={"help": "Where the datasets are saved."})
    fraction: float = field(default=0.003, metadata={"help": "Class-balanced share of SST-2 train to start from."})
    ratio: float = field(default=5.0, metadata={"help": "Synthetic rows per real row."})
    model: str = field(default="smollm2", metadata={"help": "The causal LM that writes the new rows."})
    seed: int = field(default=42, metadata={"help": "Seed of the sub-sample and the augmentation."})
    show: int = field(default=6, metadata={"help": "Synthetic rows to print."})


def main():
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses()
    output_dir = Path(args.output_dir)
    full_train = load_benchmark("sst2", "train", args.data_dir)
    train = class_balanced_sample(full_train, fraction=args.fraction, seed=args.seed)
    print(f"SST-2: {len(train)} real rows ({args.fraction:.1%} of train, class-balanced); ratio {args.ratio:g}.")

    backend = TransformersBackend.from_pretrained(args.model, batch_size=8)
    augmenter = GPT3MixAugmenter(
        backend, train, TaskSpec.from_preset("sst2"), ratio=args.ratio, seed=args.seed,
        sampling=SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=48),
    )
    synthetic = augmenter.augment(checkpoint_dir=output_dir / "checkpoints")
    report = augmenter.report
    names = synthetic.features["label"].names
    print(f"\nSynthetic rows (soft labels as p({names[0]}) / p({names[1]})):")
    for row in synthetic.select(range(min(args.show, len(synthetic)))):
        soft = " / ".join(f"{p:.2f}" for p in row["soft_labels"])
        print(f"  [{names[row['label']]:>8} {soft}] {row['text']}")
    print(
        f"\n{report.rows_written} rows written of {report.rows_requested}, {report.parse_failures} parse failures "
        f"({report.parse_failure_rate:.0%} of generations), {report.generated_tokens} tokens, "
        f"{report.seconds:.0f} s ({report.samples_per_second:.2f} rows/s)."
    )
    train.save_to_disk(output_dir / "real")
    synthetic.save_to_disk(output_dir / "synthetic")
    config = {"augmenter": augmenter.config(), "report": report.to_dict()}
    (output_dir / "gpt3mix_config.json").write_text(json.dumps(config, indent=2))
    print(f"Saved to {output_dir}/ (real, synthetic, gpt3mix_config.json).")


if __name__ == "__main__":
    main()
