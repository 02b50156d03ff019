import dataclasses
import json
import logging
import math
import pickle
import zlib

import numpy as np
import pytest
import torch
from conftest import ScriptedBackend, build_tiny_lm, make_dataset
from datasets import ClassLabel, Dataset, load_dataset
from datasets.fingerprint import Hasher

from gpt3mix_hf import (
    AugmenterConfig,
    GPT3MixAugmenter,
    SamplingConfig,
    TaskSpec,
    TransformersBackend,
    augment_run,
    concatenate_with_real,
    number_duplicates,
    relabel,
)
from gpt3mix_hf.batches import OCCURRENCE_COLUMN
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.labels import calibrate, content_free_prior, mean_distribution, normalize_logprobs

SST2 = TaskSpec.from_preset("sst2")


def rows(dataset: Dataset) -> list[dict]:
    return dataset.to_list()


def test_columns_and_soft_labels(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2,
                                 ratio=2, seed=3, keep_prompt=True)
    synthetic = augmenter.augment(batch_size=4)
    assert set(synthetic.column_names) == set(augmenter.features)
    assert synthetic.features["label"].names == ["negative", "positive"]
    assert augmenter.report.rows_requested == 12
    assert len(synthetic) == augmenter.report.rows_written
    for row in rows(synthetic):
        assert sum(row["soft_labels"]) == pytest.approx(1.0, abs=1e-6)
        assert row["label"] == int(np.argmax(row["soft_labels"]))
        assert row["text"].startswith("synthetic review")
        assert len(row["source_ids"]) == 2
        assert row["prompt"].endswith("\nMovie review:")
        for source in row["source_ids"]:
            assert toy_sentiment[source]["text"] in row["prompt"]


def test_failed_generations_are_counted_and_kept(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.4), toy_sentiment, SST2, ratio=3, max_attempts=2)
    synthetic = augmenter.augment()
    report = augmenter.report
    kept_failures = sum(len(attempts) for attempts in synthetic["failed_attempts"])
    assert report.parse_failures == kept_failures + 2 * report.failed_rows
    assert report.parse_failures > 0 and report.failed_rows > 0
    assert report.rows_written + report.failed_rows == report.rows_requested == 18
    for failure in report.failures:
        assert failure["label"] == -1 and len(failure["failed_attempts"]) == 2
        assert all(a["error"] == "no label marker" for a in failure["failed_attempts"])
    # A line cut off by the token budget (5 tokens: the scripted backend's unlabelled lines) says so.
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.0), toy_sentiment, SST2, max_attempts=1,
                                 sampling=SamplingConfig(max_new_tokens=5))
    augmenter.augment()
    errors = {attempt["error"] for failure in augmenter.report.failures for attempt in failure["failed_attempts"]}
    assert errors == {"no label marker (the line was cut off at max_new_tokens=5 before its label: allow more "
                      "tokens)"}


def test_written_labels_are_the_labels_the_lm_wrote(toy_sentiment):
    synthetic = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, label_mode="written").augment()
    for row in rows(synthetic):
        assert row["label"] == row["written_label"]
        assert row["soft_labels"] == [1.0 if i == row["label"] else 0.0 for i in range(2)]
        assert row["generation"].endswith(f"(Sentiment: {['negative', 'positive'][row['label']]})")
        assert row["uncalibrated_soft_labels"] == [] and row["label_prior"] == []


def test_hard_labels_are_the_argmax_of_the_soft_pass(toy_sentiment):
    soft = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=3, seed=4).augment()
    hard = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=3, seed=4, label_mode="hard").augment()
    assert hard["text"] == soft["text"] and hard["uncalibrated_soft_labels"] == soft["soft_labels"]
    assert hard["label"] == [int(np.argmax(p)) for p in soft["soft_labels"]]
    assert hard["soft_labels"] == [[float(i == label) for i in range(2)] for label in hard["label"]]
    # The LM's sampled label is not its most probable one everywhere, or the two modes could not be told apart.
    assert hard["label"] != hard["written_label"]
    assert rows(relabel(soft, "hard")) == rows(hard)


