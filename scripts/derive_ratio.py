"""A sweep's GPT3Mix rows at a smaller augmentation ratio, taken from a sweep at a larger one, without generating.

Every random choice of a synthetic row is seeded by (seed, the real row's content, copy, attempt) and never by the
ratio, so the rows of ratio r are exactly copies 0..r-1 of each real row at any larger ratio (same LM, data,
settings and master seed). This script finds each cached row's copy by recomputing the prompt examples of every
(row, copy, attempt) and writes the copies below --ratio as the target sweep's augmentation caches, which that
sweep then uses as if it had made them. Each copy is checked: a cached row must match exactly one expected
(row, copy) in order, and the rows left unmatched must be the source's failed rows.

    python scripts/derive_ratio.py --dataset sst2 --data_dir ../shared/data --levels 0.003 \
        --source results/sst2-ratio10 --source_ratio 10 --output_dir results/sst2-ratio5 --ratio 5 \
        --methods noaug gpt3mix-soft gpt3mix-calibrated
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from transformers import HfArgumentParser

from gpt3mix_hf.augment_run import number_duplicates
from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import TransformersBackend
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.experiment import (
    Augmentations,
    ExperimentArguments,
    ProtocolAugmenterConfig,
    data_seed,
    load_task_data,
    make_split,
)
from gpt3mix_hf.spec import task_spec
from gpt3mix_hf.state import json_round_trip, load_rows, save_rows


@dataclass
class SourceArguments:
    source: str = field(metadata={"help": "The output_dir of the sweep at the larger ratio."})
    source_ratio: int = field(metadata={"help": "Its ratio."})

    def __post_init__(self):
        if self.source_ratio < 2:
            raise SystemExit(f"--source_ratio must be >= 2 (a larger ratio to take fewer rows from), got "
                             f"{self.source_ratio}.")


def copies_of(augmenter: GPT3MixAugmenter, split_train, rows) -> list[tuple[int, int]]:
    """The (real row, copy) of each cached row, in order."""
    numbered = number_duplicates(split_train, augmenter.text_column, augmenter.label_column)
    planned = {(p["row"], p["copy"], p["attempt"]): p["source_ids"]
               for p in augmenter.dry_run(numbered, attempts=augmenter.config.max_attempts)}
    expected = sorted({(row, copy) for row, copy, _ in planned})
    found, position = [], 0
    for source_ids, failed in zip(rows["source_ids"], rows["failed_attempts"], strict=True):
        attempt = len(failed)
        while position < len(expected):
            i, copy = expected[position]
            position += 1
            if planned.get((i, copy, attempt)) == list(source_ids):
                found.append((i, copy))
                break
        else:
            raise ValueError("A cached row matches no (row, copy) left: the source was made with other settings.")
    return found


def main() -> None:
    parser = HfArgumentParser((ExperimentArguments, ProtocolAugmenterConfig, SamplingConfig, SourceArguments))
    args, settings, sampling, source = parser.parse_args_into_dataclasses()
    ratio = int(settings.ratio)
    if not 1 <= ratio < source.source_ratio or ratio != settings.ratio:
        raise SystemExit(f"--ratio must be a whole number from 1 to below --source_ratio {source.source_ratio}, got "
                         f"{settings.ratio}: the rows are taken from the larger ratio's.")
    train, _ = load_task_data(args, need_test=False)
    names = list(train.features["label"].names)
    spec = task_spec(args.task, names, args.dataset)
    backend = TransformersBackend.from_pretrained(args.lm)  # its tokenizer fits prompts to the context, as made
    source_args = ExperimentArguments(**{**args.to_dict(), "output_dir": source.source})
    target = Augmentations(args, spec, sampling, settings)
    origin = Augmentations(source_args, spec, sampling, replace(settings, ratio=source.source_ratio))
    for index in range(args.data_seeds):
        for level in args.levels:
            split = make_split(train, level, index, data_seed(args.master_seed, index), args.validation_per_class)
            key, source_key = target.gpt3mix_key(split), origin.gpt3mix_key(split)
            loaded = load_rows(origin.folder("gpt3mix", split))
            if loaded is None or loaded[1]["config"] != json_round_trip(source_key):
                raise FileNotFoundError(f"{origin.folder('gpt3mix', split)} is missing or was made otherwise.")
            rows, meta = loaded
            augmenter = GPT3MixAugmenter(backend, split.train, spec, config=origin.generation_settings(split),
                                         sampling=sampling)
            found = copies_of(augmenter, split.train, rows)
            lost = len(split.train) * source.source_ratio - len(found)
            if lost != meta["report"]["failed_rows"]:
                raise ValueError(f"{lost} rows unmatched, but the source lost {meta['report']['failed_rows']}.")
            keep = [j for j, (_, copy) in enumerate(found) if copy < ratio]
            subset = rows.select(keep)
            report = {"rows_requested": len(split.train) * ratio, "rows_written": len(subset),
                      "failed_rows": len(split.train) * ratio - len(subset),
                      "generated_tokens": int(sum(subset["generated_tokens"]))}
            made = meta["augmenter"]
            derived = {"config": key, "augmenter": {**made, "augmenter": {**made["augmenter"], "ratio": float(ratio)}},
                       "report": report, "seconds": None,
                       "derived_from": {"folder": str(origin.folder("gpt3mix", split)), "copies": ratio}}
            folder = target.folder("gpt3mix", split)
            save_rows(folder, subset, json_round_trip(derived))
            print(f"{folder}: {len(subset)} of {len(rows)} rows (copies < {ratio}), {lost} lost in the source")


if __name__ == "__main__":
    main()
