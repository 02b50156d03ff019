"""Throughput of the augmenter's generation + soft labels against bare `model.generate`, side by side.

Both sides get the same GPT3Mix prompts (SST-2, k=2), batch size, sampling settings and token budget, and
both stop a row at the end of its line. Runs alternate between the two sides; medians are printed, with the
ratio augmenter / bare (target >= 0.85) and the share of the augmenter's time spent scoring labels.

    python scripts/bench_augment.py --data_dir ../shared/data
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend
from gpt3mix_hf.data import class_balanced_sample, load_benchmark


@dataclass
class BenchArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with sst2/*.jsonl; default: the Hub."})
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    prompts: int = field(default=16, metadata={"help": "Prompts per run."})
    batch_size: int = field(default=8, metadata={"help": "Prompts decoded together (both sides)."})
    max_new_tokens: int = field(default=48, metadata={"help": "Token budget per generation (both sides)."})
    repeats: int = field(default=3, metadata={"help": "Runs per side; medians are reported."})
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's choice)."})


def bare_generate(backend, prompts, sampling, batch_size) -> int:
    """Plain `model.generate` on the same prompts; returns the tokens generated up to each line's end."""
    tokenizer, model = backend.tokenizer, backend.model
    tokens = 0
    for start in range(0, len(prompts), batch_size):
        encoded = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_new_tokens=sampling.max_new_tokens,
                stop_strings="\n",
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in output[:, encoded["input_ids"].shape[1] :]:
            text_tokens = 0
            for token in row.tolist():
                text_tokens += 1
                if backend._line_break_tokens[token]:
                    break
            tokens += text_tokens
    return tokens


def main():
    (args,) = HfArgumentParser(BenchArguments).parse_args_into_dataclasses()
    if args.threads:
        torch.set_num_threads(args.threads)
    train = class_balanced_sample(load_benchmark("sst2", "train", args.data_dir), per_class=50, seed=0)
    backend = TransformersBackend.from_pretrained(args.model, batch_size=args.batch_size)
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=args.max_new_tokens)
    augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), sampling=sampling)
    built = [augmenter._prompt(row, 0, 0) for row in range(args.prompts)]
    prompts, seeds = [p for p, _, _ in built], [s for _, _, s in built]
    continuations = augmenter.template.scoring_parts(augmenter.spec, augmenter.label_names, "")[1]

    timings = {"bare generate": [], "augmenter, generation only": [], "augmenter, with soft labels": []}
    tokens = {name: [] for name in timings}
    scored = []
    bare_generate(backend, prompts[: args.batch_size], sampling, args.batch_size)  # warm-up
    for repeat in range(args.repeats):
        start = time.perf_counter()
        tokens["bare generate"].append(bare_generate(backend, prompts, sampling, args.batch_size))
        timings["bare generate"].append(time.perf_counter() - start)

        start = time.perf_counter()
        completions = backend.generate(prompts, seeds, sampling)
        timings["augmenter, generation only"].append(time.perf_counter() - start)
        tokens["augmenter, generation only"].append(sum(c.num_tokens for c in completions))

        start = time.perf_counter()
        completions = backend.generate_and_score(prompts, seeds, sampling, augmenter._scoring_context, continuations)
        timings["augmenter, with soft labels"].append(time.perf_counter() - start)
        tokens["augmenter, with soft labels"].append(sum(c.num_tokens for c in completions))
        scored.append(sum(c.label_logprobs is not None for c in completions))
        print(f"repeat {repeat + 1}/{args.repeats} done")

    print(f"\n{args.model}, {args.prompts} prompts, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
          f"torch threads {torch.get_num_threads()}; medians of {args.repeats} runs")
    print(f"{'side':<30}{'samples/s':>12}{'tokens/s':>12}{'tokens':>10}")
    rates = {}
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        rates[name] = (args.prompts / median, statistics.median(tokens[name]) / median)
        print(f"{name:<30}{rates[name][0]:>12.2f}{rates[name][1]:>12.1f}{statistics.median(tokens[name]):>10.0f}")
    bare, full = rates["bare generate"], rates["augmenter, with soft labels"]
    print(f"\nratio augmenter (soft labels included) / bare generate: samples/s {full[0] / bare[0]:.2f}, "
          f"tokens/s {full[1] / bare[1]:.2f}")
    soft_share = 1 - statistics.median(timings["augmenter, generation only"]) / statistics.median(
        timings["augmenter, with soft labels"]
    )
    print(f"share of the augmenter's time spent on soft labels: {soft_share:.1%} "
          f"({statistics.median(scored):.0f} of {args.prompts} generations parsed and scored)")


if __name__ == "__main__":
    main()