class RecordingBackend(ScriptedBackend):
    """Records what it is asked to score, to check where the content-free texts are scored."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scored: list[tuple[str, str]] = []

    def score(self, prompts, contexts, continuations):
        self.scored.extend(zip(prompts, contexts, strict=True))
        return super().score(prompts, contexts, continuations)


class PriorFailingBackend(ScriptedBackend):
    """Gives "negative" no probability after the content-free texts of every third prompt: their calibration
    fails after the generation was accepted, and the row goes to another attempt."""

    def score(self, prompts, contexts, continuations):
        scores = super().score(prompts, contexts, continuations)
        for i, (prompt, context) in enumerate(zip(prompts, contexts, strict=True)):
            if "synthetic review" not in context and zlib.crc32(prompt.encode()) % 3 == 0:
                scores[i][0] = -math.inf
        return scores


def test_progress_counts_a_row_once_when_its_calibration_fails(toy_sentiment, monkeypatch):
    bars = []

    class RecordingBar:
        def __init__(self, **kwargs):
            self.n = 0
            bars.append(self)

        def update(self, rows):
            self.n += rows

        def close(self):
            pass

    monkeypatch.setattr(augment_run, "tqdm", RecordingBar)
    augmenter = GPT3MixAugmenter(PriorFailingBackend(parse_rate=1.0), toy_sentiment, SST2, ratio=3, seed=4,
                                 calibrate=True)
    synthetic = augmenter.augment()
    calibration_failures = sum(
        "calibration failed" in attempt["error"] for attempts in synthetic["failed_attempts"] for attempt in attempts
    )
    assert calibration_failures > 0
    # Each written row once: a row whose calibration failed was taken back off the bar before its next attempt.
    assert bars[-1].n == len(synthetic)


def test_calibration_divides_the_content_free_prior_of_the_same_prompt_out(toy_sentiment):
    plain = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=3, seed=4).augment()
    backend = RecordingBackend()
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=3, seed=4, calibrate=True, keep_prompt=True)
    calibrated = augmenter.augment()
    # One generation serves both variants: the same rows, the raw distribution kept beside the calibrated one.
    assert calibrated["text"] == plain["text"]
    assert calibrated["uncalibrated_soft_labels"] == plain["soft_labels"]
    contexts = [" N/A (Sentiment:", "  (Sentiment:", " [MASK] (Sentiment:"]
    for row in rows(calibrated):
        # Scored after the row's own prompt, each content-free text and the label marker.
        assert all((row["prompt"], context) in backend.scored for context in contexts)
        prior = content_free_prior(backend.score([row["prompt"]] * 3, contexts, [" negative", " positive"]))
        assert row["label_prior"] == pytest.approx(prior, abs=1e-6)
        assert row["soft_labels"] == pytest.approx(calibrate(row["uncalibrated_soft_labels"], prior), abs=1e-6)
        assert row["label"] == int(np.argmax(row["soft_labels"]))
    # This LM's prior is far from uniform, so calibration moves labels.
    assert calibrated["label"] != plain["label"]
    # The other variants follow from the same rows.
    assert relabel(calibrated, "soft")["soft_labels"] == plain["soft_labels"]
    np.testing.assert_allclose(relabel(calibrated, "soft", calibrated=True)["soft_labels"],
                               calibrated["soft_labels"], atol=1e-6)
    hard = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=3, seed=4, calibrate=True,
                            label_mode="hard").augment()
    assert hard["label"] == calibrated["label"] == relabel(calibrated, "hard", calibrated=True)["label"]
    with pytest.raises(ValueError, match="calibrate=True"):
        relabel(plain, "soft", calibrated=True)
    with pytest.raises(ValueError, match="written"):
        relabel(plain, "written")
    # dataset.map(augmenter) keeps the rows that failed every attempt (label -1): said, not misread.
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.3), toy_sentiment, SST2, seed=4, max_attempts=1,
                                 calibrate=True)
    mapped = toy_sentiment.map(augmenter, batched=True, remove_columns=toy_sentiment.column_names,
                               features=augmenter.features)
    assert min(mapped["label"]) == -1
    for mode in ("hard", "debiased"):
        with pytest.raises(ValueError, match=r"rows failed every attempt .*filter\(lambda row: row\['label'\] >= 0\)"):
            relabel(mapped, mode)


def test_a_prior_without_probability_for_a_label_fails_the_attempt(toy_sentiment):
    class BlindToNegative(ScriptedBackend):
        def score(self, prompts, contexts, continuations):
            scores = super().score(prompts, contexts, continuations)
            return [[-np.inf, s[1]] if "(Sentiment:" in c and "review" not in c else s
                    for s, c in zip(scores, contexts, strict=True)]

    augmenter = GPT3MixAugmenter(BlindToNegative(parse_rate=1.0), toy_sentiment, SST2, calibrate=True,
                                 max_attempts=2)
    assert len(augmenter.augment()) == 0
    errors = {a["error"] for failure in augmenter.report.failures for a in failure["failed_attempts"]}
    assert len(errors) == 1 and errors.pop().startswith("calibration failed")


class OrderSensitiveBackend(ScriptedBackend):
    """Scores that depend on the prompt too (so on the examples' order), as a real LM's do."""

    def score(self, prompts, contexts, continuations):
        scores = []
        for prompt, context in zip(prompts, contexts, strict=True):
            rng = np.random.default_rng(zlib.crc32((prompt + context).encode()))
            scores.append(np.log(rng.dirichlet([1.0] * len(continuations))).tolist())
        return scores


def test_debiased_labels_average_the_example_orders_and_divide_the_task_prior_out(toy_sentiment):
    options = {"ratio": 2, "seed": 3, "selection": "uniform"}
    plain = GPT3MixAugmenter(OrderSensitiveBackend(), toy_sentiment, SST2, **options).augment()
    backend = OrderSensitiveBackend()
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, label_mode="debiased", keep_prompt=True, **options)
    debiased = augmenter.augment()
    # The same generations as the soft pass: only label columns are added.
    assert debiased["text"] == plain["text"]
    assert debiased["uncalibrated_soft_labels"] == plain["soft_labels"]
    prior = augmenter.labeller.task_prior()
    assert max(prior) > 0.5 + 1e-3  # not uniform: dividing it out moves labels
    continuations = [" negative", " positive"]
    for row in rows(debiased):
        examples = [(toy_sentiment[i]["text"], toy_sentiment[i]["label"]) for i in row["source_ids"]]
        own, swapped = augmenter.labeller.order_prompts(examples)
        assert own == row["prompt"]
        assert swapped == augmenter.labeller.order_prompts(examples[::-1])[0]
        other = normalize_logprobs(backend.score([swapped], [f" {row['text']} (Sentiment:"], continuations)[0])
        expected = mean_distribution([row["uncalibrated_soft_labels"], other])
        assert row["order_averaged_soft_labels"] == pytest.approx(expected, abs=1e-6)
        assert row["debias_prior"] == pytest.approx(prior, abs=1e-6)
        assert row["soft_labels"] == pytest.approx(calibrate(expected, prior), abs=1e-6)
        assert row["label"] == int(np.argmax(row["soft_labels"]))
    assert debiased["label"] != plain["label"]
    # relabel derives the debiased label again, or with another task prior (e.g. over the rows themselves).
    np.testing.assert_allclose(relabel(debiased, "debiased")["soft_labels"], debiased["soft_labels"], atol=1e-6)
    own_rows_prior = mean_distribution(debiased["order_averaged_soft_labels"])
    with_own_prior = relabel(debiased, "debiased", prior=own_rows_prior)
    np.testing.assert_allclose(
        with_own_prior["soft_labels"],
        [calibrate(row, own_rows_prior) for row in debiased["order_averaged_soft_labels"]], atol=1e-6,
    )
    # The rows record the prior they were divided by, in the column's place.
    assert with_own_prior.column_names == debiased.column_names
    np.testing.assert_allclose(with_own_prior["debias_prior"], [own_rows_prior] * len(debiased), atol=1e-6)
    assert relabel(debiased, "soft")["soft_labels"] == plain["soft_labels"]
    with pytest.raises(ValueError, match="label_mode='debiased'"):
        relabel(plain, "debiased")
    with pytest.raises(ValueError, match="prior="):
        relabel(debiased, "soft", prior=prior)


def test_task_prior_is_the_mean_order_averaged_distribution_of_the_pool_rows(toy_sentiment):
    backend = OrderSensitiveBackend()
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, label_mode="debiased", seed=1)
    averaged = []
    for row in rows(toy_sentiment):
        # Each pool row is scored in prompts of k other pool rows: it never sees itself as an example.
        prompts = [prompt for prompt, context in backend_scored(augmenter, row["text"])]
        assert len(prompts) == 2 and all(row["text"] not in prompt for prompt in prompts)
        scores = backend.score(prompts, [f" {row['text']} (Sentiment:"] * 2, [" negative", " positive"])
        averaged.append(mean_distribution([normalize_logprobs(s) for s in scores]))
    assert augmenter.labeller.task_prior() == pytest.approx(mean_distribution(averaged), abs=1e-9)


def backend_scored(augmenter, text):
    """The (prompt, context) pairs the augmenter's task prior scored for pool row `text`."""
    scored = []

    class Spy(OrderSensitiveBackend):
        def score(self, prompts, contexts, continuations):
            scored.extend(zip(prompts, contexts, strict=True))
            return super().score(prompts, contexts, continuations)

    spied = GPT3MixAugmenter(Spy(), augmenter.pool_dataset(), SST2, label_mode="debiased", seed=augmenter.config.seed)
    spied.labeller.task_prior()
    return [(prompt, context) for prompt, context in scored if context == f" {text} (Sentiment:"]


def test_debiased_rows_do_not_depend_on_the_batch_size_or_the_mapped_subset(toy_sentiment):
    def augmenter():
        return GPT3MixAugmenter(OrderSensitiveBackend(), toy_sentiment, SST2, label_mode="debiased", ratio=2, seed=7)

    runs = [augmenter().augment(batch_size=size) for size in (1, 4, 16)]
    assert rows(runs[0]) == rows(runs[1]) == rows(runs[2])
    # map sees one batch at a time, and a subset of the rows: the task prior comes from the pool, not the batch.
    full = mapped_blocks(toy_sentiment, augmenter(), 2)
    for batch_size in (1, 2):
        for text, block in mapped_blocks(toy_sentiment.select([4, 1]), augmenter(), 2, batch_size).items():
            assert block == full[text]
    # A worker process (num_proc) gets the augmenter pickled without its prior, and recomputes the same one.
    built = augmenter()
    prior = built.labeller.task_prior()
    assert pickle.loads(pickle.dumps(built)).labeller.task_prior() == prior


def test_debiased_scoring_that_fails_sends_the_row_to_another_attempt(toy_sentiment):
    class SwappedOrderBlind(OrderSensitiveBackend):
        """No label has probability after a generated text in half of the prompts it was not generated from (the
        examples' other order)."""

        generated_from: set[str] = set()

        def generate(self, prompts, seeds, sampling):
            self.generated_from.update(prompts)
            return super().generate(prompts, seeds, sampling)

        def score(self, prompts, contexts, continuations):
            scores = super().score(prompts, contexts, continuations)
            for i, (prompt, context) in enumerate(zip(prompts, contexts, strict=True)):
                blind = prompt not in self.generated_from and zlib.crc32(prompt.encode()) % 2 == 0
                if "synthetic review" in context and blind:
                    scores[i] = [-math.inf] * len(continuations)
            return scores

    augmenter = GPT3MixAugmenter(SwappedOrderBlind(parse_rate=1.0), toy_sentiment, SST2, label_mode="debiased",
                                 ratio=2, max_attempts=8)
    synthetic = augmenter.augment()
    errors = [a["error"] for row in synthetic["failed_attempts"] for a in row]
    assert errors and all(error.startswith("debiased scoring failed") for error in errors)
    assert all(len(row) == 2 for row in synthetic["order_averaged_soft_labels"])


def test_fractional_ratio_is_a_per_row_coin_flip():
    # ratio=1.5: each real row makes one row, and a second one when its own coin (seeded by the row) comes up.
    labels = [i % 2 for i in range(200)]
    big = make_dataset([f"review number {i}" for i in range(200)], labels, ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), big, SST2, ratio=1.5)
    alone = [augmenter(big[i : i + 1])["text"] for i in range(len(big))]
    copies = [len(texts) for texts in alone]
    assert set(copies) == {1, 2}
    assert 70 <= copies.count(2) <= 130  # Binomial(200, 0.5): 100 +- 7
    # The coin belongs to the row, not to the batch or the run: mapped together, each row makes what it made alone.
    assert augmenter.augment(batch_size=16)["text"] == [text for texts in alone for text in texts]


