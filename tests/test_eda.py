"""EDA on real WordNet (set up by scripts/setup_wordnet.sh): labels kept, text changed, seeded."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_dataset
from datasets import Value

from gpt3mix_hf.experiment.baselines.eda import (
    EDA,
    STOP_WORDS,
    EDAAugmenter,
    clean_text,
    load_wordnet,
    wordnet_data_dir,
)

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup_wordnet.sh"


@pytest.fixture(scope="module")
def eda() -> EDA:
    if not (wordnet_data_dir() / "corpora" / "wordnet" / "lexnames").exists():
        # Idempotent; installs Debian's WordNet when it is missing (make test runs it first anyway).
        subprocess.run(["bash", str(SETUP)], check=True)
    load_wordnet.cache_clear()
    return EDA()


def test_missing_wordnet_is_a_one_line_user_error_with_the_way_to_install_it(tmp_path):
    # The CLI reports OSErrors in one line (a bug gets a traceback): a missing WordNet is one.
    code = ("from gpt3mix_hf.experiment.baselines.eda import load_wordnet\n"
            "try:\n    load_wordnet()\nexcept OSError as error:\n    print(type(error).__name__, error)\n"
            "else:\n    print('found')")
    env = {**os.environ, "GPT3MIX_HF_CACHE": str(tmp_path), "NLTK_DATA": str(tmp_path), "HOME": str(tmp_path)}
    answer = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if answer.stdout.strip() == "found":
        pytest.skip("WordNet is installed in one of nltk's system folders")
    assert answer.stdout.startswith("WordNetNotFoundError WordNet is not installed where nltk looks")
    assert "scripts/setup_wordnet.sh" in answer.stdout and "nltk.downloader wordnet" in answer.stdout


def test_wordnet_is_real(eda):
    # Real WordNet 3.0 synonyms, cleaned as the reference code does ("good" has dozens of lemmas).
    assert "commodity" in eda.synonyms("good")
    assert "well" in eda.synonyms("good")
    assert "good" not in eda.synonyms("good")
    assert eda.synonyms("zzzqqq") == []


def test_clean_text_matches_reference():
    assert clean_text("It's a GREAT, well-made film!\n") == "its a great well made film"


def test_operations(eda):
    words = "the film is a gripping and funny story about a lonely man".split()
    rng = random.Random(0)
    swapped = eda.random_swap(words, 2, rng)
    assert sorted(swapped) == sorted(words) and swapped != words
    deleted = eda.random_deletion(words, 0.5, random.Random(1))
    assert 0 < len(deleted) < len(words) and all(w in words for w in deleted)
    assert eda.random_deletion(["alone"], 0.99, rng) == ["alone"]
    inserted = eda.random_insertion(words, 2, random.Random(2))
    assert len(inserted) == len(words) + 2
    replaced = eda.synonym_replacement(words, 1, random.Random(3))
    changed = [(a, b) for a, b in zip(words, replaced, strict=False) if a != b]
    assert replaced != words
    # Stop words are never the word replaced.
    assert changed and changed[0][0] not in STOP_WORDS


def test_augmenter_keeps_labels_and_changes_text(eda, toy_sentiment):
    augmenter = EDAAugmenter(num_aug=4, seed=0)
    synthetic = augmenter.augment(toy_sentiment)
    assert len(synthetic) == 4 * len(toy_sentiment)
    assert synthetic.features["label"].names == toy_sentiment.features["label"].names
    originals = [clean_text(text) for text in toy_sentiment["text"]]
    for i, row in enumerate(synthetic):
        source = i // 4
        assert row["label"] == toy_sentiment[source]["label"]
        assert row["soft_labels"] == [1.0 if j == row["label"] else 0.0 for j in range(2)]
    changed = sum(row["text"] != originals[i // 4] for i, row in enumerate(synthetic))
    assert changed >= 0.75 * len(synthetic)


def test_augmenter_is_seeded(eda, toy_sentiment):
    first = EDAAugmenter(num_aug=3, seed=7).augment(toy_sentiment)["text"]
    again = EDAAugmenter(num_aug=3, seed=7).augment(toy_sentiment, batch_size=2)["text"]
    other = EDAAugmenter(num_aug=3, seed=8).augment(toy_sentiment)["text"]
    assert list(first) == list(again)
    assert list(first) != list(other)


def test_bad_inputs(toy_sentiment):
    with pytest.raises(ValueError, match="num_aug"):
        EDAAugmenter(num_aug=0)
    with pytest.raises(ValueError, match="switched off"):
        EDAAugmenter(alpha_sr=0, alpha_ri=0, alpha_rs=0, p_rd=0)
    with pytest.raises(ValueError, match="ClassLabel"):
        EDAAugmenter().augment(toy_sentiment.cast_column("label", Value("int64")))
    with pytest.raises(ValueError, match="no column"):
        EDAAugmenter(text_column="sentence").augment(toy_sentiment)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, 1.5, "0.1", None])
def test_alphas_must_be_numbers_in_the_unit_interval(value):
    with pytest.raises(ValueError, match="alpha_sr must be a number in|EDAAugmenter.alpha_sr="):
        EDAAugmenter(alpha_sr=value)


def test_empty_after_cleaning_keeps_text(eda):
    dataset = make_dataset(["...", "a fine film ."], [0, 1], ["negative", "positive"])
    synthetic = EDAAugmenter(num_aug=2, seed=0).augment(dataset)
    assert synthetic["text"][:2] == ["...", "..."]
