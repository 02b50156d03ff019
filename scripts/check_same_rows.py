"""Does `augment()` write the same rows on this machine whatever the batching? Per dtype, side by side.

The test suite holds the contract on the CPU in float32 (`test_smollm2_same_rows_whatever_batch_size_or_num_proc`);
README's "Same seed, same data" says what holds in bfloat16. This script asks the same question of the machine it runs
on, a GPU included (the backend takes `cuda` when there is one), with the embedded LM and SST-2 rows. For each
dtype it augments the same real rows with the same seed four ways:

- `reference`: one `map` batch of all rows, the backend's default decoding slots;
- `again`: the same settings, a second time (what a bf16 or GPU run can promise at least);
- `batch 1`: one row per `map` batch and one decoding slot;
- `shuffled`: the reference settings, the rows in another order.

and prints, against the reference, how many synthetic rows are the same (text, label and the prompt's examples)
and the largest soft-label difference among those, with each run's seconds (one run each: a rough reading).
Rows are matched by their prompt's examples (`source_ids`), which depend on the seed and the real row alone.

    python scripts/check_same_rows.py --data_dir ../shared/data
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.backends.local.machine import machine_kind, resolve_device
from gpt3mix_hf.data import class_balanced_sample, load_benchmark


@dataclass
class CheckArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    rows: int = field(default=16, metadata={"help": "Real rows augmented (one synthetic row each)."})
    max_new_tokens: int = field(default=40, metadata={"help": "Token budget per generation."})
    dtypes: str = field(default="float32,bfloat16", metadata={"help": "Comma-separated dtypes to check."})
    device: str | None = field(default=None, metadata={"help": "Default: cuda when available, else cpu."})

    def __post_init__(self):
        for name in ("rows", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise SystemExit(f"--{name} must be >= 1, got {getattr(self, name)}.")
        for dtype in self.dtypes.split(","):
            if dtype not in ("float32", "bfloat16"):
                raise SystemExit(f"--dtypes takes float32 and/or bfloat16, got {dtype!r}.")


def augment(args, real, pool, dtype, map_batch_size, slots) -> tuple[dict[tuple, dict], float]:
    """The synthetic rows by their prompt's examples, and the seconds `augment()` took."""
    backend = TransformersBackend.from_pretrained(args.model, dtype=dtype, device=args.device, batch_size=slots)
    augmenter = GPT3MixAugmenter(backend, pool, TaskSpec.from_preset("sst2"), seed=1, max_attempts=2,
                                 sampling=SamplingConfig(max_new_tokens=args.max_new_tokens))
    synthetic = augmenter.augment(real, batch_size=map_batch_size, load_from_cache_file=False)
    return {tuple(row["source_ids"]): row for row in synthetic.to_list()}, augmenter.report.seconds


def compare(reference: dict[tuple, dict], other: dict[tuple, dict]) -> str:
    same = [key for key, row in reference.items()
            if key in other and (other[key]["text"], other[key]["label"]) == (row["text"], row["label"])]
    deviation = max((float(np.abs(np.subtract(reference[key]["soft_labels"], other[key]["soft_labels"])).max())
                     for key in same), default=float("nan"))
    return (f"{len(same)} of {len(reference)} rows the same ({len(other)} written); "
            f"soft labels of those: max |difference| {deviation:.2e}")


def main():
    (args,) = HfArgumentParser(CheckArguments).parse_args_into_dataclasses()
    args.device = device = resolve_device(args.device)
    print(f"machine: {machine_kind(device)}; torch {torch.__version__}")
    pool = class_balanced_sample(load_benchmark("sst2", "train", args.data_dir), per_class=max(50, args.rows), seed=0)
    real = pool.select(range(args.rows))
    for dtype in args.dtypes.split(","):
        # Printed as each finishes, so a run stopped at a time limit keeps what it measured.
        reference, seconds = augment(args, real, pool, dtype, args.rows, None)
        print(f"\n{dtype} on {device}: reference wrote {len(reference)} of {args.rows} rows ({seconds:.1f} s)",
              flush=True)
        # (name, rows mapped, map batch size, decoding slots)
        for name, rows, map_batch_size, slots in (("again", real, args.rows, None), ("batch 1", real, 1, 1),
                                                  ("shuffled", real.shuffle(seed=0), args.rows, None)):
            synthetic, seconds = augment(args, rows, pool, dtype, map_batch_size, slots)
            print(f"  {name:<9} {compare(reference, synthetic)} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
