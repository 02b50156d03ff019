"""Throughput of the augmenter (generation + soft labels) against bare `model.generate`, side by side.

Both sides get the same GPT3Mix prompts (SST-2, k=2: the first attempt of each synthetic row), sampling
settings and token budget, and tokens are counted up to the end of each row's line on both. The augmenter
runs end to end (`augment()`: prompts, continuous-batching generation, soft labels, parsing, retries);
bare `model.generate` runs in static batches of 16/32/64 in fp32, and in bf16 too where the CPU has native bf16
(or a GPU runs it), and the best is reported. Runs alternate between the sides; medians are printed. Also
printed: the largest bf16-vs-fp32 difference of the soft labels on the same prompts and texts, as the augmenter
computes them (bf16 generation, float32 label scores: `score_dtype="float32"`) and scored in bf16
(`score_dtype=None`); with a bf16 engine, its speed scoring in bf16 too; and what debiased labels cost: the same
rows through `augment(label_mode="debiased")`, with the soft run's prompts and seeds, and its task prior once.
With `--map_batch_sizes 16,64`, `augment()` is also timed at those `Dataset.map` batch sizes, side by side.
The defaults took 8.5 minutes on a 2-core AMD EPYC with AVX512_BF16.

    python scripts/bench_augment.py --data_dir ../shared/data

The last line reads `augmenter <T> tokens/s, <S> rows/s; best bare generate <B> tokens/s (<dtype>, batch
<n>); ratio <T/B>`.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.backends.local.machine import cpu_has_bf16_matmul, resolve_dtype
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.labels import normalize_logprobs
from gpt3mix_hf.models import resolve_lm

FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass
class BenchArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    rows: int = field(default=32, metadata={"help": "Synthetic rows (prompts) per run."})
    max_new_tokens: int = field(default=32, metadata={"help": "Token budget per generation (both sides)."})
    repeats: int = field(default=3, metadata={"help": "Runs per setting; medians are reported."})
    dtype: str = field(default="auto", metadata={"help": "The augmenter's dtype: auto, float32 or bfloat16."})
    slots: int | None = field(default=None, metadata={"help": "The augmenter's decoding slots (default: auto)."})
    bare_batch_sizes: str = field(default="16,32,64", metadata={"help": "Bare generate batch sizes."})
    bare_dtypes: str = field(
        default="native",
        metadata={"help": "Bare generate dtypes, e.g. float32,bfloat16; `native`: float32, and bfloat16 where "
                          "`dtype='auto'` picks it (native bf16), since emulated bf16 is never the fastest."},
    )
    soft_label_deviation: bool = field(default=True, metadata={"help": "Measure bf16 vs fp32 soft labels."})
    debiased: bool = field(
        default=True,
        metadata={"help": "Also time augment() with label_mode='debiased' on the same rows (the same generations; "
                  "its extra is the prefill of the other example orders), and its task prior once."},
    )
    map_batch_sizes: str | None = field(
        default=None,
        metadata={"help": "Also time augment() at these `Dataset.map` batch sizes (e.g. 16,64; the main run maps "
                  "all rows in one batch) on the same rows and seeds, and print their ratios."},
    )
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's choice)."})

    def __post_init__(self):
        for name in ("rows", "max_new_tokens", "repeats"):
            if getattr(self, name) < 1:
                raise SystemExit(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.map_batch_sizes is not None:
            if not all(size.isdigit() and int(size) >= 1 for size in self.map_batch_sizes.split(",")):
                raise SystemExit(f"--map_batch_sizes takes positive integers (16,64), got {self.map_batch_sizes!r}.")


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = cpuinfo.read().splitlines()
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
        flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    except OSError:
        name, flags = platform.processor() or "?", set()
    present = [flag for flag in FLAGS_THAT_MATTER if flag in flags]
    return (f"{name}; {os.cpu_count()} logical CPUs; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"flags: {' '.join(present) or 'none of note'}; native bf16 matmul: {cpu_has_bf16_matmul()}; "
            f"dtype auto -> {str(resolve_dtype('auto', 'cpu')).removeprefix('torch.')}")


def bare_generate(model, tokenizer, line_breaks, prompts, sampling, batch_size) -> int:
    """Plain `model.generate` in static batches; returns the tokens generated up to each line's end."""
    tokens = 0
    for start in range(0, len(prompts), batch_size):
        encoded = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=0,
                max_new_tokens=sampling.max_new_tokens,
                stop_strings="\n",
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in output[:, encoded["input_ids"].shape[1] :]:
            for position, token in enumerate(row.tolist()):
                if line_breaks[token] or position + 1 == len(row):
                    tokens += position + 1
                    break
    return tokens


