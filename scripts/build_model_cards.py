"""Render the cards of the reference artifacts (the SST-2 GPT3Mix dataset and the classifier trained on it) into
model_cards/, from the artifact folders of a real run.

    python scripts/build_model_cards.py --dataset_dir outputs/demo --classifier_dir outputs/demo/classifier-gpt3mix

`--dataset_dir` holds the augmented dataset (saved with `save_to_disk`, either the folder itself or its
`synthetic/` sub-folder, with `real/` beside it when the real rows were saved) and `gpt3mix_config.json`.
`--classifier_dir` holds a classifier saved with `save_pretrained` (model and tokenizer), and what the Trainer
wrote beside it when it did: `trainer_state.json` (training log), `training_args.bin` or `gpt3mix_training.json`,
`test_results.json` / `eval_results.json` (`Trainer.save_metrics`).

With `--make_reference DIR`, the script first makes such artifacts itself with a small real run on the embedded
default models (SmolLM2-135M-Instruct augments a class-balanced SST-2 sample, all-MiniLM-L6-v2 is trained on
real + synthetic rows with GPT3MixTrainer and evaluated on the SST-2 test set), then renders their cards. Every
number in the cards comes from the run; nothing is typed in.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gpt3mix_hf import GPT3MixConfig
from gpt3mix_hf.hub.push import push_augmented_dataset, push_classifier
from gpt3mix_hf.state import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
# Placeholders until the artifacts are published: pass the real repository ids with --dataset_repo/--classifier_repo.
DATASET_REPO = "your-namespace/sst2-gpt3mix-smollm2"
CLASSIFIER_REPO = "your-namespace/minilm-sst2-gpt3mix"


def make_reference(output_dir: Path, data_dir: str, per_class: int, ratio: float, epochs: int, seed: int) -> None:
    """A small real run: augment a class-balanced SST-2 sample with the embedded LM, train and test a classifier."""
    from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend, concatenate_with_real
    from gpt3mix_hf.data import BENCHMARKS, class_balanced_sample, load_benchmark
    from gpt3mix_hf.hub.cards.training_record import TRAINING_RECORD_NAME, read_training_record
    from gpt3mix_hf.provenance import library_versions
    from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
    from gpt3mix_hf.training.classification import evaluate_classifier, train_classifier

    output_dir.mkdir(parents=True, exist_ok=True)
    data = {"dataset": "sst2", "data_dir": data_dir, "split": "train", "sample_per_class": per_class,
            "sample_seed": seed}
    train = load_benchmark("sst2", "train", data_dir=data_dir)
    train = class_balanced_sample(train, per_class=per_class, seed=seed)
    validation = load_benchmark("sst2", "validation", data_dir=data_dir)
    validation = class_balanced_sample(validation, per_class=50, seed=seed)
    test = load_benchmark("sst2", "test", data_dir=data_dir)

    start = time.perf_counter()
    backend = TransformersBackend.from_pretrained("smollm2", batch_size=8)
    sampling = SamplingConfig(max_new_tokens=48)
    spec = TaskSpec.from_preset("sst2")
    augmenter = GPT3MixAugmenter(backend, train, spec, ratio=ratio, seed=seed, sampling=sampling)
    synthetic = augmenter.augment(batch_size=16)
    print(f"augmentation: {augmenter.report.rows_written} rows in {time.perf_counter() - start:.0f} s")
    synthetic.save_to_disk(output_dir / "synthetic")
    train.save_to_disk(output_dir / "real")
    GPT3MixConfig.from_augmenter(augmenter, train, data=data, map_batch_size=16).save_pretrained(output_dir)

    args = GPT3MixTrainingArguments(
        output_dir=str(output_dir / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        seed=seed,
        report_to="none",
        early_stopping_patience=None,
        save_strategy="no",
        load_best_model_at_end=False,
        logging_strategy="epoch",
        disable_tqdm=True,
    )
    trainer = train_classifier(concatenate_with_real(train, synthetic), validation, "minilm", args, max_length=64)
    test_metrics = evaluate_classifier(trainer, test, max_length=64)
    print(f"test: {test_metrics}")
    classifier_dir = output_dir / "classifier"
    trainer.save_model(str(classifier_dir))  # with the training_args.bin the card reads
    trainer.state.save_to_json(str(classifier_dir / "trainer_state.json"))
    write_json(classifier_dir / "test_results.json", test_metrics)
    # What this run evaluated on, beside the hyper-parameters and loss read from its arguments.
    record = read_training_record(classifier_dir)
    record.update(eval_dataset_id=BENCHMARKS["sst2"].hub_path, eval_dataset_name="sst2", eval_split="test",
                  versions=library_versions())
    write_json(classifier_dir / TRAINING_RECORD_NAME, record)


def load_dataset_artifact(dataset_dir: Path):
    """The dataset to publish (real + synthetic rows when `real/` was saved beside `synthetic/`) and its
    provenance file."""
    from datasets import load_from_disk

    from gpt3mix_hf import concatenate_with_real

    synthetic_dir = dataset_dir / "synthetic" if (dataset_dir / "synthetic").is_dir() else dataset_dir
    synthetic = load_from_disk(str(synthetic_dir))
    candidates = [folder / "gpt3mix_config.json" for folder in (synthetic_dir, dataset_dir, dataset_dir.parent)]
    config_path = next((path for path in candidates if path.exists()), None)
    if config_path is None:
        raise FileNotFoundError(f"No gpt3mix_config.json in {dataset_dir} or beside it.")
    if (dataset_dir / "real").is_dir():
        # The published training set: the real sample and the synthetic rows, flagged by is_synthetic.
        real = load_from_disk(str(dataset_dir / "real"))
        return concatenate_with_real(real, synthetic), GPT3MixConfig.from_pretrained(config_path)
    return synthetic, GPT3MixConfig.from_pretrained(config_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_dir", type=Path, help="Folder of the augmented dataset and gpt3mix_config.json.")
    parser.add_argument("--classifier_dir", type=Path, help="Folder of the trained classifier.")
    parser.add_argument("--output_dir", type=Path, default=ROOT / "model_cards", help="Where the cards go.")
    parser.add_argument("--make_reference", type=Path, help="Make the artifacts with a small real run here first.")
    # Relative, as `make demo` gives it: the path is recorded in the published provenance file.
    parser.add_argument("--data_dir", default="../shared/data", help="Local benchmark data (run from the repo root).")
    parser.add_argument("--per_class", type=int, default=8, help="Real SST-2 rows per class (small run).")
    parser.add_argument("--ratio", type=float, default=2.0, help="Synthetic rows per real row (small run).")
    parser.add_argument("--epochs", type=int, default=10, help="Classifier epochs (small run).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset_repo", default=DATASET_REPO, help="Repository id shown in the dataset card.")
    parser.add_argument("--classifier_repo", default=CLASSIFIER_REPO, help="Repository id shown in the model card.")
    parser.add_argument("--base_model", default="sentence-transformers/all-MiniLM-L6-v2",
                        help="Hub id of the encoder the classifier was fine-tuned from.")
    args = parser.parse_args()

    if args.make_reference:
        make_reference(args.make_reference, args.data_dir, args.per_class, args.ratio, args.epochs, args.seed)
        args.dataset_dir = args.dataset_dir or args.make_reference
        args.classifier_dir = args.classifier_dir or args.make_reference / "classifier"
    if args.dataset_dir is None or args.classifier_dir is None:
        parser.error("give --dataset_dir and --classifier_dir, or --make_reference DIR")

    dataset, config = load_dataset_artifact(args.dataset_dir)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    # The repository folders are written exactly as they would be uploaded; only their cards are kept. The dataset's
    # licence is "unknown": SST-2's rows come with none stated (the LM's licence covers its outputs only).
    with tempfile.TemporaryDirectory() as preview:
        folder = push_augmented_dataset(
            dataset, args.dataset_repo, provenance=config, local_dir=Path(preview) / "dataset", license="unknown",
            language="en", pretty_name="SST-2 augmented with GPT3Mix (SmolLM2-135M-Instruct)",
        )
        write_text(args.output_dir / "sst2-gpt3mix-dataset.md", (folder / "README.md").read_text())
        write_text(args.output_dir / "gpt3mix_config.json", (folder / "gpt3mix_config.json").read_text())

        folder = push_classifier(
            args.classifier_dir, args.classifier_repo, provenance=config, dataset_id=args.dataset_repo,
            local_dir=Path(preview) / "classifier", license="apache-2.0", language="en", base_model=args.base_model,
        )
        write_text(args.output_dir / "minilm-sst2-gpt3mix-classifier.md", (folder / "README.md").read_text())
    print(f"cards written to {args.output_dir}")


if __name__ == "__main__":
    main()
