"""Does a new tensor shape cost more than one already seen? (issue 21: "shape churn")

oneDNN, which runs bf16 matrix products on CPUs, may build a kernel for each new problem size. The engine sees
many sizes: every prefill group has its own length, and every decode step its own key/value length. If a size's
first call cost much more than its later ones, padding lengths to a few buckets would pay.

For each dtype, this times forward passes of the LM at sequence lengths it has not run before ("fresh"), then
at the same lengths again ("seen"), alternating, for a prefill (batch × length tokens) and for one decode step
on a key/value cache of that length. It prints the medians and the ratio fresh / seen per dtype and kind. A
ratio near 1 means a new shape costs nothing extra, and bucketing cannot pay.

    python scripts/bench_shapes.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, DynamicCache, HfArgumentParser

from gpt3mix_hf.backends.local.machine import cpu_has_bf16_matmul
from gpt3mix_hf.models import resolve_lm


@dataclass
class ShapeArguments:
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    batch_size: int = field(default=4, metadata={"help": "Rows per forward pass."})
    first_length: int = field(default=97, metadata={"help": "The first sequence length; then one more each time."})
    lengths: int = field(default=12, metadata={"help": "How many distinct lengths (each run fresh, then seen)."})
    dtypes: str = field(default="float32,bfloat16", metadata={"help": "Comma-separated dtypes to measure."})

    def __post_init__(self):
        for name in ("batch_size", "first_length", "lengths"):
            if getattr(self, name) < 1:
                raise SystemExit(f"--{name} must be >= 1, got {getattr(self, name)}.")


def timed(model, **inputs) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(**inputs)
    return time.perf_counter() - start


def measure(model, args: ShapeArguments, vocab: int) -> dict[str, tuple[float, float]]:
    """{kind: (median fresh seconds, median seen seconds)} for `prefill` and `decode`."""
    generator = torch.Generator().manual_seed(0)
    times = {kind: ([], []) for kind in ("prefill", "decode")}
    # Warm the allocator and the shapes no measurement uses.
    timed(model, input_ids=torch.randint(vocab, (args.batch_size, 8), generator=generator))
    for length in range(args.first_length, args.first_length + args.lengths):
        ids = torch.randint(vocab, (args.batch_size, length), generator=generator)
        for seen in (0, 1):
            times["prefill"][seen].append(timed(model, input_ids=ids))
        cache = DynamicCache()
        with torch.inference_mode():
            model(input_ids=ids, past_key_values=cache, use_cache=True)
        step = torch.randint(vocab, (args.batch_size, 1), generator=generator)
        for seen in (0, 1):
            times["decode"][seen].append(timed(model, input_ids=step, past_key_values=cache, use_cache=True))
            cache.crop(-1)  # back to `length` tokens: the same shapes again
    return {kind: (statistics.median(fresh), statistics.median(seen)) for kind, (fresh, seen) in times.items()}


def main():
    (args,) = HfArgumentParser(ShapeArguments).parse_args_into_dataclasses()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; native bf16 matmul: {cpu_has_bf16_matmul()}")
    path = resolve_lm(args.model)
    print("| dtype | kind | fresh length, median ms | seen length, median ms | fresh / seen |")
    print("|---|---|---|---|---|")
    for name in args.dtypes.split(","):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, name)).eval()
        for kind, (fresh, seen) in measure(model, args, model.config.vocab_size).items():
            print(f"| {name} | {kind} | {fresh * 1e3:.1f} | {seen * 1e3:.1f} | {fresh / seen:.2f} |")


if __name__ == "__main__":
    main()