def test_same_seed_same_rows_whatever_the_batch_size(toy_sentiment):
    runs = [
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=2, seed=5).augment(batch_size=size)
        for size in (1, 4, 16)
    ]
    assert rows(runs[0]) == rows(runs[1]) == rows(runs[2])
    other = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=2, seed=6).augment()
    assert rows(other) != rows(runs[0])


def test_map_directly(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2)
    mapped = toy_sentiment.map(augmenter, batched=True, remove_columns=toy_sentiment.column_names,
                               features=augmenter.features)
    assert len(mapped) == 6
    # with_indices=True (which older versions needed) is accepted and changes nothing.
    with_indices = toy_sentiment.map(augmenter, batched=True, with_indices=True,
                                     remove_columns=toy_sentiment.column_names, features=augmenter.features)
    assert rows(with_indices) == rows(mapped)
    with pytest.raises(ValueError, match="batched=True"):
        toy_sentiment.map(augmenter, remove_columns=toy_sentiment.column_names)


def mapped_blocks(dataset, augmenter, ratio, batch_size=4):
    """The synthetic rows of each real row of `dataset`, keyed by that row's text (map keeps the order)."""
    out = dataset.map(augmenter, batched=True, batch_size=batch_size, remove_columns=dataset.column_names,
                      features=augmenter.features).to_list()
    assert len(out) == ratio * len(dataset)
    return {text: out[ratio * i: ratio * (i + 1)] for i, text in enumerate(dataset["text"])}


@pytest.mark.parametrize("selection", ["anchored", "uniform", "class_balanced"])
def test_each_real_row_gets_the_same_rows_whatever_the_subset_order_or_batch(toy_sentiment, selection):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=2, seed=2, selection=selection,
                                 keep_prompt=True)
    full = mapped_blocks(toy_sentiment, augmenter, 2)
    for subset in (toy_sentiment.select([4, 1]), toy_sentiment.shuffle(seed=0),
                   toy_sentiment.filter(lambda row: row["label"] == 0)):
        for batch_size in (1, 3):
            for text, block in mapped_blocks(subset, augmenter, 2, batch_size).items():
                assert block == full[text]
    assert len({row["generation"] for block in full.values() for row in block}) > 6