def soft_label_deviation(args, augmenter, prompts, seeds, sampling, continuations) -> tuple[dict[str, float], int]:
    """Max |bf16 - fp32| over the soft labels of the same prompts and generated texts (fp32 generations): for a
    bf16 backend scoring in float32 (the default) and one scoring in bf16."""
    backends = {
        "float32": TransformersBackend.from_pretrained(args.model, dtype="float32", batch_size=args.slots),
        "bfloat16, scored in float32": TransformersBackend.from_pretrained(
            args.model, dtype="bfloat16", batch_size=args.slots, score_dtype="float32"),
        "bfloat16, scored in bfloat16": TransformersBackend.from_pretrained(
            args.model, dtype="bfloat16", batch_size=args.slots, score_dtype=None),
    }
    completions = backends["float32"].generate(prompts, seeds, sampling)
    context_of = augmenter.labeller.scoring_context
    todo = [(prompt, context_of(c.text)) for prompt, c in zip(prompts, completions, strict=True)]
    todo = [(prompt, context) for prompt, context in todo if context is not None]
    if not todo:
        return {}, 0
    soft = {}
    for name, backend in backends.items():
        scores = backend.score([p for p, _ in todo], [c for _, c in todo], continuations)
        soft[name] = torch.tensor([normalize_logprobs(row) for row in scores])
    deviations = {name: float((values - soft["float32"]).abs().max()) for name, values in soft.items()
                  if name != "float32"}
    return deviations, len(todo)


