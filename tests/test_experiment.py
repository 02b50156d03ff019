"""The experiment harness: splits, resume, augmentation caches, hard labels from the soft pass, summary."""

from __future__ import annotations

import json

import pytest
from conftest import ScriptedBackend, make_dataset
from transformers import AutoTokenizer, BertConfig, BertModel

from gpt3mix_hf import experiment
from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.baselines.eda import wordnet_available
from gpt3mix_hf.experiment import (
    ExperimentArguments,
    hard_derivable,
    hard_from_soft,
    load_runs,
    make_split,
    markdown_table,
    run_experiment,
    run_path,
    write_summary,
)
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.spec import TaskSpec

NAMES = ["negative", "positive"]
POSITIVE = ["a gripping , funny film .", "warm and wise .", "the best film this year .", "beautifully acted .",
            "a moving story , well told .", "sharp , witty and fresh .", "a joy from start to finish .",
            "smart and tender .", "a lovely surprise .", "great fun for everyone ."]
NEGATIVE = ["dull and lifeless .", "far too long .", "an embarrassment .", "i wanted my hours back .",
            "a tired , empty mess .", "badly written and worse acted .", "boring from the first scene .",
            "a waste of a fine cast .", "clumsy and loud .", "nothing works here ."]


def toy_split(repeat: int = 1):
    texts = [t for pair in zip(POSITIVE, NEGATIVE, strict=True) for t in pair] * repeat
    labels = [1, 0] * (len(texts) // 2)
    return make_dataset(texts, labels, NAMES)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> str:
    """A 1-layer random BERT with the real all-MiniLM-L6-v2 tokenizer (a fresh head is added by training)."""
    folder = tmp_path_factory.mktemp("tiny-classifier")
    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier("minilm"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def tiny_args(tmp_path, tiny_classifier, **overrides) -> ExperimentArguments:
    settings = {
        "dataset": "sst2", "output_dir": str(tmp_path / "sweep"), "levels": [0.1], "data_seeds": 1,
        "methods": ["noaug", "gpt3mix-soft", "gpt3mix-hard", "bt"], "classifier": tiny_classifier,
        "bt_models": ["/no/such/opus-mt-en-de", "/no/such/opus-mt-de-en"], "num_train_epochs": 1,
        "early_stopping_patience": 1, "per_device_train_batch_size": 8, "max_new_tokens": 16,
        "disable_progress_bars": True,
    }
    return ExperimentArguments(**{**settings, **overrides})


def test_sweep_writes_runs_and_resumes(tmp_path, tiny_classifier, monkeypatch):
    train, test = toy_split(repeat=3), toy_split()
    args = tiny_args(tmp_path, tiny_classifier)
    backend = ScriptedBackend(parse_rate=0.8)
    records = run_experiment(args, train, test, backend=backend)
    assert len(records) == 4
    by_method = {r["method"]: r for r in records}
    for method in ("noaug", "gpt3mix-soft", "gpt3mix-hard"):
        record = by_method[method]
        assert record["status"] == "ok"
        assert 0 <= record["accuracy"] <= 1 and 0 <= record["macro_f1"] <= 1
        assert record["num_real"] == 6 and record["num_test"] == len(test)
        assert record["timings"]["train_seconds"] > 0
        assert run_path(args.output_dir, method, 0.1, 0, 0).exists()
    assert by_method["noaug"]["num_synthetic"] == 0
    assert by_method["gpt3mix-soft"]["num_synthetic"] > 0
    # One generation pass serves both label modes.
    assert by_method["gpt3mix-hard"]["num_synthetic"] == by_method["gpt3mix-soft"]["num_synthetic"]
    generation_calls = backend.calls
    assert by_method["bt"]["status"] == "unavailable" and "OSError" in by_method["bt"]["reason"]

    # Again: every finished run is skipped (no training, no generation); unavailable BT is checked again.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiment, "_train_and_evaluate", no_training)
    again = run_experiment(args, train, test, backend=backend)
    assert backend.calls == generation_calls
    assert {r["method"]: r.get("accuracy") for r in again} == {r["method"]: r.get("accuracy") for r in records}

    # A larger sweep only adds runs; a half-written (interrupted) run file does not count as finished.
    path = run_path(args.output_dir, "noaug", 0.1, 0, 0)
    path.write_text('{"status": "ok", "accur')
    trained = []
    monkeypatch.setattr(experiment, "_train_and_evaluate", lambda *a, **k: trained.append(1) or {
        "accuracy": 0.5, "macro_f1": 0.5, "best_validation_accuracy": 0.5, "epochs": 1, "steps": 1,
        "train_seconds": 1.0, "eval_seconds": 1.0})
    run_experiment(tiny_args(tmp_path, tiny_classifier, data_seeds=2), train, test, backend=backend)
    assert len(trained) == 1 + 3  # the broken run, and the three trainable runs of the new data seed
    assert json.loads(path.read_text())["status"] == "ok"


def test_summary_table_and_plot(tmp_path, tiny_classifier, monkeypatch):
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "bt"], data_seeds=2)
    scores = iter([0.6, 0.8])
    monkeypatch.setattr(experiment, "_train_and_evaluate", lambda *a, **k: {
        "accuracy": next(scores), "macro_f1": 0.5, "best_validation_accuracy": 0.5, "epochs": 1, "steps": 1,
        "train_seconds": 1.0, "eval_seconds": 1.0})
    run_experiment(args, toy_split(repeat=3), toy_split())
    table = markdown_table(load_runs(args.output_dir))
    assert "| NoAug | 70.0 ± 14.1 (2) |" in table
    assert "| BT | n/a (no translation model offline) |" in table
    text, plot_path = write_summary(args.output_dir)
    assert plot_path.exists() and plot_path.stat().st_size > 1000
    assert (tmp_path / "sweep" / "sst2_table.md").read_text() == text