def test_the_mapped_row_is_read_from_the_batch(toy_sentiment):
    other = make_dataset([f"a brand new review number {i} ." for i in range(9)], [i % 2 for i in range(9)],
                         ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2, keep_prompt=True)
    # Longer than the pool: nothing is looked up by position.
    synthetic = other.map(augmenter, batched=True, remove_columns=other.column_names, features=augmenter.features)
    for real, row in zip(other, synthetic, strict=True):
        assert f"Movie review: {real['text']} (Sentiment: {['negative', 'positive'][real['label']]})" in row["prompt"]
        # The mapped row is not in the pool (-1); its partner is.
        assert sorted(row["source_ids"])[0] == -1 and 0 <= sorted(row["source_ids"])[1] < len(toy_sentiment)
    # Mapped rows from the pool are found there, and are not their own partners.
    for row in augmenter.augment(batch_size=2).to_list():
        assert len(set(row["source_ids"])) == 2 and min(row["source_ids"]) >= 0


def test_uniform_selection_draws_every_example_from_the_pool(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2, ratio=10, k=3,
                                 selection="uniform", keep_prompt=True)
    synthetic = augmenter.augment(toy_sentiment.select([0]))
    anchor_shown = 0
    for row in rows(synthetic):
        assert len(set(row["source_ids"])) == 3 and min(row["source_ids"]) >= 0
        anchor_shown += 0 in row["source_ids"]
    # Row 0 is one of 6 pool rows: it is shown in about half the prompts, not in all of them.
    assert 0 < anchor_shown < 10


def test_streaming_map_gives_the_same_rows(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=2, seed=1)
    expected = toy_sentiment.map(augmenter, batched=True, remove_columns=["text", "label"],
                                 features=augmenter.features)
    streamed = toy_sentiment.to_iterable_dataset(num_shards=2).map(
        augmenter, batched=True, batch_size=4, remove_columns=["text", "label"], features=augmenter.features
    )
    # A streamed map does not cast to the features: the soft labels are compared once stored as float32.
    assert rows(Dataset.from_list(list(streamed), features=augmenter.features)) == rows(expected)


def test_streamed_rows_may_carry_label_names(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratio=2, seed=1)
    by_id = augmenter({"text": toy_sentiment["text"], "label": toy_sentiment["label"]})
    names = ["negative", "positive"]
    by_name = augmenter({"text": toy_sentiment["text"], "label": [names[i] for i in toy_sentiment["label"]]})
    assert by_name == by_id


def test_duplicated_rows_get_their_own_synthetic_rows():
    dataset = make_dataset(["same review .", "same review .", "another one .", "a third ."], [1, 1, 0, 1],
                           ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), dataset, SST2, seed=3)
    synthetic = augmenter.augment(load_from_cache_file=False)
    assert synthetic["generation"][0] != synthetic["generation"][1]
    shuffled = augmenter.augment(dataset.shuffle(seed=1), load_from_cache_file=False)
    assert sorted(shuffled["generation"]) == sorted(synthetic["generation"])
    # Without the occurrence number (a plain map), copies share their synthetic rows.
    mapped = dataset.map(augmenter, batched=True, remove_columns=dataset.column_names, features=augmenter.features)
    assert mapped["generation"][0] == mapped["generation"][1]
    assert number_duplicates(dataset)[OCCURRENCE_COLUMN] == [0, 1, 0, 0]


def test_partners_from_another_pool(toy_sentiment):
    pool = make_dataset([f"pool review {i} ." for i in range(5)], [0, 1, 0, 1, 0], ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2, keep_prompt=True)
    synthetic = augmenter.augment(toy_sentiment, pool=pool)
    assert augmenter.report.rows_written == len(synthetic) == 6
    for real, row in zip(toy_sentiment, synthetic, strict=True):
        assert real["text"] in row["prompt"] and "pool review" in row["prompt"]
    with pytest.raises(ValueError, match="labels"):
        augmenter.augment(pool=make_dataset(["x"] * 2, [0, 1], ["bad", "good"]))


def test_partners_come_from_the_whole_dataset(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2, ratio=4)
    synthetic = augmenter.augment(toy_sentiment.select([0]))
    assert {s for ids in synthetic["source_ids"] for s in ids} - {0}


def test_concatenate_with_real(toy_sentiment):
    synthetic = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2).augment()
    mixed = concatenate_with_real(toy_sentiment, synthetic)
    assert mixed.column_names == ["text", "label", "soft_labels", "is_synthetic"]
    assert mixed["is_synthetic"] == [False] * 6 + [True] * len(synthetic)
    assert mixed[0]["soft_labels"] == [0.0, 1.0]
    assert mixed.features["label"] == toy_sentiment.features["label"]


def test_resumes_from_checkpoints(toy_sentiment, tmp_path):
    backend = ScriptedBackend()
    first = GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2).augment(checkpoint_dir=tmp_path, shard_size=2)
    calls = backend.calls
    # A run that died while saving its second shard (rows written, meta.json not yet) and before the third:
    # only those two are made again.
    shards = sorted(tmp_path.glob("shard-*"))
    assert len(shards) == 3 and (tmp_path / "manifest.json").exists()
    (shards[1] / "meta.json").unlink()
    for path in sorted(shards[2].rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    shards[2].rmdir()
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2)
    resumed = augmenter.augment(checkpoint_dir=tmp_path, shard_size=2, load_from_cache_file=False)
    assert rows(resumed) == rows(first)
    assert 0 < backend.calls - calls < calls
    # The report's time counts the shard read back with the time it took when it was made.
    assert augmenter.report.seconds > json.loads((shards[0] / "meta.json").read_text())["seconds"] > 0
    # The same data shuffled is other data for the shards (they are cut by position).
    with pytest.raises(ValueError, match="other settings or data"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2).augment(
            toy_sentiment.shuffle(seed=0), checkpoint_dir=tmp_path, shard_size=2
        )
    with pytest.raises(ValueError, match="other settings"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2, seed=9).augment(checkpoint_dir=tmp_path, shard_size=2)
    # Without the folder's manifest.json (deleted, as its error message for a damaged one suggests), each shard's
    # own record still refuses the run.
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ValueError, match="shard-00000-of-00003 was made by a run with other settings"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2, seed=9).augment(checkpoint_dir=tmp_path, shard_size=2)
    assert not (tmp_path / "manifest.json").exists()  # nothing written: the original run still resumes
    assert rows(GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2).augment(
        checkpoint_dir=tmp_path, shard_size=2, load_from_cache_file=False)) == rows(first)


class Bfloat16ScriptedBackend(ScriptedBackend):
    """Says it runs in bf16, where rows depend on the batching."""

    batch_size = 4

    @property
    def identity(self) -> dict:
        return {**super().identity, "dtype": "bfloat16"}


