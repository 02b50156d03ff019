"""`gpt3mix augment`: augment a labelled dataset with GPT3Mix and save it with its provenance."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets.utils.logging import disable_progress_bar

from ..augmenter import GPT3MixAugmenter
from ..backends.base import SamplingConfig
from ..backends.transformers import TransformersBackend
from ..data import BENCHMARKS
from ..models import DEFAULT_LM
from ..provenance import augmenter_from_config, build_config, load_config, load_source_dataset, save_config
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
    config: str | None = field(
        default=None,
        metadata={"help": "Regenerate from a gpt3mix_config.json (its settings replace the flags above)."},
    )


def arguments(name: str) -> tuple[type, ...]:
    return DataArguments, AugmentArguments


def run(name: str, data_args: DataArguments, args: AugmentArguments) -> int:
    if args.no_progress:
        disable_progress_bar()
    if args.config is not None:
        config = load_config(args.config)
        augmenter = augmenter_from_config(config, data_dir=data_args.data_dir)
        dataset = augmenter.pool_dataset()
        data = config.get("data")
        map_batch_size = (config.get("run") or {}).get("map_batch_size", args.map_batch_size)
    else:
        data = vars(data_args)
        dataset = load_source_dataset(data)
        map_batch_size = args.map_batch_size
        augmenter = _augmenter(dataset, data_args, args)
    output_dir = Path(args.output_dir)
    synthetic = augmenter.augment(
        batch_size=map_batch_size, num_proc=args.num_proc, checkpoint_dir=output_dir / "checkpoints"
    )
    synthetic.save_to_disk(output_dir / "synthetic")
    dataset.save_to_disk(output_dir / "real")
    report = augmenter.report
    (output_dir / "failures.jsonl").write_text("".join(json.dumps(row) + "\n" for row in report.failures))
    save_config(build_config(augmenter, dataset, data=data, map_batch_size=map_batch_size), output_dir)
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


def _augmenter(dataset, data_args: DataArguments, args: AugmentArguments) -> GPT3MixAugmenter:
    preset = args.preset or (data_args.dataset if data_args.dataset in PRESETS else None)
    if preset is not None:
        spec = TaskSpec.from_preset(preset)
    else:
        spec = TaskSpec.from_class_label(dataset.features[data_args.label_column])
    return GPT3MixAugmenter(
        TransformersBackend.from_pretrained(args.model, batch_size=args.generation_batch_size),
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