@pytest.mark.skipif(not wordnet_available(), reason="WordNet is not set up: run scripts/setup_wordnet.sh")
def test_eda_method_runs(tmp_path, tiny_classifier):
    args = tiny_args(tmp_path, tiny_classifier, methods=["eda"], ratio=2)
    (record,) = run_experiment(args, toy_split(repeat=3), toy_split())
    assert record["status"] == "ok" and record["num_synthetic"] == 2 * record["num_real"]


def test_hard_labels_from_the_soft_pass_equal_a_hard_pass(toy_sentiment):
    spec = TaskSpec.from_preset("sst2")
    backend = ScriptedBackend(parse_rate=0.6)
    soft = GPT3MixAugmenter(backend, toy_sentiment, spec, ratio=3, label_mode="soft", seed=5)
    soft_rows = soft.augment()
    assert hard_derivable(soft, soft_rows)
    hard = GPT3MixAugmenter(backend, toy_sentiment, spec, ratio=3, label_mode="hard", seed=5).augment()
    derived = hard_from_soft(soft_rows)
    assert derived.to_dict() == hard.select_columns(["text", "label", "soft_labels"]).to_dict()
    # The soft pass's labels differ from the written ones somewhere, or the test would show nothing.
    assert soft_rows["label"] != soft_rows["written_label"] or soft_rows["soft_labels"] != derived["soft_labels"]


def test_hard_not_derivable_when_scoring_failed(toy_sentiment):
    class NoScores(ScriptedBackend):
        def score(self, prompts, contexts, continuations):
            return [[float("-inf")] * len(continuations) for _ in contexts]

    soft = GPT3MixAugmenter(NoScores(parse_rate=1.0), toy_sentiment, TaskSpec.from_preset("sst2"), max_attempts=1)
    rows = soft.augment()
    assert len(rows) == 0 and not hard_derivable(soft, rows)


