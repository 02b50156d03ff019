"""The experiment harness: data from any source, splits, matched seeds, one generation for every GPT3Mix method,
resume and shared grids, and the paired summary."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ScriptedBackend, make_dataset
from datasets import ClassLabel, Dataset, Features, Sequence, Value, load_from_disk
from filelock import FileLock
from transformers import AutoTokenizer, BertConfig, BertModel

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.experiment import (
    ExperimentArguments,
    ProtocolAugmenterConfig,
    derive_method_rows,
    export_synthetic,
    held_out_seed,
    held_out_validation,
    load_runs,
    load_task_data,
    make_split,
    markdown_table,
    paired_difference,
    run_experiment,
    run_path,
    summarize,
    sweep,
    write_summary,
)
from gpt3mix_hf.experiment.baselines.eda import wordnet_available
from gpt3mix_hf.experiment.records import finished_record
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.spec import TaskSpec

NAMES = ["negative", "positive"]
POSITIVE = ["a gripping , funny film .", "warm and wise .", "the best film this year .", "beautifully acted .",
            "a moving story , well told .", "sharp , witty and fresh .", "a joy from start to finish .",
            "smart and tender .", "a lovely surprise .", "great fun for everyone ."]
NEGATIVE = ["dull and lifeless .", "far too long .", "an embarrassment .", "i wanted my hours back .",
            "a tired , empty mess .", "badly written and worse acted .", "boring from the first scene .",
            "a waste of a fine cast .", "clumsy and loud .", "nothing works here ."]
# A small labelled dataset that is none of the five benchmarks: product reviews, labels "bad"/"good" in a
# column "stars", texts in "review".
GOOD = ["works great and charges fast", "sturdy , light and cheap", "best kettle i have owned",
        "arrived early , love it", "does exactly what it says",
        "great value for the money", "quiet and powerful", "my kids love this toy"]
BAD = ["broke after two days", "the battery dies in an hour", "cheap plastic , returned it", "never arrived",
       "stopped working in a week", "loud and slow", "the lid leaks everywhere", "smells of burnt plastic"]


def toy_split(repeat: int = 1):
    texts = [t for pair in zip(POSITIVE, NEGATIVE, strict=True) for t in pair] * repeat
    labels = [1, 0] * (len(texts) // 2)
    return make_dataset(texts, labels, NAMES)


def write_reviews(folder, test_labels=("bad", "good")):
    """`folder/train.jsonl` (32 rows) and `folder/test.jsonl` (8 rows) of the product-review dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"review": f"{text} ({i})", "stars": label} for i in range(2)
            for label, texts in (("good", GOOD), ("bad", BAD)) for text in texts]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    test = [{"review": text, "stars": test_labels[i % 2]} for i, text in enumerate(GOOD[:4] + BAD[:4])]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in test))
    return folder


