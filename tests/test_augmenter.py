import logging

import numpy as np
import pytest
from conftest import ScriptedBackend, build_tiny_lm, make_dataset
from datasets import ClassLabel, Dataset, load_dataset

from gpt3mix_hf import GPT3MixAugmenter, SamplingConfig, TaskSpec, TransformersBackend, concatenate_with_real
from gpt3mix_hf.data import class_balanced_sample, load_benchmark

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


def test_hard_labels_are_the_labels_the_lm_wrote(toy_sentiment):
    synthetic = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, label_mode="hard").augment()
    for row in rows(synthetic):
        assert row["label"] == row["written_label"]
        assert row["soft_labels"] == [1.0 if i == row["label"] else 0.0 for i in range(2)]
        assert row["generation"].endswith(f"(Sentiment: {['negative', 'positive'][row['label']]})")


def test_fractional_ratio_is_a_per_row_coin_flip():
    labels = [i % 2 for i in range(200)]
    big = make_dataset([f"review number {i}" for i in range(200)], labels, ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), big, SST2, ratio=1.5)
    assert 260 <= augmenter.augment().num_rows <= 340


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
    mapped = toy_sentiment.map(augmenter, batched=True, with_indices=True, remove_columns=toy_sentiment.column_names,
                               features=augmenter.features)
    assert len(mapped) == 6
    with pytest.raises(ValueError, match="with_indices=True"):
        toy_sentiment.map(augmenter, batched=True, remove_columns=toy_sentiment.column_names)


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
    # A run that died after its first shard: the other shards are gone, and only they are made again.
    for shard in sorted(tmp_path.glob("shard-*"))[1:]:
        for path in sorted(shard.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        shard.rmdir()
    resumed = GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2).augment(
        checkpoint_dir=tmp_path, shard_size=2, load_from_cache_file=False
    )
    assert rows(resumed) == rows(first)
    assert 0 < backend.calls - calls < calls
    with pytest.raises(ValueError, match="other settings"):
        GPT3MixAugmenter(backend, toy_sentiment, SST2, ratio=2, seed=9).augment(checkpoint_dir=tmp_path, shard_size=2)


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


@pytest.mark.parametrize("kwargs", [{"ratio": 0}, {"label_mode": "argmax"}, {"max_attempts": 0},
                                    {"selection": "nearest"}])
def test_bad_settings(toy_sentiment, kwargs):
    with pytest.raises(ValueError):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, SST2, **kwargs)


# -- with a real (tiny, random) model --------------------------------------------------------------------


def test_label_word_that_is_a_token_prefix_of_another_is_refused(tiny_lm_dir, toy_sentiment):
    spec = TaskSpec("movie review", "sentiment", {"negative": "not good", "positive": "not"})
    with pytest.raises(ValueError, match="prefix"):
        GPT3MixAugmenter(TransformersBackend.from_pretrained(str(tiny_lm_dir)), toy_sentiment, spec)


def test_examples_too_long_for_the_context_are_shortened(tmp_path, caplog):
    backend = TransformersBackend.from_pretrained(str(build_tiny_lm(tmp_path, max_position_embeddings=96)))
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
    augmenter = GPT3MixAugmenter(TransformersBackend.from_pretrained(str(tiny_lm_dir)), toy_sentiment, SST2,
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
        backend = TransformersBackend.from_pretrained(str(tiny_lm_dir))
        settings = {"spec": SST2, "sampling": sampling, "max_attempts": 1} | kwargs
        augmenter = GPT3MixAugmenter(backend, train, **settings)
        return train.map(augmenter, batched=True, with_indices=True, remove_columns=train.column_names,
                         features=augmenter.features)

    first = run()
    assert run()._fingerprint == first._fingerprint
    assert run().cache_files == first.cache_files
    changed = {run(seed=1)._fingerprint, run(k=3)._fingerprint, run(label_mode="hard")._fingerprint,
               run(sampling=SamplingConfig(max_new_tokens=5))._fingerprint,
               run(spec=TaskSpec.from_preset("cr"))._fingerprint}
    assert first._fingerprint not in changed and len(changed) == 5


# -- the embedded default model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sst2_sample(data_dir):
    return class_balanced_sample(load_benchmark("sst2", "train", data_dir=data_dir), per_class=2, seed=0)


@pytest.mark.slow
def test_smollm2_same_rows_whatever_batch_size_or_num_proc(sst2_sample):
    sampling = SamplingConfig(max_new_tokens=40)

    def run(batch_size, num_proc, generation_batch_size):
        backend = TransformersBackend.from_pretrained("smollm2", batch_size=generation_batch_size)
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


def test_tiny_model_same_rows_with_two_processes(tiny_lm_dir, toy_sentiment):
    backend = TransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=2)
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, SST2, sampling=SamplingConfig(max_new_tokens=5),
                                 max_attempts=2)
    one = augmenter.augment(batch_size=2)
    one_failures = augmenter.report.failures
    two = augmenter.augment(batch_size=3, num_proc=2, load_from_cache_file=False)
    assert rows(two) == rows(one)
    assert augmenter.report.failures == one_failures
