"""Does calibration make the LM's labels more accurate? Measured where the true label is known.

The soft label of a synthetic row is the LM's label distribution after a text in a GPT3Mix prompt. Here the
text is a real held-out row, so the distribution can be checked: for each row, a prompt with k pool examples
drawn uniformly (the paper's selection), the label words scored after the row's text (as the augmenter
scores them) and after the content-free texts in the same prompt ("Calibrate Before Use", Zhao et al.
2021). Printed and written to --output: accuracy, macro-F1, mean log-likelihood of the true label and the
share of each predicted label, raw and calibrated.

    python scripts/calibration_check.py --data_dir ../shared/data --task sst2 --rows 200
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from tqdm.auto import tqdm
from transformers import HfArgumentParser

from gpt3mix_hf import PromptTemplate, TaskSpec, TransformersBackend
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.selection import ExampleSelector, row_rng
from gpt3mix_hf.soft_labels import CONTENT_FREE_TEXTS, calibrate, content_free_prior, normalize_logprobs


@dataclass
class CheckArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Folder with <task>/*.jsonl."})
    task: str = field(default="sst2", metadata={"help": "Benchmark (a preset name)."})
    split: str = field(default="test", metadata={"help": "Split whose rows are labelled by the LM."})
    model: str = field(default="smollm2", metadata={"help": "Causal LM."})
    rows: int = field(default=200, metadata={"help": "Held-out rows scored (class-balanced sample)."})
    pool_per_class: int = field(default=8, metadata={"help": "Pool rows per class (from train) for the prompts."})
    k: int = field(default=2, metadata={"help": "Examples per prompt."})
    seed: int = field(default=0, metadata={"help": "Seed of the samples and the example draws."})
    output: str | None = field(default=None, metadata={"help": "Write the figures as JSON here."})


def summary(distributions: np.ndarray, gold: np.ndarray, num_labels: int) -> dict:
    predicted = distributions.argmax(1)
    return {
        "accuracy": float((predicted == gold).mean()),
        "macro_f1": float(f1_score(gold, predicted, average="macro")),
        "true_label_log_likelihood": float(np.mean(np.log(distributions[np.arange(len(gold)), gold] + 1e-12))),
        "predicted_share": (np.bincount(predicted, minlength=num_labels) / len(gold)).tolist(),
    }


def main():
    (args,) = HfArgumentParser(CheckArguments).parse_args_into_dataclasses()
    spec, template = TaskSpec.from_preset(args.task), PromptTemplate()
    train = load_benchmark(args.task, "train", data_dir=args.data_dir)
    pool = class_balanced_sample(train, per_class=args.pool_per_class, seed=args.seed)
    held_out = load_benchmark(args.task, args.split, data_dir=args.data_dir)
    names = held_out.features["label"].names
    per_class = max(1, args.rows // len(names))
    held_out = class_balanced_sample(held_out, per_class=per_class, seed=args.seed + 1)
    backend = TransformersBackend.from_pretrained(args.model)
    selector = ExampleSelector(pool["label"], len(names), k=args.k, strategy="uniform")
    continuations = template.scoring_parts(spec, names, "")[1]
    cf_contexts = [template.scoring_parts(spec, names, text)[0] for text in CONTENT_FREE_TEXTS]
    raw, calibrated, priors, gold = [], [], [], []
    start = time.perf_counter()
    for i, row in enumerate(tqdm(held_out, desc="scoring rows")):
        examples = [(pool[j]["text"], pool[j]["label"]) for j in selector.select(row_rng(args.seed, i))]
        prompt = template.build(spec, names, examples)
        contexts = [template.scoring_parts(spec, names, row["text"])[0], *cf_contexts]
        scores = backend.score([prompt] * len(contexts), contexts, continuations)
        p = normalize_logprobs(scores[0])
        prior = content_free_prior(scores[1:])
        raw.append(p)
        priors.append(prior)
        calibrated.append(calibrate(p, prior))
        gold.append(row["label"])
    seconds = time.perf_counter() - start
    raw, calibrated, priors, gold = map(np.asarray, (raw, calibrated, priors, gold))
    result = {
        "task": args.task, "split": args.split, "model": args.model, "rows": len(gold), "k": args.k,
        "pool_per_class": args.pool_per_class, "seed": args.seed, "label_names": names,
        "content_free_texts": list(CONTENT_FREE_TEXTS), "seconds": seconds,
        "mean_prior": priors.mean(0).tolist(),
        "raw": summary(raw, gold, len(names)), "calibrated": summary(calibrated, gold, len(names)),
    }
    print(f"{args.task} {args.split}, {len(gold)} rows, {args.model}, k={args.k}, {seconds:.0f} s")
    print(f"mean content-free prior: {dict(zip(names, np.round(priors.mean(0), 3).tolist(), strict=True))}")
    for name in ("raw", "calibrated"):
        figures = result[name]
        shares = dict(zip(names, np.round(figures["predicted_share"], 3).tolist(), strict=True))
        print(f"{name:>10}: accuracy {figures['accuracy']:.3f}  macro-F1 {figures['macro_f1']:.3f}  "
              f"log p(true) {figures['true_label_log_likelihood']:.3f}  predicted {shares}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