def build_tiny_classifier(folder) -> str:
    """A 1-layer random BERT with the real all-MiniLM-L6-v2 tokenizer (a fresh head is added by training)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier("minilm"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> str:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


def tiny_args(tmp_path, tiny_classifier, **overrides) -> ExperimentArguments:
    settings = {
        "dataset": "sst2", "output_dir": str(tmp_path / "sweep"), "levels": [0.1], "data_seeds": 1, "repeats": 1,
        "methods": ["noaug", "gpt3mix-soft", "gpt3mix-hard", "gpt3mix-written", "bt"], "classifier": tiny_classifier,
        "bt_models": ["/no/such/opus-mt-en-de", "/no/such/opus-mt-de-en"], "num_train_epochs": 1,
        "early_stopping_patience": 1, "per_device_train_batch_size": 8, "disable_tqdm": True,
        # The toy data has 10-30 rows per class, fewer than the default held-out set's 50 (tested on its own below).
        "validation_set": "per-sample",
    }
    return ExperimentArguments(**{**settings, **overrides})


def fake_training(scores=None, log=None):
    """Stands in for classifier training where a test is about the grid: the accuracy of each call in turn."""
    scores = iter(scores) if scores is not None else None

    def train_and_evaluate(args, train, validation, test, seed, work_dir):
        if log is not None:
            log.append((len(train), seed))
        accuracy = next(scores) if scores is not None else 0.5
        return {"accuracy": accuracy, "macro_f1": accuracy, "best_validation_accuracy": 0.5, "epochs": 1, "steps": 1,
                "train_seconds": 1.0, "eval_seconds": 1.0}

    return train_and_evaluate


@pytest.mark.slow  # a whole sweep, classifiers trained for real: tens of seconds on 2 cores
def test_sweep_on_a_users_folder_dataset(tmp_path, tiny_classifier, monkeypatch):
    """A tiny real sweep (classifier trained for real) on a dataset that is none of the five benchmarks."""
    folder = write_reviews(tmp_path / "reviews")
    args = tiny_args(tmp_path, tiny_classifier, dataset=str(folder), text_column="review", label_column="stars",
                     text_type="product review", label_type="sentiment", verbalizer=["bad=negative", "good=positive"],
                     levels=[0.25], data_seeds=2)
    backend = ScriptedBackend(parse_rate=0.8)
    records = run_experiment(args, backend=backend)
    ok = [r for r in records if r["status"] == "ok"]
    assert {r["method"] for r in ok} == {"noaug", "gpt3mix-soft", "gpt3mix-hard", "gpt3mix-written"}
    assert all(r["dataset"] == "reviews" and r["num_real"] == 8 and r["num_test"] == 8 for r in ok)
    assert all(0 <= r["accuracy"] <= 1 and r["steps"] >= 1 for r in ok)
    # Matched seeds: every method trains with the same seed on the same sub-sample.
    for index in (0, 1):
        runs = [r for r in ok if r["data_index"] == index]
        assert len({r["train_seed"] for r in runs}) == 1 and len({r["data_seed"] for r in runs}) == 1
    # One generation per sub-sample serves every GPT3Mix method.
    for index in (0, 1):
        counts = {r["num_synthetic"] for r in ok if r["data_index"] == index and r["method"] != "noaug"}
        assert len(counts) == 1 and counts.pop() > 0
    assert len(list((tmp_path / "sweep" / "augmentations" / "gpt3mix").glob("level=0.25/data*/meta.json"))) == 2
    settings = json.loads((tmp_path / "sweep" / "experiment.json").read_text())
    assert settings["spec"]["verbalizer"] == {"bad": "negative", "good": "positive"}
    assert settings["spec"]["text_type"] == "product review"
    bt = [r for r in records if r["method"] == "bt"]
    assert bt and all(r["status"] == "unavailable" and "OSError" in r["reason"] for r in bt)

    # Again: finished runs are skipped, with no generation and no training.
    calls = backend.calls

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(sweep, "_train_and_evaluate", no_training)
    again = run_experiment(args, backend=backend)
    assert backend.calls == calls
    assert sorted((r["method"], r["data_index"], r.get("accuracy")) for r in again if r["status"] == "ok") == sorted(
        (r["method"], r["data_index"], r["accuracy"]) for r in ok)


def test_calibrated_and_paper_hard_labels_come_from_one_calibrated_generation(tmp_path, tiny_classifier,
                                                                             monkeypatch):
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training())
    methods = ["gpt3mix-soft", "gpt3mix-calibrated", "gpt3mix-hard", "gpt3mix-written"]
    args = tiny_args(tmp_path, tiny_classifier, methods=methods)
    backend = ScriptedBackend(parse_rate=0.8)
    records = run_experiment(args, toy_split(repeat=3), toy_split(), backend=backend)
    assert [r["method"] for r in records] == methods and len({r["num_synthetic"] for r in records}) == 1
    (folder,) = (tmp_path / "sweep" / "augmentations" / "gpt3mix").glob("level=0.1/data0")
    assert not folder.with_name("data0.shards").exists()  # the resume shards go once the rows are saved
    rows = load_from_disk(folder / "data")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["augmenter"]["augmenter"]["calibrate"] and meta["augmenter"]["augmenter"]["selection"] == "uniform"
    soft = derive_method_rows(rows, "gpt3mix-soft")["soft_labels"]
    calibrated = derive_method_rows(rows, "gpt3mix-calibrated")["soft_labels"]
    assert not np.allclose(soft, calibrated)  # the prior was divided out
    # Calibration by hand: the raw distribution over the recorded prior, renormalised.
    by_hand = np.asarray(soft) / np.asarray(rows["label_prior"])
    assert np.allclose(calibrated, by_hand / by_hand.sum(axis=1, keepdims=True), atol=1e-5)


def test_resume_reruns_a_cut_off_record_and_grows_the_grid(tmp_path, tiny_classifier, monkeypatch, caplog):
    trained = []
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training(log=trained))
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "gpt3mix-soft"], repeats=2)
    backend = ScriptedBackend(parse_rate=0.8)
    run_experiment(args, toy_split(repeat=3), toy_split(), backend=backend)
    assert len(trained) == 4
    # Both repeats of a method train on the same rows with different seeds; both methods share the two seeds.
    assert trained[0][1] != trained[1][1] and {s for _, s in trained[:2]} == {s for _, s in trained[2:]}
    path = run_path(args.output_dir, "noaug", 0.1, 0, 0)
    path.write_text('{"status": "ok", "accur')
    trained.clear()
    with caplog.at_level(logging.WARNING):
        run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug", "gpt3mix-soft"], repeats=2,
                                 data_seeds=2), toy_split(repeat=3), toy_split(), backend=backend)
    # Said once, though the settings check reads the record too.
    assert len([r for r in caplog.records if "Running it again" in r.getMessage()]) == 1
    assert len(trained) == 1 + 4  # the cut-off run, and the four runs of the new data seed
    assert json.loads(path.read_text())["status"] == "ok"


def test_resume_refuses_other_settings_but_grows_the_grid(tmp_path, tiny_classifier, monkeypatch):
    trained = []
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training(log=trained))
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug"])
    run_experiment(args, toy_split(repeat=3), toy_split())
    with pytest.raises(ValueError, match=r"other settings .*learning_rate: 0.0001 there, 0.0003 now.*--output_dir"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug"], learning_rate=3e-4),
                       toy_split(repeat=3), toy_split())
    run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug-repeated"]), toy_split(repeat=3),
                   toy_split())  # a noaug-repeated run at ratio 1
    with pytest.raises(ValueError, match=r"augmenter.ratio: 1.0 there, 2.0 now"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug-repeated"]), toy_split(repeat=3),
                       toy_split(), settings=ProtocolAugmenterConfig(ratio=2))
    assert len(trained) == 2
    # Neither run depends on the LM; more seeds, levels and methods only add runs.
    run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["noaug"], lm="another-lm", data_seeds=2,
                             levels=[0.1, 0.2]), toy_split(repeat=3), toy_split())
    assert len(trained) == 2 + 3
    experiment = json.loads((tmp_path / "sweep" / "experiment.json").read_text())
    assert experiment["levels"] == [0.1, 0.2] and experiment["data_seeds"] == 2
    assert experiment["methods"] == ["noaug", "noaug-repeated"]


def test_resume_with_other_label_modes_refuses_to_make_the_rows_runs_were_trained_on_again(
        tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training())
    backend = ScriptedBackend(parse_rate=0.8)
    run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["gpt3mix-soft", "gpt3mix-debiased"]),
                   toy_split(repeat=3), toy_split(), backend=backend)
    (folder,) = (tmp_path / "sweep" / "augmentations" / "gpt3mix").glob("level=0.1/data0")
    made = (folder / "meta.json").read_text()
    # Without gpt3mix-debiased the generation would be a soft-mode one: other rows under finished runs.
    with pytest.raises(ValueError, match=r"label_mode='debiased'.*2 finished runs.*--methods the folder was made"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["gpt3mix-soft", "gpt3mix-hard"]),
                       toy_split(repeat=3), toy_split(), backend=backend)
    assert (folder / "meta.json").read_text() == made
    # With no finished run on them, rows of other settings are made again, as before.
    for path in (tmp_path / "sweep" / "runs").rglob("*.json"):
        path.unlink()
    run_experiment(tiny_args(tmp_path, tiny_classifier, methods=["gpt3mix-soft", "gpt3mix-hard"]),
                   toy_split(repeat=3), toy_split(), backend=backend)
    assert json.loads((folder / "meta.json").read_text())["config"]["augmenter"]["label_mode"] == "soft"


def test_a_run_locked_by_another_process_is_left_to_it(tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training())
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "gpt3mix-soft"], data_seeds=2, skip_uncached=True)
    held = run_path(args.output_dir, "noaug", 0.1, 0, 0)
    held.parent.mkdir(parents=True)
    # A lock taken through another open file description, as another process would hold it.
    with FileLock(str(held.with_suffix(".lock"))):
        records = run_experiment(args, toy_split(repeat=3), toy_split())
    assert [(r["method"], r["data_index"]) for r in records] == [("noaug", 1)]
    assert not held.exists()
    # GPT3Mix runs wait for their generation (skip_uncached): no JSON, no generation.
    assert not run_path(args.output_dir, "gpt3mix-soft", 0.1, 0, 0).exists()
    assert not (tmp_path / "sweep" / "augmentations").exists()


def generation(kind: str) -> Dataset:
    """Rows as a soft-mode augmenter writes them: `calibrated` (calibrate=True: raw distribution and prior kept),
    `uncalibrated` (the raw distribution repeated, no prior) or `plain` (an augmenter without calibration)."""
    columns = {
        "text": ["a", "b", "c"],
        "label": [1, 0, 0],
        "soft_labels": [[0.3, 0.7], [0.6, 0.4], [0.5, 0.5]],
        "written_label": [0, 0, 1],
    }
    features = {"text": Value("string"), "label": ClassLabel(names=NAMES), "soft_labels": Sequence(Value("float32")),
                "written_label": ClassLabel(names=NAMES)}
    if kind != "plain":
        calibrated = kind == "calibrated"
        columns["uncalibrated_soft_labels"] = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]] if calibrated else columns[
            "soft_labels"]
        columns["label_prior"] = [[0.7, 0.3]] * 3 if calibrated else [[]] * 3
        features["uncalibrated_soft_labels"] = Sequence(Value("float32"))
        features["label_prior"] = Sequence(Value("float32"))
    return Dataset.from_dict(columns, features=Features(features))


def test_bf16_trains_on_a_machine_without_a_gpu(tmp_path, tiny_classifier, monkeypatch):
    # transformers refuses bf16 without a GPU unless the run says it is on the CPU; the harness says so. (On a GPU
    # machine too: the test sees none.)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug"], bf16=True)
    (record,) = run_experiment(args, toy_split(repeat=3), toy_split())
    assert record["status"] == "ok" and 0 <= record["accuracy"] <= 1 and record["steps"] >= 1


def test_debiased_method_shares_the_generation_of_the_other_gpt3mix_methods(tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training())
    methods = ["gpt3mix-soft", "gpt3mix-calibrated", "gpt3mix-debiased"]
    args = tiny_args(tmp_path, tiny_classifier, methods=methods)
    records = run_experiment(args, toy_split(repeat=3), toy_split(), backend=ScriptedBackend(parse_rate=0.8))
    assert [r["method"] for r in records] == methods and len({r["num_synthetic"] for r in records}) == 1
    (folder,) = (tmp_path / "sweep" / "augmentations" / "gpt3mix").glob("level=0.1/data0")
    assert not folder.with_name("data0.shards").exists()  # the resume shards go once the rows are saved
    rows = load_from_disk(folder / "data")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["augmenter"]["augmenter"]["label_mode"] == "debiased" and meta["augmenter"]["augmenter"]["calibrate"]
    assert meta["augmenter"]["augmenter"]["debias_orders"] == meta["config"]["augmenter"]["debias_orders"] == 2
    soft = derive_method_rows(rows, "gpt3mix-soft")["soft_labels"]
    assert np.allclose(soft, rows["uncalibrated_soft_labels"])
    # Calibrated from the raw distributions and the content-free prior, not from the debiased soft_labels.
    by_hand = np.asarray(rows["uncalibrated_soft_labels"]) / np.asarray(rows["label_prior"])
    assert np.allclose(derive_method_rows(rows, "gpt3mix-calibrated")["soft_labels"],
                       by_hand / by_hand.sum(axis=1, keepdims=True), atol=1e-5)
    debiased = derive_method_rows(rows, "gpt3mix-debiased")
    by_hand = np.asarray(rows["order_averaged_soft_labels"]) / np.asarray(rows["debias_prior"])
    assert np.allclose(debiased["soft_labels"], by_hand / by_hand.sum(axis=1, keepdims=True), atol=1e-5)
    assert debiased["label"] == np.argmax(by_hand, axis=1).tolist()
    assert not np.allclose(debiased["soft_labels"], soft)
    with pytest.raises(ValueError, match="label_mode='debiased'"):
        derive_method_rows(generation("calibrated"), "gpt3mix-debiased")


def test_every_gpt3mix_method_from_one_calibrated_generation():
    rows = generation("calibrated")
    soft = derive_method_rows(rows, "gpt3mix-soft")
    assert np.allclose(soft["soft_labels"], rows["uncalibrated_soft_labels"]) and soft["label"] == [0, 0, 1]
    calibrated = derive_method_rows(rows, "gpt3mix-calibrated")
    assert np.allclose(calibrated["soft_labels"], rows["soft_labels"]) and calibrated["label"] == [1, 0, 0]
    hard = derive_method_rows(rows, "gpt3mix-hard")
    assert hard["soft_labels"] == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]] and hard["label"] == [0, 0, 1]
    written = derive_method_rows(rows, "gpt3mix-written")
    assert written["soft_labels"] == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]] and written["label"] == [0, 0, 1]
    for derived in (soft, calibrated, hard, written):
        assert derived["text"] == rows["text"] and derived.column_names == ["text", "label", "soft_labels"]


@pytest.mark.parametrize("kind", ["uncalibrated", "plain"])
def test_uncalibrated_generation_serves_soft_and_hard_but_not_calibrated(kind):
    rows = generation(kind)
    assert np.allclose(derive_method_rows(rows, "gpt3mix-soft")["soft_labels"], rows["soft_labels"])
    assert derive_method_rows(rows, "gpt3mix-hard")["label"] == [1, 0, 0]
    with pytest.raises(ValueError, match="calibrate=True"):
        derive_method_rows(rows, "gpt3mix-calibrated")


def test_hard_labels_are_the_argmax_of_a_real_soft_pass(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.7), toy_sentiment, TaskSpec.from_preset("sst2"),
                                 ratio=3, seed=5)
    rows = augmenter.augment()
    hard = derive_method_rows(rows, "gpt3mix-hard")
    assert hard["label"] == [int(np.argmax(row)) for row in rows["soft_labels"]]
    written = derive_method_rows(rows, "gpt3mix-written")
    assert written["label"] == rows["written_label"]
    # The scripted LM's written label and its label distribution disagree somewhere, or this shows nothing.
    assert hard["label"] != written["label"]


def record(method, index, repeat, accuracy, level=0.01):
    return {"dataset": "toy", "method": method, "level": level, "data_index": index, "repeat": repeat,
            "status": "ok", "accuracy": accuracy, "macro_f1": accuracy}


def test_paired_difference_and_its_t_interval():
    result = paired_difference([0.5, 0.7, 0.9], [0.4, 0.5, 0.6])  # differences 0.1, 0.2, 0.3
    assert math.isclose(result["mean"], 0.2)
    # Student t, 2 degrees of freedom, 97.5 % quantile: 4.302653 (statistical tables); sd of differences 0.1.
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert math.isclose(result["low"], 0.2 - half, rel_tol=1e-5) and math.isclose(result["high"], 0.2 + half,
                                                                                  rel_tol=1e-5)
    one = paired_difference([0.5], [0.4])
    assert math.isclose(one["mean"], 0.1) and math.isnan(one["low"]) and one["n"] == 1


def test_summary_compares_matched_runs_only(tmp_path):
    records = [record("noaug", i, r, 0.60 + 0.01 * i) for i in range(3) for r in range(2)]
    records += [record("gpt3mix-soft", i, r, 0.65 + 0.01 * i) for i in range(3) for r in range(2)]
    # EDA lacks one (data seed, repeat) pair, as a sweep cut off half-way through a seed leaves it.
    records += [record("eda", i, r, 0.9) for i in range(3) for r in range(2) if (i, r) != (2, 1)]
    # Hard has an extra data seed that no other method has.
    records += [record("gpt3mix-hard", i, r, 0.55 + 0.01 * i) for i in range(4) for r in range(2)]
    summary = summarize(records)[0.01]
    # Every cell is on the 5 pairs all four methods finished: none is dropped, none on another seed set.
    assert summary["reference"] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert summary["left_out"] == {"noaug": [(3, 0), (3, 1)], "eda": [(2, 1), (3, 0), (3, 1)],
                                   "gpt3mix-soft": [(3, 0), (3, 1)]}
    assert {method: cell["n"] for method, cell in summary["cells"].items()} == {
        "noaug": 5, "eda": 5, "gpt3mix-soft": 5, "gpt3mix-hard": 5}
    soft = summary["cells"]["gpt3mix-soft"]
    assert math.isclose(soft["delta"]["mean"], 5.0) and math.isclose(soft["delta"]["low"], 5.0)
    assert soft["delta"]["n"] == 3  # data seeds 0, 1 (two repeats each) and 2 (one)
    hard = summary["cells"]["gpt3mix-hard"]
    assert math.isclose(hard["mean"], 55.8) and math.isclose(hard["delta"]["mean"], -5.0)
    table = markdown_table(records)
    assert "| GPT3Mix soft | 65.8 ± 0.8 (n=5, 3 data seeds) | +5.0 [+5.0, +5.0] |" in table
    assert "| NoAug | 60.8 ± 0.8 (n=5) | – |" in table
    assert "- left out at 1 %: the (data seed, repeat) pairs [(2, 1), (3, 0), (3, 1)], which EDA has not finished" \
        in table
    assert "- 3 comparisons to NoAug" in table
    # A level begun with one data seed shows a difference, but no interval: not counted.
    begun = [record("noaug", 0, 0, 0.6, level=0.03), record("gpt3mix-soft", 0, 0, 0.7, level=0.03)]
    assert "- 3 comparisons to NoAug" in markdown_table(records + begun)


def test_intervals_are_taken_over_data_seeds_not_runs():
    # Two repeats of each of 3 data seeds share their sub-sample and generation: 3 independent units, not 6.
    gains = {0: (1.0, 3.0), 1: (2.0, 4.0), 2: (6.0, 8.0)}  # the method's gain over NoAug, per (seed, repeat)
    records = [record("noaug", i, r, 0.5) for i in range(3) for r in range(2)]
    records += [record("gpt3mix-soft", i, r, 0.5 + gains[i][r] / 100) for i in range(3) for r in range(2)]
    delta = summarize(records)[0.01]["cells"]["gpt3mix-soft"]["delta"]
    seed_gains = [2.0, 3.0, 7.0]  # each seed's repeats averaged first
    expected = paired_difference(seed_gains, [0.0, 0.0, 0.0])
    assert delta["n"] == 3 and math.isclose(delta["mean"], 4.0)
    assert math.isclose(delta["low"], expected["low"]) and math.isclose(delta["high"], expected["high"])
    # On the six runs as if independent (5 degrees of freedom), the interval would be narrower.
    naive = paired_difference([g for pair in gains.values() for g in pair], [0.0] * 6)
    assert naive["high"] - naive["low"] < delta["high"] - delta["low"]


def test_summary_against_another_baseline():
    records = [record("noaug", i, 0, 0.60) for i in range(3)]
    records += [record("eda", i, 0, 0.62 + 0.01 * i) for i in range(3)]
    records += [record("gpt3mix-soft", i, 0, 0.66) for i in range(3)]
    cells = summarize(records, baseline="eda")[0.01]["cells"]
    assert "delta" not in cells["eda"]
    assert math.isclose(cells["gpt3mix-soft"]["delta"]["mean"], 3.0)
    assert math.isclose(cells["noaug"]["delta"]["mean"], -3.0)
    with pytest.raises(ValueError, match="baseline must be one of"):
        summarize(records, baseline="gpt3mix")


def write_protocol(folder, dataset="sst2", ratio=5.0, **settings):
    """An `experiment.json` as a sweep writes it, with the settings the tests of the scripts vary."""
    folder.mkdir(parents=True, exist_ok=True)
    experiment = {**ExperimentArguments(dataset=dataset, output_dir=str(folder), **settings).to_dict(),
                  "augmenter": {"ratio": ratio, "k": 2}}
    (folder / "experiment.json").write_text(json.dumps(experiment))


def test_decide_defaults_applies_the_rule_to_every_control(tmp_path):
    # Task a: debiased beats all three controls on every seed; soft ties EDA. Task b: nothing beats anything.
    # Task c: beats everything, but has no EDA runs, so it cannot be judged.
    gains = {"a": {"noaug": 0, "noaug-repeated": 1, "eda": 3, "gpt3mix-soft": 3, "gpt3mix-debiased": 8},
             "b": {"noaug": 0, "noaug-repeated": 0, "eda": 0, "gpt3mix-soft": 0, "gpt3mix-debiased": 0},
             "c": {"noaug": 0, "noaug-repeated": 0, "gpt3mix-soft": 9, "gpt3mix-debiased": 9}}
    for task, by_method in gains.items():
        for method, gain in by_method.items():
            # Task a's sweep was cut off in its fifth seed, after NoAug.
            for seed in range(5 if task == "a" and method == "noaug" else 4):
                path = tmp_path / task / "runs" / method / f"data{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                run = {**record(method, seed, 0, (60 + gain + seed % 2 * 0.5) / 100, level=0.003), "dataset": task}
                path.write_text(json.dumps(run))
            if task == "a":  # a second level, just begun: one data seed, so no interval
                path = tmp_path / task / "runs" / method / "level=0.01" / "data0.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({**record(method, 0, 0, (70 + gain) / 100, level=0.01), "dataset": task}))
    for task in "abc":
        write_protocol(tmp_path / task, dataset=task, levels=[0.003, 0.01] if task == "a" else [0.003])
    script = Path(__file__).resolve().parents[1] / "scripts" / "decide_defaults.py"
    result = subprocess.run([sys.executable, str(script), "--sweeps", *(str(tmp_path / task) for task in "abc")],
                            capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert "- left out from a at 0.3 %: the (data seed, repeat) pairs [(4, 0)], which EDA has not finished" in lines
    assert "- c at 0.3 % not judged: no finished runs of EDA." in lines
    assert "- a at 1 % not judged: 1 data seed, no interval yet." in lines
    assert not any(line.startswith("| a | 1 % |") for line in lines)
    assert "| a | 0.3 % | GPT3Mix debiased (not the paper's) | 4 | +8.0 [+8.0, +8.0] | +7.0 [+7.0, +7.0] | " \
           "+5.0 [+5.0, +5.0] | yes |" in lines
    assert any(line.startswith("| a | 0.3 % | GPT3Mix soft |") and line.endswith("| no |") for line in lines)
    assert "12 paired intervals for the rule and 2 between the modes (accuracy, percentage points), none corrected " \
           "for the others." in lines
    assert "- a at 0.3 %: GPT3Mix debiased (not the paper's) against GPT3Mix soft (the same texts, not part of the " \
           "rule): +5.0 [+5.0, +5.0]" in lines
    assert "GPT3Mix debiased (not the paper's): beats all three controls on 1 of 3 tasks (a; not judged, so not " \
           "beaten: c): does not by this rule." in lines
    # The rule counts tasks at one protocol: a task twice, or another ratio, is refused.
    command = [sys.executable, str(script), "--sweeps", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a")]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "Two of the sweeps are of a" in refused.stderr
    write_protocol(tmp_path / "b", dataset="b", ratio=10.0)
    refused = subprocess.run(command[:-1], capture_output=True, text=True)
    assert refused.returncode != 0 and "other settings (augmenter.ratio: 5.0 / 10.0)" in refused.stderr


def test_compare_sweeps_pairs_runs_and_takes_the_interval_over_data_seeds(tmp_path):
    # The second sweep scores 1 and 3 points more on data seed 0's two repeats, 2 and 2 on seed 1, 4 and 4 on
    # seed 2: per seed +2, +2, +4, so the interval is over 3 data seeds, not 6 runs.
    gains = {(0, 0): 1, (0, 1): 3, (1, 0): 2, (1, 1): 2, (2, 0): 4, (2, 1): 4}
    for folder, gain_of in (("first", lambda key: 0), ("second", gains.get)):
        for (seed, repeat) in gains:
            run = {**record("noaug", seed, repeat, (60 + gain_of((seed, repeat))) / 100, level=0.003),
                   "data_seed": 100 + seed, "train_seed": 200 + seed * 2 + repeat, "epochs": 9,
                   "timings": {"train_seconds": 1.0}}
            path = tmp_path / folder / "runs" / "noaug" / f"data{seed}-rep{repeat}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run))
    write_protocol(tmp_path / "first")
    write_protocol(tmp_path / "second", bf16=True)
    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_sweeps.py"
    command = [sys.executable, str(script), "--first", str(tmp_path / "first"), "--second", str(tmp_path / "second")]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    assert "The sweeps differ in (first / second): bf16: False / True." in lines
    expected = paired_difference([2.0, 2.0, 4.0], [0.0, 0.0, 0.0])
    assert (f"noaug at 0.003: second - first +2.7 points, 95 % interval [{expected['low']:+.1f}, "
            f"{expected['high']:+.1f}], 6 matched runs on 3 data seeds") in lines
    # Sweeps made from other seeds do not pair up: refused, not compared.
    moved = tmp_path / "second" / "runs" / "noaug" / "data1-rep0.json"
    moved.write_text(json.dumps({**json.loads(moved.read_text()), "data_seed": 7}))
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "other data or training seeds" in refused.stderr


def test_old_hard_records_read_as_written_labels(tmp_path):
    old = record("gpt3mix-hard", 0, 0, 0.5)
    new = {**record("gpt3mix-hard", 1, 0, 0.6), "record_version": 2}
    for item, name in ((old, "a.json"), (new, "b.json")):
        path = tmp_path / "runs" / "gpt3mix-hard" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(item))
    assert [r["method"] for r in load_runs(tmp_path)] == ["gpt3mix-written", "gpt3mix-hard"]
    # Resuming such a folder would take the old run for one of today's gpt3mix-hard: refused.
    assert finished_record(tmp_path / "runs" / "gpt3mix-hard" / "b.json")["record_version"] == 2
    with pytest.raises(ValueError, match="recorded under its old name gpt3mix-hard.*runs/gpt3mix-written"):
        finished_record(tmp_path / "runs" / "gpt3mix-hard" / "a.json")


def test_write_summary_files(tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training(scores=[0.6, 0.8]))
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "bt"], data_seeds=2)
    run_experiment(args, toy_split(repeat=3), toy_split())
    table = markdown_table(load_runs(args.output_dir))
    assert "| NoAug | 70.0 ± 14.1 (n=2) | – |" in table and "| BT | n/a | n/a |" in table
    text, plot_path = write_summary(args.output_dir)
    assert plot_path.exists() and plot_path.stat().st_size > 1000
    assert (tmp_path / "sweep" / "sst2_table.md").read_text() == text
    saved = json.loads((tmp_path / "sweep" / "sst2_summary.json").read_text())
    assert saved["accuracy"]["0.1"]["cells"]["noaug"]["n"] == 2


def skip_without_wordnet():
    # Asked here, not in a skipif: loading WordNet takes seconds, which a collection (every xdist worker's, and
    # `make test-fast`'s) would pay.
    if not wordnet_available():
        pytest.skip("WordNet is not set up: run scripts/setup_wordnet.sh")


@pytest.mark.slow  # real WordNet
def test_eda_method_runs(tmp_path, tiny_classifier):
    skip_without_wordnet()
    args = tiny_args(tmp_path, tiny_classifier, methods=["eda"])
    (result,) = run_experiment(args, toy_split(repeat=3), toy_split(), settings=ProtocolAugmenterConfig(ratio=2))
    assert result["status"] == "ok" and result["num_synthetic"] == 2 * result["num_real"]
    assert result["augmentation"]["wordnet"] == "3.0"
    (exported,) = export_synthetic(args.output_dir)
    assert exported.name == "eda_level=0.1_data0.jsonl" and exported.with_suffix(".meta.json").exists()
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(rows) == result["num_synthetic"] and {row["label"] for row in rows} <= {"negative", "positive"}


@pytest.mark.slow  # real WordNet
def test_eda_rows_made_once_are_trained_on_where_wordnet_is_missing(tmp_path, tiny_classifier, monkeypatch):
    skip_without_wordnet()
    # E.g. rows made on a CPU machine, classifiers trained on a GPU machine without nltk: the cache still serves.
    args = tiny_args(tmp_path, tiny_classifier, methods=["eda"])
    settings = ProtocolAugmenterConfig(ratio=2)
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training())
    (made,) = run_experiment(args, toy_split(repeat=3), toy_split(), settings=settings)

    def no_wordnet():
        raise ImportError("EDA needs nltk")

    monkeypatch.setattr("gpt3mix_hf.experiment.baselines.eda.load_wordnet", no_wordnet)
    for path in (tmp_path / "sweep" / "runs").rglob("*.json"):
        path.unlink()
    (again,) = run_experiment(args, toy_split(repeat=3), toy_split(), settings=settings)
    assert again["augmentation"] == made["augmentation"] and again["num_synthetic"] == made["num_synthetic"]


def test_split_is_class_balanced_and_disjoint():
    train = toy_split(repeat=3)
    split = make_split(train, 0.1, 0, seed=3)
    assert sorted(split.train["label"]) == [0, 0, 0, 1, 1, 1]
    assert sorted(split.validation["label"]) == [0, 0, 0, 1, 1, 1]
    numbered = train.add_column("text_id", [f"{i}:{t}" for i, t in enumerate(train["text"])])
    numbered = numbered.remove_columns("text").rename_column("text_id", "text")
    again = make_split(numbered, 0.1, 0, seed=3)
    assert not set(again.train["text"]) & set(again.validation["text"])
    assert [t.split(":", 1)[1] for t in again.train["text"]] == list(split.train["text"])


def test_held_out_validation_is_fixed_and_never_sampled(tmp_path, tiny_classifier, monkeypatch):
    train = toy_split(repeat=3)
    numbered = train.add_column("text_id", [f"{i}:{t}" for i, t in enumerate(train["text"])])
    numbered = numbered.remove_columns("text").rename_column("text_id", "text")
    held_out = held_out_validation(numbered, per_class=4, seed=held_out_seed(42))
    assert sorted(held_out.validation["label"]) == [0] * 4 + [1] * 4
    assert held_out.validation["text"] == [numbered["text"][row] for row in held_out.rows]
    for level in (0.1, 0.3):
        for index, seed in enumerate((3, 4, 5)):
            split = make_split(numbered, level, index, seed, held_out=held_out)
            # The same rows for every level and data seed, none of them ever in a sub-sample.
            assert split.validation["text"] == held_out.validation["text"]
            assert not set(split.train["text"]) & set(held_out.validation["text"])
            assert len(split.train) == len(make_split(numbered, level, index, seed).train)
    with pytest.raises(ValueError, match="validation_per_class"):
        held_out_validation(numbered, per_class=31, seed=0)

    # Through the harness: every run validates on the one held-out set.
    seen = []

    def record_validation(args, train, validation, test, seed, work_dir):
        seen.append((tuple(validation["text"]), set(train["text"])))
        return fake_training()(args, train, validation, test, seed, work_dir)

    monkeypatch.setattr(sweep, "_train_and_evaluate", record_validation)
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug"], data_seeds=3, levels=[0.1, 0.2],
                     validation_set="held-out", validation_per_class=5)
    records = run_experiment(args, numbered, toy_split())
    assert len(records) == 6 and {r["num_validation"] for r in records} == {10}
    assert len({validation for validation, _ in seen}) == 1
    assert all(not set(validation) & train for validation, train in seen)
    assert len({frozenset(train) for _, train in seen}) == 6
    with pytest.raises(ValueError, match="validation_set"):
        tiny_args(tmp_path, tiny_classifier, validation_set="dev")


def test_best_epoch_is_read_from_the_selection_score():
    history = [{"loss": 0.7, "epoch": 1.0},
               {"eval_accuracy": 0.75, "eval_nll": 0.6, "eval_accuracy_then_nll": 0.70, "epoch": 1.0},
               {"eval_accuracy": 0.75, "eval_nll": 0.4, "eval_accuracy_then_nll": 0.71, "epoch": 2.0}]
    assert sweep._best_evaluation(history, 0.71)["epoch"] == 2.0
    assert sweep._best_evaluation(history, None) == {}


def test_folder_data_is_encoded_with_trains_labels(tmp_path, tiny_classifier):
    folder = write_reviews(tmp_path / "reviews")
    args = tiny_args(tmp_path, tiny_classifier, dataset=str(folder), text_column="review", label_column="stars")
    train, test = load_task_data(args)
    assert train.column_names == ["text", "label"] and train.features["label"].names == ["bad", "good"]
    assert test.features["label"].names == ["bad", "good"] and len(test) == 8


def test_csv_folder_with_numeric_labels(tmp_path, tiny_classifier):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = [f'"{text}",{label}\n' for text, label in zip(GOOD + BAD, [1] * 8 + [0] * 8, strict=True)]
    (folder / "train.csv").write_text("sentence,y\n" + "".join(rows))
    (folder / "validation.csv").write_text("sentence,y\n" + "".join(rows[6:10]))
    args = tiny_args(tmp_path, tiny_classifier, dataset=str(folder), text_column="sentence", label_column="y",
                     test_split="validation")
    train, test = load_task_data(args)
    assert train.features["label"].names == ["0", "1"] and len(train) == 16
    assert test.features["label"].names == ["0", "1"] and set(test["label"]) <= {0, 1}
    assert train["label"][0] == 1 and train["text"][0] == GOOD[0]


def test_bad_inputs(tmp_path, tiny_classifier):
    train = toy_split(repeat=3)
    only_positive = make_dataset(POSITIVE, [1] * len(POSITIVE), NAMES)
    with pytest.raises(ValueError, match="negative"):
        make_split(only_positive, 0.1, 0, seed=0)
    with pytest.raises(ValueError, match="validation split would be empty or short"):
        make_split(train, 0.5, 0, seed=0, validation_per_class=20)
    with pytest.raises(ValueError, match="empty validation split"):
        tiny_args(tmp_path, tiny_classifier, validation_per_class=0)
    with pytest.raises(ValueError, match="methods=.*mixup.*choose one of"):
        tiny_args(tmp_path, tiny_classifier, methods=["mixup"])
    with pytest.raises(ValueError, match="fractions"):
        tiny_args(tmp_path, tiny_classifier, levels=[0.0])
    with pytest.raises(ValueError, match="finite"):
        tiny_args(tmp_path, tiny_classifier, learning_rate=float("inf"))
    with pytest.raises(ValueError, match="per_device_train_batch_size must be >= 1, got 0"):
        tiny_args(tmp_path, tiny_classifier, per_device_train_batch_size=0)
    with pytest.raises(ValueError, match="test_split='train' would score the classifiers on the rows"):
        tiny_args(tmp_path, tiny_classifier, test_split="train")
    with pytest.raises(ValueError, match="max_test_rows=1 is fewer than the 2 classes"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, max_test_rows=1), train, toy_split())
    with pytest.raises(ValueError, match="split is empty"):
        run_experiment(tiny_args(tmp_path, tiny_classifier), train, train.select([]))
    # A folder without a train split; an evaluation set whose labels differ from train's.
    (tmp_path / "no-train").mkdir()
    (tmp_path / "no-train" / "test.jsonl").write_text('{"text": "a", "label": "x"}\n')
    with pytest.raises(ValueError, match="no 'train' split"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, dataset=str(tmp_path / "no-train")))
    folder = write_reviews(tmp_path / "odd", test_labels=("bad", "great"))
    with pytest.raises(ValueError, match="'great'.*Use an evaluation set with train's labels"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, dataset=str(folder), text_column="review",
                                 label_column="stars"))
    with pytest.raises(ValueError, match="no word for the label"):
        run_experiment(tiny_args(tmp_path, tiny_classifier, dataset=str(write_reviews(tmp_path / "r2")),
                                 text_column="review", label_column="stars", verbalizer=["good=positive"]))


def test_max_test_rows_beyond_a_short_class_names_the_flag(tmp_path, tiny_classifier):
    texts = [t for pair in zip(POSITIVE, NEGATIVE, strict=True) for t in pair]
    test = make_dataset(texts[:-2] + POSITIVE[:1] * 6, [1, 0] * (len(texts) // 2 - 1) + [1] * 6, NAMES)
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug"], max_test_rows=len(test) - 1)
    with pytest.raises(ValueError, match="max_test_rows=.*Lower max_test_rows"):
        run_experiment(args, toy_split(repeat=3), test)


def test_the_harness_takes_the_augmenter_config_and_refuses_what_it_decides(tmp_path, tiny_classifier):
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "eda", "gpt3mix-soft"])
    assert ProtocolAugmenterConfig().selection == "uniform"  # the paper's protocol
    with pytest.raises(ValueError, match="ratio=1.5 is not a whole number, but \\['eda'\\]"):
        run_experiment(args, toy_split(repeat=3), toy_split(), settings=ProtocolAugmenterConfig(ratio=1.5))
    with pytest.raises(ValueError, match="label_mode='hard': in a sweep, label_mode is set by the methods"):
        run_experiment(args, toy_split(repeat=3), toy_split(), settings=ProtocolAugmenterConfig(label_mode="hard"))
    with pytest.raises(ValueError, match="seed=3: in a sweep, seed is set by --master_seed"):
        run_experiment(args, toy_split(repeat=3), toy_split(), settings=ProtocolAugmenterConfig(seed=3))
    assert not (tmp_path / "sweep" / "runs").exists()


def test_noaug_repeated_matches_gpt3mix_rows_per_epoch_with_real_rows(tmp_path, tiny_classifier, monkeypatch):
    log = []
    monkeypatch.setattr(sweep, "_train_and_evaluate", fake_training(log=log))
    args = tiny_args(tmp_path, tiny_classifier, methods=["noaug", "noaug-repeated", "gpt3mix-soft"])
    records = run_experiment(args, toy_split(repeat=3), toy_split(), backend=ScriptedBackend(parse_rate=1.0),
                             settings=ProtocolAugmenterConfig(ratio=2.5))
    sizes = {record["method"]: size for record, (size, _) in zip(records, log, strict=True)}
    real = records[0]["num_real"]
    assert sizes["noaug"] == real and sizes["noaug-repeated"] == round(3.5 * real)
    assert abs(sizes["gpt3mix-soft"] - sizes["noaug-repeated"]) <= real  # ratio 2.5: a coin flip per real row
    assert records[1]["num_synthetic"] == 0
    # Each run records where it ran: the processor (and whether bf16 is native) or the GPU.
    assert all(record["environment"]["machine_kind"].startswith(("cpu: ", "cuda: ")) for record in records)