def test_a_bf16_resume_with_other_batching_says_the_rows_cannot_be_made_again_exactly(toy_sentiment, tmp_path,
                                                                                        caplog):
    backend = Bfloat16ScriptedBackend()
    GPT3MixAugmenter(backend, toy_sentiment, SST2).augment(checkpoint_dir=tmp_path, shard_size=2, batch_size=2)
    with caplog.at_level("WARNING"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2).augment(checkpoint_dir=tmp_path, shard_size=2, batch_size=2,
                                                               load_from_cache_file=False)
    assert not any("other batching" in record.getMessage() for record in caplog.records)
    with caplog.at_level("WARNING"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2).augment(checkpoint_dir=tmp_path, shard_size=2, batch_size=1,
                                                               load_from_cache_file=False)
    assert any("other batching" in record.getMessage() and "bfloat16" in record.getMessage()
               for record in caplog.records)


# -- bad input -------------------------------------------------------------------------------------------


def test_missing_column_names_what_was_found(toy_sentiment):
    with pytest.raises(ValueError, match=r"no column 'sentence'.*text_column"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, text_column="sentence")


def test_string_labels_say_how_to_encode():
    dataset = Dataset.from_dict({"text": ["a", "b"], "label": ["positive", "negative"]})
    with pytest.raises(ValueError, match="class_encode_column"):
        GPT3MixAugmenter(ScriptedBackend(), dataset, SST2)


def test_dataset_dict_hints_at_the_split(toy_sentiment):
    from datasets import DatasetDict

    with pytest.raises(TypeError, match=r"dataset\['train'\]"):
        GPT3MixAugmenter(ScriptedBackend(), DatasetDict(train=toy_sentiment), SST2)
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2)
    splits = DatasetDict(train=toy_sentiment, test=toy_sentiment.select([0]))
    with pytest.raises(TypeError, match=r"splits \['train', 'test'\].*dataset\['train'\].*split="):
        augmenter.augment(splits)
    assert rows(augmenter.augment(splits, split="test")) == rows(augmenter.augment(toy_sentiment.select([0])))
    with pytest.raises(ValueError, match="no split 'validation'"):
        augmenter.augment(splits, split="validation")
    with pytest.raises(TypeError, match="streaming"):
        augmenter.augment(toy_sentiment.to_iterable_dataset())


def test_batch_without_the_columns_says_which(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2)
    renamed = toy_sentiment.rename_column("text", "sentence")
    with pytest.raises(ValueError, match=r"no column 'text' \(it has \['label', 'sentence'\]\).*text_column"):
        renamed.map(augmenter, batched=True, remove_columns=renamed.column_names)
    with pytest.raises(ValueError, match="label_column"):
        augmenter({"text": ["a film ."]})
    with pytest.raises(ValueError, match="label 'great'.*label names"):
        augmenter({"text": ["a film ."], "label": ["great"]})
    with pytest.raises(ValueError, match="empty text"):
        augmenter({"text": [" "], "label": [0]})
    with pytest.raises(ValueError, match="labels are"):
        augmenter.augment(make_dataset(["a film ."], [0], ["bad", "good"]))


@pytest.mark.parametrize("k", [0, 7])
def test_bad_k(toy_sentiment, k):
    with pytest.raises(ValueError, match="k"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, k=k)


def test_empty_texts_are_refused():
    dataset = make_dataset(["good", "  ", "bad"], [1, 0, 0], ["negative", "positive"])
    with pytest.raises(ValueError, match=r"empty text \(first: \[1\]\)"):
        GPT3MixAugmenter(ScriptedBackend(), dataset, SST2)


def test_label_without_examples_warns_and_keeps_its_share(caplog):
    dataset = make_dataset(["good", "fine", "great"], [1, 1, 1], ["negative", "positive"])
    with caplog.at_level(logging.WARNING):
        synthetic = GPT3MixAugmenter(ScriptedBackend(), dataset, SST2).augment()
    assert "['negative'] have no rows" in caplog.text
    assert all(len(soft) == 2 for soft in synthetic["soft_labels"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"ratio": 0}, "ratio"), ({"label_mode": "argmax"}, "label_mode"), ({"max_attempts": 0}, "max_attempts"),
    ({"selection": "nearest"}, "selection"), ({"label_mode": "written", "calibrate": True}, "calibrate"),
    ({"calibrate": True, "content_free_texts": []}, "content_free_texts"),
    ({"label_mode": "debiased", "debias_orders": 3}, "debias_orders"),
    ({"label_mode": "debiased", "debias_orders": 0}, "debias_orders"), ({"debias_orders": 0}, "debias_orders"),
    ({"label_mode": "debiased", "debias_prior_rows": 0}, "debias_prior_rows"),
    ({"label_mode": "debiased", "k": 6}, "more than k rows"),
])
def test_bad_settings(toy_sentiment, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, **kwargs)


def test_debiased_labels_with_one_example_name_the_orders_to_give(toy_sentiment):
    with pytest.raises(ValueError, match=r"in \[1, 1\] \(the orders of k=1 examples\), got 2 \(its default"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, label_mode="debiased", k=1)
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, label_mode="debiased", k=1, debias_orders=1)
    assert len(augmenter.augment()) == len(toy_sentiment)


# -- with a real (tiny, random) model --------------------------------------------------------------------


def test_label_word_that_is_a_token_prefix_of_another_is_refused(tiny_lm_dir, toy_sentiment):
    spec = TaskSpec("movie review", "sentiment", {"negative": "not good", "positive": "not"})
    with pytest.raises(ValueError, match="prefix"):
        GPT3MixAugmenter(TransformersBackend.from_pretrained(str(tiny_lm_dir)), toy_sentiment, spec)


def test_examples_too_long_for_the_context_are_shortened(tmp_path, caplog):
    folder = build_tiny_lm(tmp_path, max_position_embeddings=96)
    backend = TransformersBackend.from_pretrained(str(folder), dtype="float32")
    long_text = " ".join(["an overlong and rambling review"] * 30)
    dataset = make_dataset([long_text, long_text + " again"], [0, 1], ["negative", "positive"])
    sampling = SamplingConfig(max_new_tokens=8)
    with caplog.at_level(logging.WARNING):
        augmenter = GPT3MixAugmenter(backend, dataset, SST2, sampling=sampling, max_attempts=1, keep_prompt=True)
        augmenter.augment()
    assert "shortened" in caplog.text
    for failure in augmenter.report.failures:
        assert len(backend.tokenize(failure["prompt"])) <= 96 - 8 - 16
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        GPT3MixAugmenter(backend, dataset, SST2, sampling=SamplingConfig(max_new_tokens=90)).augment()


