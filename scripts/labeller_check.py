"""How right are the LM's labels? Every label mode measured where the true label is known, before any classifier.

The soft label of a synthetic row is the LM's label distribution after a text in a GPT3Mix prompt. Here the text
is a real held-out row, scored exactly as the augmenter scores a generated text: a `GPT3MixAugmenter` built on a
small pool of train rows builds the prompts (`order_prompts`: the k examples, drawn uniformly from the pool as
the paper does, in each of m orders, the row's own order first) and scores the text in them
(`label_distributions`: the same scoring context and backend call as a generation); its `task_prior()` is the
debiased mode's prior. The content-free texts are scored in the same prompts as `calibrate=True` does.

Label modes, all from the same scores:
- `soft`: the distribution in the row's own prompt (the paper's soft label);
- `calibrated`: `soft` with that prompt's content-free prior divided out (Zhao et al., 2021);
- `averaged`: the mean over the m orders, no prior;
- `debiased`: `averaged` divided by the augmenter's task prior (Batch Calibration's mean distribution, taken
  over the pool's rows scored the same way): what `label_mode="debiased"` writes;
- `debiased-batch`: `averaged` divided by the mean `averaged` distribution of the scored held-out rows
  themselves (Batch Calibration as Zhou et al. 2024 apply it, on the test batch);
- `debiased-cf`: `averaged` divided by a task-level content-free prior, the mean of the rows' own prompts';
- `soft-batch`: `soft` divided by the mean `soft` distribution of the scored rows (one order, Batch
  Calibration only);
- with --class_cycled (tried here only, not an augmenter mode): `classes-averaged`, the mean over one prompt per
  class whose last example is a pool row of that class (the first k - 1 examples the row's own), and
  `classes-batch`, that mean divided by its mean over the scored rows. Their prompts do not hold the own prompt's
  last example, so their recency rate only says how often they pick that label.

Each mode: accuracy, macro-F1, mean log-likelihood of the true label, each label's predicted share, and the
recency rate: on prompts whose examples do not all have one label, the share of rows whose argmax is the last
example's label (`recency_rate`), beside the share whose true label it is (`true_recency_rate`). Also the cost:
the prefilled tokens of the row's own prompt against the other m - 1 orders (the debiased label's extra work,
prefill only: the augmenter scores the own order on the generation's cache), the seconds of that extra scoring and
of the task prior. One JSON per task in --output_dir, with the machine and the command.

    OMP_NUM_THREADS=1 python scripts/labeller_check.py --data_dir ../shared/data --tasks sst2 subj trec6 cr \
        --rows 200 --output_dir results/labeller
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm.auto import tqdm
from transformers import HfArgumentParser

from gpt3mix_hf import GPT3MixAugmenter, TaskSpec, TransformersBackend
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.labels import (
    CONTENT_FREE_TEXTS,
    calibrate,
    content_free_prior,
    mean_distribution,
    normalize_logprobs,
)
from gpt3mix_hf.selection import ExampleSelector, content_key, row_rng
from gpt3mix_hf.state import write_json


@dataclass
class CheckArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with <task>/*.jsonl."})
    tasks: list[str] = field(default_factory=lambda: ["sst2", "subj", "trec6", "cr"],
                             metadata={"help": "Benchmarks (preset names)."})
    split: str = field(
        default="test",
        metadata={"help": "Split whose rows are labelled by the LM. train: train rows outside the pool, so that no "
                  "test label informs a choice made from the study."},
    )
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    dtype: str = field(default="float32", metadata={"help": "The LM's dtype."})
    rows: int = field(default=200, metadata={"help": "Held-out rows scored: a seeded uniform sample of the split."})
    pool_per_class: int = field(default=8, metadata={"help": "Pool rows per class (from train) for the prompts."})
    k: int = field(default=2, metadata={"help": "Examples per prompt."})
    orders: int = field(default=2, metadata={"help": "m: example orders averaged by the debiased modes (<= k!)."})
    class_cycled: bool = field(
        default=False,
        metadata={"help": "Also try (in this script only) prompts whose last example is a pool row of each class in "
                  "turn, the other examples the row's own: modes classes-averaged and classes-batch."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the samples and the example draws."})
    chunk: int = field(default=25, metadata={"help": "Rows scored per backend call."})
    output_dir: str | None = field(default=None, metadata={"help": "Write <task>.json here."})

    def __post_init__(self):
        for name in ("rows", "pool_per_class", "k", "orders", "chunk"):
            if getattr(self, name) < 1:
                raise SystemExit(f"--{name} must be >= 1, got {getattr(self, name)}.")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(distributions: np.ndarray, gold: np.ndarray, last: np.ndarray, mixed: np.ndarray, num_labels: int):
    predicted = distributions.argmax(1)
    return {
        "accuracy": float((predicted == gold).mean()),
        "macro_f1": float(f1_score(gold, predicted, average="macro", labels=list(range(num_labels)))),
        "true_label_log_likelihood": float(np.mean(np.log(distributions[np.arange(len(gold)), gold] + 1e-12))),
        "predicted_share": (np.bincount(predicted, minlength=num_labels) / len(gold)).tolist(),
        "recency_rate": float((predicted[mixed] == last[mixed]).mean()),
        "true_recency_rate": float((gold[mixed] == last[mixed]).mean()),
    }


def check_task(args: CheckArguments, task: str, backend) -> dict:
    spec = TaskSpec.from_preset(task)
    train = load_benchmark(task, "train", data_dir=args.data_dir)
    pool = class_balanced_sample(train, per_class=args.pool_per_class, seed=args.seed)
    held_out = load_benchmark(task, args.split, data_dir=args.data_dir)
    if args.split == "train":
        in_pool = set(pool["text"])
        held_out = held_out.filter(lambda row: row["text"] not in in_pool, desc="Leaving out the pool's rows")
    held_out = held_out.shuffle(seed=args.seed + 1).select(range(min(args.rows, len(held_out))))
    names = held_out.features["label"].names
    augmenter = GPT3MixAugmenter(backend, pool, spec, k=args.k, selection="uniform", label_mode="debiased",
                                 debias_orders=args.orders, seed=args.seed)
    selector = ExampleSelector(pool["label"], len(names), k=args.k, strategy="uniform")
    scoring = augmenter.template.scoring_parts
    continuations = scoring(spec, names, "")[1]
    cf_contexts = [scoring(spec, names, text)[0] for text in CONTENT_FREE_TEXTS]
    m = args.orders

    texts, gold, last, mixed, prompts, class_prompts = [], [], [], [], [], []
    for row in held_out:
        chosen = selector.select(row_rng(args.seed, content_key(row["text"], names[row["label"]])))
        examples = [(pool[j]["text"], pool[j]["label"]) for j in chosen]
        prompts.append(augmenter.labeller.order_prompts(examples))
        if args.class_cycled:
            rng = row_rng(args.seed, content_key(row["text"], names[row["label"]]), -5)
            cycled = []
            for label in range(len(names)):
                rows_of_class = [j for j, y in enumerate(pool["label"]) if y == label and j not in chosen]
                last_example = pool[int(rows_of_class[rng.integers(len(rows_of_class))])]
                cycled.append(augmenter.labeller.order_prompts([*examples[:-1], (last_example["text"], label)])[0])
            class_prompts.append(cycled)
        texts.append(row["text"])
        gold.append(row["label"])
        last.append(examples[-1][1])
        mixed.append(len({label for _, label in examples}) > 1)

    seconds = {"own_order_and_content_free": 0.0, "other_orders": 0.0}
    per_order = np.zeros((len(texts), m, len(names)))
    cf_priors = np.zeros((len(texts), len(names)))
    for begin in tqdm(range(0, len(texts), args.chunk), desc=f"{task}: scoring rows"):
        part = list(range(begin, min(begin + args.chunk, len(texts))))
        # The row's own prompt: the text and, as calibrate=True scores them, the content-free texts, in one
        # backend call (the prompt goes through the model once).
        start = time.perf_counter()
        contexts = [[scoring(spec, names, texts[i])[0], *cf_contexts] for i in part]
        scores = backend.score([prompts[i][0] for i in part for _ in contexts[0]],
                               [context for row in contexts for context in row], continuations)
        seconds["own_order_and_content_free"] += time.perf_counter() - start
        # The other orders, exactly as label_mode="debiased" scores a generated text: its extra work.
        start = time.perf_counter()
        others = augmenter.labeller.label_distributions(
            [prompts[i][j] for i in part for j in range(1, m)], [texts[i] for i in part for _ in range(1, m)]
        )
        seconds["other_orders"] += time.perf_counter() - start
        width = 1 + len(cf_contexts)
        for position, i in enumerate(part):
            row_scores = scores[position * width : (position + 1) * width]
            per_order[i, 0] = normalize_logprobs(row_scores[0])
            cf_priors[i] = content_free_prior(row_scores[1:])
            for j in range(1, m):
                distribution = others[position * (m - 1) + j - 1]
                if isinstance(distribution, str):
                    raise RuntimeError(f"{task} row {i}: {distribution}")
                per_order[i, j] = distribution

    start = time.perf_counter()
    pool_prior = augmenter.labeller.task_prior()
    prior_seconds = time.perf_counter() - start

    extra_modes = {}
    if args.class_cycled:
        start = time.perf_counter()
        flat = augmenter.labeller.label_distributions([p for row in class_prompts for p in row],
                                             [t for t, row in zip(texts, class_prompts, strict=True) for _ in row])
        seconds["class_cycled"] = time.perf_counter() - start
        if any(isinstance(d, str) for d in flat):
            raise RuntimeError(f"{task}: a class-cycled prompt gave no label probability")
        per_class = np.asarray(flat).reshape(len(texts), len(names), len(names))
        class_averaged = np.asarray([mean_distribution(d.tolist()) for d in per_class])
        class_prior = mean_distribution(class_averaged.tolist())
        extra_modes = {"classes-averaged": class_averaged,
                       "classes-batch": np.asarray([calibrate(d.tolist(), class_prior) for d in class_averaged])}

    gold, last, mixed = np.asarray(gold), np.asarray(last), np.asarray(mixed)
    soft = per_order[:, 0]
    averaged = np.asarray([mean_distribution(d.tolist()) for d in per_order])
    batch_prior = mean_distribution(averaged.tolist())
    soft_batch_prior = mean_distribution(soft.tolist())
    cf_task_prior = mean_distribution(cf_priors.tolist())
    modes = {
        "soft": soft,
        "calibrated": np.asarray([calibrate(d.tolist(), c.tolist()) for d, c in zip(soft, cf_priors, strict=True)]),
        "averaged": averaged,
        "debiased": np.asarray([calibrate(d.tolist(), pool_prior) for d in averaged]),
        "debiased-batch": np.asarray([calibrate(d.tolist(), batch_prior) for d in averaged]),
        "debiased-cf": np.asarray([calibrate(d.tolist(), cf_task_prior) for d in averaged]),
        "soft-batch": np.asarray([calibrate(d.tolist(), soft_batch_prior) for d in soft]),
        **extra_modes,
    }
    tokens = {"own_order": 0, "other_orders": 0}
    for row_prompts, text in zip(prompts, texts, strict=True):
        context = scoring(spec, names, text)[0]
        tokens["own_order"] += len(backend.tokenize(row_prompts[0] + context))
        tokens["other_orders"] += sum(len(backend.tokenize(prompt + context)) for prompt in row_prompts[1:])
    return {
        "task": task, "split": args.split, "rows": len(gold), "label_names": names,
        "true_share": (np.bincount(gold, minlength=len(names)) / len(gold)).tolist(),
        "mixed_label_prompts": int(mixed.sum()),
        "settings": {"model": args.model, "dtype": args.dtype, "k": args.k, "orders": m, "selection": "uniform",
                     "pool_per_class": args.pool_per_class, "pool_rows": len(pool), "seed": args.seed,
                     "content_free_texts": list(CONTENT_FREE_TEXTS)},
        "priors": {"debiased (pool)": pool_prior, "debiased-batch": batch_prior, "debiased-cf": cf_task_prior,
                   "soft-batch": soft_batch_prior},
        "cost": {
            "seconds": seconds, "task_prior_seconds": prior_seconds, "prefill_tokens": tokens,
            "extra_prefill_per_row": tokens["other_orders"] / max(1, tokens["own_order"]),
            "note": "own_order: the row's own prompt + text, what the soft label costs after generation; "
                    "other_orders: the debiased label's extra prefill (m - 1 prompts per text); task_prior: once "
                    "per augmenter",
        },
        "modes": {name: summary(d, gold, last, mixed, len(names)) for name, d in modes.items()},
    }


def main():
    (args,) = HfArgumentParser(CheckArguments).parse_args_into_dataclasses()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    backend = TransformersBackend.from_pretrained(args.model, dtype=args.dtype)
    machine = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "device": "cpu",
               "dtype": backend.identity.get("dtype"), "torch": torch.__version__, "python": platform.python_version()}
    command = "OMP_NUM_THREADS={} python {}".format(os.environ.get("OMP_NUM_THREADS", ""),
                                                   shlex.join(sys.argv))
    for task in args.tasks:
        start = time.perf_counter()
        result = check_task(args, task, backend)
        result.update(seconds=time.perf_counter() - start, machine=machine, command=command)
        print(f"\n{task} {args.split}: {result['rows']} rows ({result['mixed_label_prompts']} mixed-label prompts), "
              f"{args.model} {machine['dtype']}, k={args.k}, m={args.orders}, {result['seconds']:.0f} s")
        cost = result["cost"]
        print(f"  extra prefill for the debiased label: {cost['extra_prefill_per_row']:.2f}x the own prompt's tokens; "
              f"seconds: own order + content-free {cost['seconds']['own_order_and_content_free']:.1f}, "
              f"other orders {cost['seconds']['other_orders']:.1f}, "
              f"task prior {cost['task_prior_seconds']:.1f}")
        for name, figures in result["modes"].items():
            shares = dict(zip(result["label_names"], np.round(figures["predicted_share"], 2).tolist(), strict=True))
            print(f"  {name:>20}: acc {figures['accuracy']:.3f}  F1 {figures['macro_f1']:.3f}  "
                  f"log p(true) {figures['true_label_log_likelihood']:.3f}  recency {figures['recency_rate']:.3f} "
                  f"(true {figures['true_recency_rate']:.3f})  predicted {shares}")
        if args.output_dir:
            write_json(Path(args.output_dir) / f"{task}.json", result)


if __name__ == "__main__":
    main()