def main():
    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    pool = class_balanced_sample(load_benchmark("sst2", "train", args.data_dir), per_class=max(50, args.rows), seed=0)
    real = pool.select(range(args.rows))
    backend = TransformersBackend.from_pretrained(args.model, dtype=args.dtype, batch_size=args.slots)
    own_dtype_backend = None
    if backend.model.dtype != torch.float32:
        own_dtype_backend = TransformersBackend.from_pretrained(args.model, dtype=args.dtype, batch_size=args.slots,
                                                                score_dtype=None)
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens)
    spec = TaskSpec.from_preset("sst2")
    augmenter = GPT3MixAugmenter(backend, pool, spec, ratio=1, seed=0, sampling=sampling)
    scoring_context = augmenter.labeller.scoring_context
    # The first attempt's prompt of each synthetic row, as augment() builds it.
    built = [(p["prompt"], p["source_ids"], p["seed"]) for p in augmenter.dry_run(real) if p["copy"] == 0]
    prompts, seeds = [p for p, _, _ in built], [s for _, _, s in built]
    continuations = augmenter.template.scoring_parts(augmenter.spec, augmenter.label_names, "")[1]
    line_breaks = backend.line_break_tokens

    bare_models = {}
    bare_dtypes = args.bare_dtypes.split(",")
    # The bare models run where the backend runs (a GPU when there is one), in the dtypes native there.
    device = backend.model.device
    if args.bare_dtypes == "native":
        bare_dtypes = list(dict.fromkeys(["float32", str(resolve_dtype("auto", device.type)).removeprefix("torch.")]))
    for dtype in bare_dtypes:
        model = AutoModelForCausalLM.from_pretrained(resolve_lm(args.model), dtype=resolve_dtype(dtype)).eval()
        bare_models[dtype] = model.to(device)
    batch_sizes = [int(size) for size in args.bare_batch_sizes.split(",")]
    map_batch_sizes = [int(size) for size in args.map_batch_sizes.split(",")] if args.map_batch_sizes else []

    debiased = prior_seconds = None
    if args.debiased:
        debiased = GPT3MixAugmenter(backend, pool, spec, ratio=1, seed=0, sampling=sampling, label_mode="debiased")
        start = time.perf_counter()
        debiased.labeller.task_prior()  # once per augmenter (and worker process), then cached
        prior_seconds = time.perf_counter() - start

    # name -> list of (seconds, tokens, rows)
    runs: dict[str, list[tuple[float, int, int]]] = {}
    bare_generate(bare_models["float32" if "float32" in bare_models else dtype], backend.tokenizer, line_breaks,
                  prompts[:4], sampling, 4)  # warm-up
    for repeat in range(args.repeats):
        augmenter.augment(real, batch_size=args.rows, load_from_cache_file=False)
        report = augmenter.report
        runs.setdefault("augmenter: augment(), soft labels", []).append(
            (report.seconds, report.generated_tokens, report.rows_written))
        for size in map_batch_sizes:
            augmenter.augment(real, batch_size=size, load_from_cache_file=False)
            runs.setdefault(f"augmenter: augment(), map batch {size}", []).append(
                (augmenter.report.seconds, augmenter.report.generated_tokens, augmenter.report.rows_written))
        if debiased is not None:
            debiased.augment(real, batch_size=args.rows, load_from_cache_file=False)
            runs.setdefault("augmenter: augment(), debiased labels", []).append(
                (debiased.report.seconds, debiased.report.generated_tokens, debiased.report.rows_written))
        start = time.perf_counter()
        completions = backend.generate_and_score(prompts, seeds, sampling, scoring_context, continuations)
        runs.setdefault("engine: generate_and_score", []).append(
            (time.perf_counter() - start, sum(c.num_tokens for c in completions), len(completions)))
        if own_dtype_backend is not None:
            # The same engine scoring at the model's dtype (score_dtype=None): what the float32 scores cost.
            start = time.perf_counter()
            completions = own_dtype_backend.generate_and_score(prompts, seeds, sampling, scoring_context,
                                                               continuations)
            runs.setdefault("engine: generate_and_score, bf16 scores", []).append(
                (time.perf_counter() - start, sum(c.num_tokens for c in completions), len(completions)))
        start = time.perf_counter()
        completions = backend.generate(prompts, seeds, sampling)
        runs.setdefault("engine: generate only", []).append(
            (time.perf_counter() - start, sum(c.num_tokens for c in completions), len(completions)))
        for dtype, model in bare_models.items():
            for batch_size in batch_sizes:
                start = time.perf_counter()
                tokens = bare_generate(model, backend.tokenizer, line_breaks, prompts, sampling, batch_size)
                runs.setdefault(f"bare generate {dtype} batch {batch_size}", []).append(
                    (time.perf_counter() - start, tokens, len(prompts)))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    engine_dtype = str(backend.model.dtype).removeprefix("torch.")
    print(f"\n{args.model}, {args.rows} rows, max_new_tokens {args.max_new_tokens}, augmenter {engine_dtype} with "
          f"{backend.batch_size} slots; medians of {args.repeats} runs")
    print(f"{'side':<40}{'seconds':>10}{'tokens':>9}{'rows/s':>9}{'tokens/s':>10}")
    rates = {}
    for name, results in runs.items():
        seconds = statistics.median(r[0] for r in results)
        tokens = statistics.median(r[1] for r in results)
        # Median of the per-run rates, so one slow run (a busy machine) does not skew them.
        rates[name] = (statistics.median(r[1] / r[0] for r in results),
                       statistics.median(r[2] / r[0] for r in results))
        print(f"{name:<40}{seconds:>10.1f}{tokens:>9.0f}{rates[name][1]:>9.2f}{rates[name][0]:>10.1f}")

    if debiased is not None:
        soft_seconds = statistics.median(r[0] for r in runs["augmenter: augment(), soft labels"])
        debiased_seconds = statistics.median(r[0] for r in runs["augmenter: augment(), debiased labels"])
        print(f"\ndebiased labels (m = {debiased.config.debias_orders} orders): augment() took "
              f"{debiased_seconds / soft_seconds:.2f}x the soft labels' time on the same rows, prompts and seeds; "
              f"the task prior ({min(len(pool), debiased.config.debias_prior_rows)} pool rows x "
              f"{debiased.config.debias_orders} orders, once per augmenter) {prior_seconds:.1f} s, "
              f"{prior_seconds / soft_seconds:.2f}x one soft augment() of these rows")

    if map_batch_sizes:
        rate = {size: rates[f"augmenter: augment(), map batch {size}"][0] for size in map_batch_sizes}
        print(f"\naugment() by Dataset.map batch size ({backend.batch_size} decoding slots): " + ", ".join(
            f"{size}: {rate[size]:.1f} tokens/s ({rate[size] / rate[map_batch_sizes[0]]:.2f}x batch "
            f"{map_batch_sizes[0]})" for size in map_batch_sizes))

    if args.soft_label_deviation:
        deviations, scored = soft_label_deviation(args, augmenter, prompts, seeds, sampling, continuations)
        print(f"\nsoft labels against float32 on the same prompts and texts ({scored} scored rows):")
        for name, deviation in deviations.items():
            print(f"  {name}: max |difference| {deviation:.4f}")

    bare = {name: rate for name, rate in rates.items() if name.startswith("bare generate")}
    best = max(bare, key=lambda name: bare[name][0])
    _, _, best_dtype, _, best_batch = best.split()
    tokens_per_second, rows_per_second = rates["augmenter: augment(), soft labels"]
    ratio = tokens_per_second / bare[best][0]
    print(f"augmenter {tokens_per_second:.1f} tokens/s, {rows_per_second:.2f} rows/s; best bare generate "
          f"{bare[best][0]:.1f} tokens/s ({best_dtype}, batch {best_batch}); ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