def test_a_random_model_fails_visibly(tiny_lm_dir, toy_sentiment):
    backend = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32")
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2,
                                 sampling=SamplingConfig(max_new_tokens=6), max_attempts=2)
    synthetic = augmenter.augment()
    assert len(synthetic) == 0
    assert augmenter.report.failed_rows == 6 and augmenter.report.parse_failures == 12
    assert augmenter.report.generated_tokens > 0


def test_fingerprint_hits_the_cache_and_settings_miss_it(tiny_lm_dir, data_dir, tmp_path):
    train = load_dataset("json", data_files=str(data_dir / "sst2" / "validation.jsonl"), split="train",
                         cache_dir=str(tmp_path))
    train = train.select(range(0, 40, 10)).cast_column("label", ClassLabel(names=["negative", "positive"]))
    sampling = SamplingConfig(max_new_tokens=4)

    def run(**kwargs):
        backend = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32")
        settings = {"spec": SST2, "sampling": sampling, "max_attempts": 1} | kwargs
        augmenter = GPT3MixAugmenter(backend, train, **settings)
        return train.map(augmenter, batched=True, with_indices=True, remove_columns=train.column_names,
                         features=augmenter.features)

    first = run()
    assert run()._fingerprint == first._fingerprint
    assert run().cache_files == first.cache_files
    changed = {run(seed=1)._fingerprint, run(k=3)._fingerprint, run(label_mode="hard")._fingerprint,
               run(label_mode="written")._fingerprint, run(calibrate=True)._fingerprint,
               run(selection="uniform")._fingerprint, run(ratio=2)._fingerprint, run(max_attempts=2)._fingerprint,
               run(sampling=SamplingConfig(max_new_tokens=5))._fingerprint,
               run(spec=TaskSpec.from_preset("cr"))._fingerprint}
    assert first._fingerprint not in changed and len(changed) == 10



def test_the_settings_cannot_change_under_a_built_augmenter(toy_sentiment):
    # The prompts are built from the settings given: one changed afterwards would reach the cache fingerprint
    # (which pickles them) but not the rows.
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, k=2)
    for settings, name in ((augmenter.config, "k"), (augmenter.sampling, "temperature"), (augmenter.spec, "text_type"),
                           (augmenter.template, "item")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(settings, name, getattr(settings, name))


def test_the_same_source_resolved_to_another_dtype_misses_the_cache(tiny_lm_dir, toy_sentiment, monkeypatch):
    # dtype="auto" is one source on every machine; the dtype it resolves to (here forced) decides the rows.
    hashes = []
    for dtype in ("float32", "bfloat16"):
        monkeypatch.setenv("GPT3MIX_AUTO_DTYPE", dtype)
        backend = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="auto")
        assert backend.identity["dtype"] == dtype
        hashes.append(Hasher.hash(GPT3MixAugmenter(backend, toy_sentiment, SST2)))
    assert hashes[0] != hashes[1]


def test_augment_twice_hits_the_cache(tiny_lm_dir, data_dir, tmp_path):
    train = load_dataset("json", data_files=str(data_dir / "sst2" / "validation.jsonl"), split="train",
                         cache_dir=str(tmp_path))
    train = train.select(range(0, 40, 10)).cast_column("label", ClassLabel(names=["negative", "positive"]))
    backend = TransformersBackend.from_pretrained(str(tiny_lm_dir), dtype="float32")
    augmenter = GPT3MixAugmenter(backend, train, SST2, sampling=SamplingConfig(max_new_tokens=4), max_attempts=1)
    calls = []
    generate_and_score = backend.generate_and_score
    # Counted on the instance: the backend pickles (and hashes) as its source, so this changes no fingerprint.
    backend.generate_and_score = lambda *args, **kwargs: calls.append(1) or generate_and_score(*args, **kwargs)
    first = augmenter.augment(train)
    assert calls and augmenter.report.seconds > 0
    made = len(calls)
    # The second run reads the cache the first wrote: the first run's report (wall-clock seconds) is no part
    # of the hashed state.
    again = augmenter.augment(train)
    assert len(calls) == made and rows(again) == rows(first)
    augmenter.augment(train.select([2, 0]))
    assert len(calls) > made


# -- the embedded default model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sst2_sample(data_dir):
    return class_balanced_sample(load_benchmark("sst2", "train", data_dir=data_dir), per_class=2, seed=0)


@pytest.mark.slow
def test_smollm2_same_rows_whatever_batch_size_or_num_proc(sst2_sample):
    sampling = SamplingConfig(max_new_tokens=40)

    # On the CPU wherever the suite runs: worker processes cannot use CUDA (refused, see the test below), and
    # scripts/check_same_rows.py asks the GPU the same question.
    def run(batch_size, num_proc, generation_batch_size):
        backend = TransformersBackend.from_pretrained("smollm2", batch_size=generation_batch_size, dtype="float32",
                                                      device="cpu")
        augmenter = GPT3MixAugmenter(backend, sst2_sample, SST2, seed=1, sampling=sampling, max_attempts=2)
        return augmenter.augment(batch_size=batch_size, num_proc=num_proc, load_from_cache_file=False), augmenter

    reference, augmenter = run(4, None, 4)
    assert augmenter.report.rows_written >= 2, augmenter.report.failures
    for other, _ in (run(1, None, 1), run(2, 2, 2)):
        assert other["text"] == reference["text"]
        assert other["label"] == reference["label"]
        assert other["failed_attempts"] == reference["failed_attempts"]
        # Batched matrix products sum in another order: soft labels agree to float32 round-off.
        np.testing.assert_allclose(np.array(other["soft_labels"]), np.array(reference["soft_labels"]), atol=1e-5)


def test_tiny_model_same_rows_with_two_processes(format_lm_dir, toy_sentiment):
    # An LM trained on the prompt's format, so that rows parse and are scored in the worker processes too; on the
    # CPU, since worker processes cannot use CUDA.
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), batch_size=2, dtype="float32", device="cpu")
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, sampling=SamplingConfig(max_new_tokens=12),
                                 max_attempts=2)
    one = augmenter.augment(batch_size=2)
    one_failures = augmenter.report.failures
    two = augmenter.augment(batch_size=3, num_proc=2, load_from_cache_file=False)
    assert len(one) > 0 and all(sum(row["soft_labels"]) > 0.99 for row in rows(one))
    # Texts, labels and attempts identical; soft labels to float32 round-off (other batches, other sum orders).
    columns = [name for name in one.column_names if name not in ("soft_labels", "uncalibrated_soft_labels")]
    assert two.select_columns(columns).to_list() == one.select_columns(columns).to_list()
    np.testing.assert_allclose(np.array(two["soft_labels"]), np.array(one["soft_labels"]), atol=1e-5)
    assert augmenter.report.failures == one_failures