def test_split_is_class_balanced_and_disjoint():
    train = toy_split(repeat=3)
    split = make_split(train, 0.1, 0, seed=3)
    assert sorted(split.train["label"]) == [0, 0, 0, 1, 1, 1]
    assert sorted(split.validation["label"]) == [0, 0, 0, 1, 1, 1]
    # Same seed, same rows; the validation rows are not training rows (texts repeat in the toy data, so
    # compare the row positions through a numbered copy).
    numbered = train.add_column("text_id", [f"{i}:{t}" for i, t in enumerate(train["text"])])
    numbered = numbered.remove_columns("text").rename_column("text_id", "text")
    again = make_split(numbered, 0.1, 0, seed=3)
    assert not set(again.train["text"]) & set(again.validation["text"])
    assert [t.split(":", 1)[1] for t in again.train["text"]] == list(split.train["text"])


def test_bad_inputs(tmp_path, tiny_classifier):
    train = toy_split(repeat=3)
    only_positive = make_dataset(POSITIVE, [1] * len(POSITIVE), NAMES)
    with pytest.raises(ValueError, match="negative"):
        make_split(only_positive, 0.1, 0, seed=0)
    # 60 rows, level 0.5: 15 per class for training leaves 15, fewer than the 20 validation rows asked for.
    with pytest.raises(ValueError, match="validation split would be empty or short"):
        make_split(train, 0.5, 0, seed=0, validation_per_class=20)
    with pytest.raises(ValueError, match="validation split would be empty"):
        make_split(train, 1.0, 0, seed=0)
    with pytest.raises(ValueError, match="empty validation split"):
        tiny_args(tmp_path, tiny_classifier, validation_per_class=0)
    with pytest.raises(ValueError, match="unknown"):
        tiny_args(tmp_path, tiny_classifier, methods=["mixup"])
    with pytest.raises(ValueError, match="fractions"):
        tiny_args(tmp_path, tiny_classifier, levels=[0.0])
    with pytest.raises(ValueError, match="split is empty"):
        run_experiment(tiny_args(tmp_path, tiny_classifier), train, train.select([]))


def test_cli_command(tmp_path, tiny_classifier, monkeypatch, capsys):
    from gpt3mix_hf.cli import main

    monkeypatch.setattr(experiment, "_train_and_evaluate", lambda *a, **k: {
        "accuracy": 0.75, "macro_f1": 0.7, "best_validation_accuracy": 0.5, "epochs": 1, "steps": 1,
        "train_seconds": 1.0, "eval_seconds": 1.0})
    output_dir = tmp_path / "cli"
    run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug"], output_dir=str(output_dir)),
                   toy_split(repeat=3), toy_split())
    assert main(["experiment", "--output_dir", str(output_dir), "--summarize_only", "--metric", "macro_f1"]) == 0
    printed = capsys.readouterr().out
    assert "| NoAug | 75.0 (1) |" in printed and "| NoAug | 70.0 (1) |" in printed
    assert (output_dir / "sst2_plot.png").exists()


def test_parallel_processes_and_uncached_generation(tmp_path, tiny_classifier, monkeypatch):
    import os

    trained = []
    monkeypatch.setattr(experiment, "_train_and_evaluate", lambda *a, **k: trained.append(1) or {
        "accuracy": 0.5, "macro_f1": 0.5, "best_validation_accuracy": 0.5, "epochs": 1, "steps": 1,
        "train_seconds": 1.0, "eval_seconds": 1.0})
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "gpt3mix-soft"], data_seeds=2, skip_uncached=True)
    held = run_path(args.output_dir, "noaug", 0.1, 0, 0).with_suffix(".lock")
    stale = run_path(args.output_dir, "noaug", 0.1, 1, 0).with_suffix(".lock")
    held.parent.mkdir(parents=True)
    held.write_text(str(os.getppid()))  # a live process holds this run
    stale.write_text("999999999")  # a process that is gone: its run is taken over
    records = run_experiment(args, toy_split(repeat=3), toy_split())
    assert [(r["method"], r["data_index"]) for r in records] == [("noaug", 1)]
    assert not run_path(args.output_dir, "noaug", 0.1, 0, 0).exists() and held.exists() and not stale.exists()
    # GPT3Mix runs wait for their generation (skip_uncached): no JSON, no generation.
    assert not run_path(args.output_dir, "gpt3mix-soft", 0.1, 0, 0).exists()
    assert not (tmp_path / "sweep" / "augmentations").exists()
