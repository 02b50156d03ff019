"""Where the local engine's time goes: timers around each part of `TransformersBackend.generate_and_score`
(prefill, decode forward passes, sampling, merging and dropping rows, label scoring) on SST-2 GPT3Mix prompts,
the decode steps by number of rows, and the matrix-product rates that bound a decode step on this machine.

    python scripts/profile_engine.py --data_dir ../shared/data --rows 96 --max_new_tokens 48
    python scripts/profile_engine.py --data_dir ../shared/data --rows 32 --max_new_tokens 32 --augment

With --augment it times `augment()` (retries included) instead of one engine pass. A diagnostic, not a
benchmark: the timers wrap the engine's own methods for this run only, and one run is one sample.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.backends.local import kv_cache, prefill, scoring
from gpt3mix_hf.backends.local import transformers as engine
from gpt3mix_hf.data import class_balanced_sample, load_benchmark


@dataclass
class ProfileArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    rows: int = field(default=96, metadata={"help": "Synthetic rows (prompts)."})
    max_new_tokens: int = field(default=48, metadata={"help": "Token budget per generation."})
    slots: int | None = field(default=None, metadata={"help": "Decoding slots (default: the engine's)."})
    augment: bool = field(default=False, metadata={"help": "Time augment() (retries included), not one pass."})


PARTS = {  # (owner, method) -> part
    (prefill, "prefill"): "prefill",
    (kv_cache.DecodeBatch, "advance"): "decode forward passes",
    (engine, "sample_tokens"): "sampling",
    (kv_cache.DecodeBatch, "merge"): "merging rows in",
    (kv_cache.DecodeBatch, "select"): "dropping finished rows",
    (scoring.LabelScorer, "score_prompt_caches"): "label scoring passes",
}


def timed(seconds: dict, calls: collections.Counter, part: str, method):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[part] += time.perf_counter() - start
            calls[part] += 1

    return wrapper


def matmul_rate(rows: int, inner: int, outer: int, repeats: int) -> float:
    """Seconds per `[rows, inner] @ [inner, outer]` fp32 product (median of `repeats`)."""
    x, w = torch.randn(rows, inner), torch.randn(outer, inner)
    F.linear(x, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        F.linear(x, w)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    (args,) = HfArgumentParser(ProfileArguments).parse_args_into_dataclasses()
    pool = class_balanced_sample(load_benchmark("sst2", "train", args.data_dir), per_class=max(50, args.rows), seed=0)
    real = pool.select(range(args.rows))
    backend = TransformersBackend.from_pretrained(args.model, batch_size=args.slots)
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens)
    augmenter = GPT3MixAugmenter(backend, pool, TaskSpec.from_preset("sst2"), ratio=1, seed=0, sampling=sampling)

    seconds: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    batch_rows: list[int] = []
    originals = {key: getattr(*key) for key in PARTS}
    advance = originals[(kv_cache.DecodeBatch, "advance")]

    def counting_advance(batch, *rest, **kwargs):
        batch_rows.append(len(batch.rows))
        return advance(batch, *rest, **kwargs)

    try:
        for (owner, name), part in PARTS.items():
            method = counting_advance if part == "decode forward passes" else originals[(owner, name)]
            setattr(owner, name, timed(seconds, calls, part, method))
        start = time.perf_counter()
        if args.augment:
            augmenter.augment(real, batch_size=args.rows, load_from_cache_file=False)
            tokens = augmenter.report.generated_tokens
        else:
            # The first attempt's prompt of each synthetic row, as augment() builds it (as bench_augment.py does).
            built = [(p["prompt"], p["source_ids"], p["seed"]) for p in augmenter.dry_run(real) if p["copy"] == 0]
            continuations = augmenter.template.scoring_parts(augmenter.spec, augmenter.label_names, "")[1]
            completions = backend.generate_and_score([p for p, _, _ in built], [s for _, _, s in built], sampling,
                                                     augmenter.labeller.scoring_context, continuations)
            tokens = sum(c.num_tokens for c in completions)
        total = time.perf_counter() - start
    finally:
        for (owner, name), method in originals.items():
            setattr(owner, name, method)

    print(f"{'augment()' if args.augment else 'generate_and_score'}: {args.rows} rows, {tokens} tokens in "
          f"{total:.1f} s ({tokens / total:.1f} tokens/s), {backend.batch_size} slots, "
          f"{str(backend.model.dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads")
    print(f"{'part':<26}{'seconds':>9}{'share':>8}{'calls':>7}")
    for part in PARTS.values():
        print(f"{part:<26}{seconds[part]:>9.2f}{seconds[part] / total:>8.0%}{calls[part]:>7}")
    rest = total - sum(seconds.values())
    print(f"{'the rest':<26}{rest:>9.2f}{rest / total:>8.0%}")
    histogram = collections.Counter(min((rows + 3) // 4 * 4, 64) for rows in batch_rows)
    print("decode steps by rows decoding (up to 4, 8, ...):",
          ", ".join(f"<={size}: {histogram[size]}" for size in sorted(histogram)))

    config = backend.model.config
    hidden, vocab = config.hidden_size, config.vocab_size
    flops = 2 * hidden * config.intermediate_size
    for rows in (8, 26, 64):
        layer = matmul_rate(rows, hidden, config.intermediate_size, 50)
        head = matmul_rate(rows, hidden, vocab, 10)
        print(f"{rows} rows: an MLP product [{rows}x{hidden}]@[{hidden}x{config.intermediate_size}] runs at "
              f"{rows * flops / layer / 1e9:.0f} GFLOP/s; the output layer ({vocab} tokens) takes {head * 1e3:.1f} ms")
    large = matmul_rate(1024, hidden, config.intermediate_size, 10)
    print(f"1024 rows: {1024 * flops / large / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