def test_worker_processes_are_refused_for_a_model_on_a_gpu(format_lm_dir, toy_sentiment, monkeypatch):
    # Seen on an H100: map(num_proc=2) forked workers that each died re-initialising CUDA, and `map` reported only
    # that a worker had died. Simulated here (CI has no GPU): the model stays on the CPU, its device reads cuda.
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), dtype="float32", device="cpu")
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, sampling=SamplingConfig(max_new_tokens=12))
    monkeypatch.setattr(TransformersBackend, "device", property(lambda self: torch.device("cuda", 0)))
    with pytest.raises(ValueError, match=r"num_proc=2 \(--num_proc\) forks .* cannot use CUDA"):
        augmenter.augment(num_proc=2)
    monkeypatch.undo()
    assert len(augmenter.augment(num_proc=2, load_from_cache_file=False)) == augmenter.report.rows_written


@pytest.mark.slow
def test_smollm2_calibration_scores_the_prior_in_each_rows_prompt(sst2_sample):
    backend = TransformersBackend.from_pretrained("smollm2", batch_size=4, dtype="float32")
    augmenter = GPT3MixAugmenter(backend, sst2_sample, SST2, seed=2, calibrate=True, keep_prompt=True,
                                 sampling=SamplingConfig(max_new_tokens=40), max_attempts=4)
    synthetic = augmenter.augment(load_from_cache_file=False)
    assert len(synthetic) >= 2, augmenter.report.failures
    template = augmenter.template
    contexts = [template.scoring_parts(SST2, augmenter.label_names, text)[0] for text in ("N/A", "", "[MASK]")]
    continuations = template.scoring_parts(SST2, augmenter.label_names, "")[1]
    for row in rows(synthetic):
        prior = content_free_prior(backend.score([row["prompt"]] * 3, contexts, continuations))
        np.testing.assert_allclose(row["label_prior"], prior, atol=1e-4)
        np.testing.assert_allclose(row["soft_labels"], calibrate(row["uncalibrated_soft_labels"], prior), atol=1e-4)
    # Prompts differ, so do their priors: the prior is the prompt's, not one constant.
    assert len({tuple(np.round(p, 4)) for p in synthetic["label_prior"]}) == len(synthetic)


@pytest.mark.slow
def test_smollm2_debiased_labels_whatever_the_batch_size(sst2_sample):
    # fp32 pinned: the soft labels are compared with an fp32 reference (dtype "auto" may resolve to bf16).
    sampling = SamplingConfig(max_new_tokens=40)

    def run(batch_size, generation_batch_size):
        backend = TransformersBackend.from_pretrained("smollm2", batch_size=generation_batch_size, dtype="float32")
        augmenter = GPT3MixAugmenter(backend, sst2_sample, SST2, seed=1, sampling=sampling, max_attempts=4,
                                     label_mode="debiased", keep_prompt=True)
        return augmenter.augment(batch_size=batch_size, load_from_cache_file=False), augmenter

    reference, augmenter = run(4, 4)
    assert len(reference) >= 2, augmenter.report.failures
    other, _ = run(1, 1)
    assert other["text"] == reference["text"] and other["label"] == reference["label"]
    np.testing.assert_allclose(other["debias_prior"], reference["debias_prior"], atol=1e-5)
    np.testing.assert_allclose(other["soft_labels"], reference["soft_labels"], atol=1e-5)
    # Each text's second order is scored as the labeller check scores a held-out row.
    for row in rows(reference):
        examples = [(sst2_sample[i]["text"], sst2_sample[i]["label"]) for i in row["source_ids"]]
        own, swapped = augmenter.labeller.order_prompts(examples)
        assert own == row["prompt"]
        other_order = augmenter.labeller.label_distributions([swapped], [row["text"]])[0]
        np.testing.assert_allclose(row["order_averaged_soft_labels"],
                                   mean_distribution([row["uncalibrated_soft_labels"], other_order]), atol=1e-4)


def test_min_label_mass_sends_thinly_scored_generations_to_another_attempt(toy_sentiment):
    class PartialScores(ScriptedBackend):
        """A served LM's top-k view: the label words cover a share of the probability that falls by attempt."""

        def generate_and_score_once(self, prompts, seeds, sampling, scoring_context, continuations):
            completions = super().generate_and_score_once(prompts, seeds, sampling, scoring_context, continuations)
            for completion in completions:
                completion.label_mass = 0.5
            return completions

    kept = GPT3MixAugmenter(PartialScores(parse_rate=1.0), toy_sentiment, SST2, seed=0).augment()
    assert len(kept) == len(toy_sentiment) and set(kept["label_mass"]) == {0.5}
    strict = GPT3MixAugmenter(PartialScores(parse_rate=1.0), toy_sentiment, SST2, seed=0, min_label_mass=0.9)
    assert len(strict.augment()) == 0
    errors = {attempt["error"] for row in strict.report.failures for attempt in row["failed_attempts"]}
    assert errors == {"the label words covered 0.500 of the probability, under min_label_mass=0.9"}
    with pytest.raises(ValueError, match="min_label_mass is a share of probability"):
        GPT3MixAugmenter(PartialScores(), toy_sentiment, SST2, min_label_mass=2.0)


