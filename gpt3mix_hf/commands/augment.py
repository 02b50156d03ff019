"""`gpt3mix augment`: augment a labelled dataset with GPT3Mix and save it with its provenance."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Dataset, load_dataset
from datasets.utils.logging import disable_progress_bar

from ..augmenter import GPT3MixAugmenter
from ..backends.base import SamplingConfig
from ..backends.transformers import TransformersBackend
from ..data import BENCHMARKS, class_balanced_sample, load_benchmark
from ..models import DEFAULT_LM
from ..spec import PRESETS, TaskSpec


@dataclass
class DataArguments:
    dataset: str = field(
        default="sst2",
        metadata={"help": f"A benchmark ({', '.join(BENCHMARKS)}), a Hub dataset id, or a .jsonl/.csv file."},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with <benchmark>/<split>.jsonl (e.g. ../shared/data); default: Hub."}
    )
    split: str = field(default="train", metadata={"help": "The split to augment."})
    text_column: str = field(default="text", metadata={"help": "Column holding the text."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label."})
    sample_fraction: float | None = field(
        default=None, metadata={"help": "Augment a class-balanced sub-sample of this fraction of the split."}
    )
    sample_per_class: int | None = field(
        default=None, metadata={"help": "Augment a class-balanced sub-sample of this many rows per class."}
    )
    sample_seed: int = field(default=0, metadata={"help": "Seed of the sub-sample."})


@dataclass
class AugmentArguments:
    output_dir: str = field(metadata={"help": "Where the augmented dataset, its config and failures are saved."})
    model: str = field(default=DEFAULT_LM, metadata={"help": "Causal LM: Hub id, local folder, or 'smollm2'."})
    preset: str | None = field(
        default=None, metadata={"help": f"Task spec preset ({', '.join(PRESETS)}); default: the dataset's name."}
    )
    k: int = field(default=2, metadata={"help": "Real examples per prompt."})
    ratio: float = field(default=1.0, metadata={"help": "Synthetic rows per real row."})
    selection: str = field(default="uniform", metadata={"help": "Example selection: uniform or class_balanced."})
    label_mode: str = field(default="soft", metadata={"help": "soft (LM label distribution) or hard (LM's label)."})
    seed: int = field(default=0, metadata={"help": "Master seed of the augmentation."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    max_new_tokens: int = field(default=64, metadata={"help": "Most tokens per generation."})
    max_attempts: int = field(default=4, metadata={"help": "Generations tried per synthetic row."})
    generation_batch_size: int = field(default=8, metadata={"help": "Prompts decoded together."})
    map_batch_size: int = field(default=16, metadata={"help": "Real rows per Dataset.map batch."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for Dataset.map."})
    keep_prompt: bool = field(default=False, metadata={"help": "Store each row's full prompt."})
    no_progress: bool = field(default=False, metadata={"help": "Switch progress bars off."})


def arguments(name: str) -> tuple[type, ...]:
    return DataArguments, AugmentArguments


def load_data(args: DataArguments) -> Dataset:
    """The split to augment, sub-sampled when asked, with a `ClassLabel` label column."""
    if args.dataset in BENCHMARKS:
        dataset = load_benchmark(args.dataset, args.split, data_dir=args.data_dir)
    elif Path(args.dataset).suffix in (".jsonl", ".json", ".csv"):
        builder = "csv" if args.dataset.endswith(".csv") else "json"
        dataset = load_dataset(builder, data_files=args.dataset, split="train")
    else:
        dataset = load_dataset(args.dataset, split=args.split)
    if args.label_column in dataset.column_names and not isinstance(dataset.features[args.label_column], ClassLabel):
        # Label names sorted: a stable order, the same in every run.
        dataset = dataset.class_encode_column(args.label_column)
    if args.sample_fraction is not None or args.sample_per_class is not None:
        dataset = class_balanced_sample(
            dataset,
            fraction=args.sample_fraction,
            per_class=args.sample_per_class,
            seed=args.sample_seed,
            label_column=args.label_column,
        )
    return dataset


def run(name: str, data_args: DataArguments, args: AugmentArguments) -> int:
    if args.no_progress:
        disable_progress_bar()
    dataset = load_data(data_args)
    preset = args.preset or (data_args.dataset if data_args.dataset in PRESETS else None)
    if preset is not None:
        spec = TaskSpec.from_preset(preset)
    else:
        spec = TaskSpec.from_class_label(dataset.features[data_args.label_column])
    backend = TransformersBackend.from_pretrained(args.model, batch_size=args.generation_batch_size)
    augmenter = GPT3MixAugmenter(
        backend,
        dataset,
        spec,
        k=args.k,
        ratio=args.ratio,
        selection=args.selection,
        label_mode=args.label_mode,
        seed=args.seed,
        sampling=SamplingConfig(args.temperature, args.top_p, args.max_new_tokens),
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        max_attempts=args.max_attempts,
        keep_prompt=args.keep_prompt,
    )
    output_dir = Path(args.output_dir)
    synthetic = augmenter.augment(
        batch_size=args.map_batch_size, num_proc=args.num_proc, checkpoint_dir=output_dir / "checkpoints"
    )
    synthetic.save_to_disk(output_dir / "synthetic")
    dataset.save_to_disk(output_dir / "real")
    report = augmenter.report
    (output_dir / "failures.jsonl").write_text("".join(json.dumps(row) + "\n" for row in report.failures))
    config = {"data": vars(data_args), "augmenter": augmenter.config(), "report": report.to_dict()}
    (output_dir / "gpt3mix_config.json").write_text(json.dumps(config, indent=2))
    sys.stdout.write(
        f"rows written: {report.rows_written} of {report.rows_requested} "
        f"({report.failed_rows} rows failed every attempt)\n"
        f"parse failures: {report.parse_failures} ({report.parse_failure_rate:.1%} of generations)\n"
        f"tokens generated: {report.generated_tokens}\n"
        f"seconds: {report.seconds:.1f}\n"
        f"samples per second: {report.samples_per_second:.2f}\n"
        f"saved to: {output_dir}\n"
    )
    return 0
