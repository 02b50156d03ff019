"""`gpt3mix report <augmented_dir>`: the quality report of the synthetic rows in a folder `gpt3mix augment` wrote
(its synthetic/ and real/ folders, gpt3mix_config.json and failures.jsonl), computed from the rows with the
package's `evaluate` measurements, so it works for folders made before the report existed too."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import load_from_disk

from ..provenance import CONFIG_NAME, GPT3MixConfig
from ..quality import format_quality, quality_report

POSITIONAL = "augmented_dir"


@dataclass
class ReportArguments:
    augmented_dir: str = field(
        metadata={"help": "The output_dir of `gpt3mix augment` (also given as the first argument, without a flag)."}
    )
    json: bool = field(default=False, metadata={"help": "Print the report as JSON instead of a table."})


def arguments(name: str) -> tuple[type, ...]:
    return (ReportArguments,)


def folder_quality(folder: str | Path) -> tuple[dict, list[str]]:
    """The quality report of an augmented folder and its label names."""
    folder = Path(folder)
    for part in ("synthetic", "real"):
        if not (folder / part).is_dir():
            raise FileNotFoundError(
                f"{folder} has no {part}/ folder: give the output_dir of `gpt3mix augment` (it holds synthetic/ and "
                "real/)."
            )
    synthetic, real = load_from_disk(str(folder / "synthetic")), load_from_disk(str(folder / "real"))
    config = GPT3MixConfig.from_pretrained(folder / CONFIG_NAME) if (folder / CONFIG_NAME).exists() else None
    text_column = config.data.text_column if config else "text"
    label_column = config.data.label_column if config else "label"
    names = list(real.features[label_column].names)
    dropped = 0
    if (folder / "failures.jsonl").exists():
        for line in (folder / "failures.jsonl").read_text().splitlines():
            if line.strip():
                dropped += len(json.loads(line).get("failed_attempts") or [])
    quality = quality_report(
        synthetic, real[text_column], real[label_column], label_mode=config.augmenter.label_mode if config else None,
        num_labels=len(names), dropped_failures=dropped,
    )
    return quality, names


def run(name: str, args: ReportArguments) -> int:
    quality, names = folder_quality(args.augmented_dir)
    if args.json:
        sys.stdout.write(json.dumps(quality, indent=2) + "\n")
    else:
        sys.stdout.write(f"quality of the synthetic rows in {args.augmented_dir}:\n{format_quality(quality, names)}\n")
    return 0