def test_min_label_mass_judges_every_score_a_label_is_made_of(toy_sentiment):
    class TopKOutsideOwnPrompt(OrderSensitiveBackend):
        """A served LM's top-k view where the label words cover half the probability after a synthetic text in
        some of the prompts it was not generated from, and after every content-free text."""

        generated_from: set[str] = set()

        def generate(self, prompts, seeds, sampling):
            self.generated_from.update(prompts)
            return super().generate(prompts, seeds, sampling)

        def score_with_mass(self, prompts, contexts, continuations):
            scores = self.score(prompts, contexts, continuations)
            return [(logprobs, 0.5 if thin(prompt, context) else 1.0)
                    for logprobs, prompt, context in zip(scores, prompts, contexts, strict=True)]

    def thin(prompt, context):
        other_order = prompt not in TopKOutsideOwnPrompt.generated_from and zlib.crc32(prompt.encode()) % 2 == 0
        return ("synthetic review" in context and other_order) or "N/A" in context

    options = {"ratio": 2, "max_attempts": 8, "min_label_mass": 0.9}
    debiased = GPT3MixAugmenter(TopKOutsideOwnPrompt(parse_rate=1.0), toy_sentiment, SST2, label_mode="debiased",
                                **options).augment()
    errors = {a["error"] for row in debiased["failed_attempts"] for a in row}
    assert errors == {"debiased scoring failed: the label words covered 0.500 of the probability, under "
                      "min_label_mass=0.9"}
    assert len(debiased) > 0
    # Without the threshold the same rows' other orders are used as they are.
    loose = GPT3MixAugmenter(TopKOutsideOwnPrompt(parse_rate=1.0), toy_sentiment, SST2, label_mode="debiased",
                             **{**options, "min_label_mass": 0.0}).augment()
    assert not any(loose["failed_attempts"])
    calibrated = GPT3MixAugmenter(TopKOutsideOwnPrompt(parse_rate=1.0), toy_sentiment, SST2, calibrate=True,
                                  **{**options, "max_attempts": 1})
    assert len(calibrated.augment()) == 0
    errors = {a["error"] for row in calibrated.report.failures for a in row["failed_attempts"]}
    assert errors == {"calibration failed: the label words covered 0.500 of the probability, under "
                      "min_label_mass=0.9"}


def test_min_label_mass_leaves_thinly_scored_pool_rows_out_of_the_task_prior(toy_sentiment):
    class ThinAfter(OrderSensitiveBackend):
        """The label words cover half the probability after the pool texts in `thin_texts`."""

        def __init__(self, thin_texts):
            super().__init__()
            self.thin_texts = thin_texts

        def score_with_mass(self, prompts, contexts, continuations):
            scores = self.score(prompts, contexts, continuations)
            return [(logprobs, 0.5 if any(text in context for text in self.thin_texts) else 1.0)
                    for logprobs, context in zip(scores, contexts, strict=True)]

    def prior(thin_texts, min_label_mass):
        augmenter = GPT3MixAugmenter(ThinAfter(thin_texts), toy_sentiment, SST2, label_mode="debiased", seed=1,
                                     min_label_mass=min_label_mass)
        return augmenter, augmenter.labeller.task_prior()

    thin = [toy_sentiment[0]["text"], toy_sentiment[3]["text"]]
    augmenter, strict = prior(thin, 0.9)
    assert prior(thin, 0.0)[1] != pytest.approx(strict)
    # The prior is the mean over the rows left, each row's distributions scored as the prior scores them.
    kept = []
    for row in rows(toy_sentiment):
        if row["text"] in thin:
            continue
        prompts = [prompt for prompt, _ in backend_scored(augmenter, row["text"])]
        contexts = [f" {row['text']} (Sentiment:"] * len(prompts)
        scores = OrderSensitiveBackend().score(prompts, contexts, [" negative", " positive"])
        kept.append(mean_distribution([normalize_logprobs(s) for s in scores]))
    assert strict == pytest.approx(mean_distribution(kept), abs=1e-9)
    with pytest.raises(ValueError, match=r"No pool row could be scored .* under min_label_mass=0.9\): check the "
                                         r"verbalizer words and min_label_mass"):
        prior(list(toy_sentiment["text"]), 0.9)


def test_an_unknown_setting_names_the_closest_one(toy_sentiment):
    with pytest.raises(TypeError, match="unknown setting 'ratoi': did you mean 'ratio'"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, ratoi=5)
    with pytest.raises(ValueError, match="either as config= or as keyword arguments"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, config=AugmenterConfig(), ratio=5)


def test_dry_run_shows_the_prompts_and_seeds_that_are_sent(toy_sentiment):
    class Recording(ScriptedBackend):
        def generate(self, prompts, seeds, sampling):
            self.sent.extend(zip(prompts, seeds, strict=True))
            return super().generate(prompts, seeds, sampling)

    backend = Recording(parse_rate=0.5)
    backend.sent = []
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2, seed=5, max_attempts=3)
    augmenter(toy_sentiment.to_dict())
    planned = augmenter.dry_run(toy_sentiment, attempts=3)
    assert len(planned) == len(toy_sentiment) * 2 * 3
    plans = {(p["prompt"], p["seed"]): p for p in planned}
    assert len(backend.sent) > len(toy_sentiment) * 2  # some rows were tried again
    assert all(sent in plans for sent in backend.sent)
    first = {(p["prompt"], p["seed"]) for p in planned if p["attempt"] == 0}
    assert first <= set(backend.sent)
    with pytest.raises(ValueError, match=r"attempts must be a whole number in \[1, max_attempts=3\]"):
        augmenter.dry_run(toy_sentiment, attempts=4)


def test_dry_run_reads_a_dataset_as_augment_does(toy_sentiment, caplog):
    # A dataset whose labels are in another order, with a duplicate row: dry_run plans what augment() sends.
    names = toy_sentiment.features["label"].names
    texts = [toy_sentiment[0]["text"], toy_sentiment[0]["text"], toy_sentiment[1]["text"]]
    labels = [names[toy_sentiment[0]["label"]]] * 2 + [names[toy_sentiment[1]["label"]]]
    reordered = list(reversed(names))
    rows_ = make_dataset(texts, [reordered.index(label) for label in labels], reordered)
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2, seed=5)  # first attempts
    with caplog.at_level(logging.WARNING):
        planned = augmenter.dry_run(rows_)
        # One row of one class: its prompts still show the pool's classes.
        augmenter.dry_run(rows_.select([0]))
    # A Dataset is not a stream: its labels have names.
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    made = augmenter.augment(rows_, load_from_cache_file=False)
    assert [p["source_ids"] for p in planned] == made["source_ids"]
    # Each row's own label word is in its prompt; the duplicate is planned as another row.
    marker = SST2.label_type.capitalize()
    assert all(f"({marker}: {label})" in p["prompt"] for p, label in zip(planned, labels, strict=True))
    assert planned[0]["seed"] != planned[1]["seed"]


def test_a_numpy_formatted_dataset_with_numbered_duplicates_maps_as_a_plain_one(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), toy_sentiment, SST2)
    numbered = number_duplicates(toy_sentiment)
    settings = {"batched": True, "remove_columns": numbered.column_names, "features": augmenter.features,
                "load_from_cache_file": False}
    plain = numbered.map(augmenter, **settings)
    formatted = numbered.with_format("numpy").map(augmenter, **settings)
    assert formatted.with_format(None)["text"] == plain["text"]
