import math

import pytest
from conftest import ScriptedBackend, make_dataset
from datasets import ClassLabel, Dataset, DatasetDict, Features, IterableDataset, Sequence, Value
from hypothesis import given
from hypothesis import strategies as st
from transformers.testing_utils import CaptureLogger

from gpt3mix_hf import GPT3MixAugmenter, TaskSpec
from gpt3mix_hf.data import (
    check_columns,
    class_balanced_sample,
    concatenate_with_real,
    has_visible_text,
    read_labelled_rows,
    rename_columns_to,
    training_features,
)
from gpt3mix_hf.data.columns import logger as data_logger

NAMES = ["negative", "positive"]
SST2 = TaskSpec.from_preset("sst2")


def synthetic_rows(texts, labels, soft_labels, names=NAMES) -> Dataset:
    """Rows shaped as `dataset.map(augmenter, ...)` writes them, failed rows (label -1) included."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=names),
                         "soft_labels": Sequence(Value("float32"))})
    return Dataset.from_dict({"text": texts, "label": labels, "soft_labels": soft_labels}, features=features)


# -- training_features -----------------------------------------------------------------------------------


def test_training_features():
    features = training_features(NAMES)
    assert list(features) == ["text", "label", "soft_labels"]
    assert features["label"].names == NAMES
    assert list(training_features(NAMES, is_synthetic=True)) == ["text", "label", "soft_labels", "is_synthetic"]


# -- check_columns ---------------------------------------------------------------------------------------


def test_check_columns_returns_the_label_feature(toy_sentiment):
    assert check_columns(toy_sentiment, "text", "label").names == NAMES


def test_a_dataset_dict_names_the_split_to_pass(toy_sentiment):
    with pytest.raises(TypeError, match=r"splits \['train', 'test'\].*dataset\['train'\]"):
        check_columns(DatasetDict(train=toy_sentiment, test=toy_sentiment))


def test_something_else_than_a_dataset_is_refused():
    with pytest.raises(TypeError, match="got list"):
        check_columns([{"text": "a", "label": 0}])


def test_a_missing_column_names_the_argument(toy_sentiment):
    with pytest.raises(ValueError, match=r"no column 'sentence' \(it has \['text', 'label'\]\).*text_column="):
        check_columns(toy_sentiment, "sentence", "label")
    with pytest.raises(ValueError, match="label_column="):
        check_columns(toy_sentiment, "text", "coarse_label")


def test_a_non_string_text_column_gets_its_own_message():
    dataset = Dataset.from_dict({"text": [1, 2], "label": [0, 1]}).cast_column("label", ClassLabel(names=NAMES))
    with pytest.raises(ValueError, match=r"holds Value\('int64'\), not strings.*cast_column\('text', Value"):
        check_columns(dataset)


def test_string_labels_say_how_to_encode():
    dataset = Dataset.from_dict({"text": ["a", "b"], "label": ["positive", "negative"]})
    with pytest.raises(ValueError, match="class_encode_column"):
        check_columns(dataset)


def test_no_rows_is_refused():
    with pytest.raises(ValueError, match="has no rows"):
        check_columns(make_dataset([], [], NAMES), name="train_dataset")


@pytest.mark.parametrize("blank", ["", "   ", "\t\n", "\u200b", "\u00a0", "\ufeff", "\u00a0\u200b\ufeff\u2060", None])
def test_a_text_without_a_visible_character_is_empty(blank):
    dataset = make_dataset(["good", blank, "bad"], [1, 0, 0], NAMES)
    with pytest.raises(ValueError, match=r"1 row\(s\) of the dataset have an empty text \(first: \[1\]\)"):
        check_columns(dataset)
    assert check_columns(dataset, rows=False).names == NAMES


@given(st.text(st.characters(whitelist_categories=("Zs", "Zl", "Zp", "Cc", "Cf", "Mn"))))
def test_whitespace_format_and_control_characters_alone_are_never_visible(text):
    assert not has_visible_text(text)


@given(st.text(), st.characters(whitelist_categories=("L", "N", "P", "S")).filter(lambda c: c not in "\u3164\uffa0"))
def test_one_letter_digit_punctuation_or_symbol_is_visible(blank, char):
    assert has_visible_text(f"{blank}{char}{blank}")


def test_a_row_without_a_label_is_refused():
    dataset = make_dataset(["good", "bad"], [1, -1], NAMES)
    with pytest.raises(ValueError, match=r"1 row\(s\) of the dataset have no label .*first rows: \[1\], labels \[-1"):
        check_columns(dataset)


def test_one_class_label_sets_warn(toy_sentiment):
    one_name = make_dataset(["good", "fine"], [0, 0], ["positive"])
    with CaptureLogger(data_logger) as captured:
        check_columns(one_name)
    assert "has 1 class(es) ['positive']" in captured.out
    one_class = make_dataset(["good", "fine"], [1, 1], NAMES)
    with CaptureLogger(data_logger) as captured:
        check_columns(one_class, name="train_dataset")
    assert "Every row of train_dataset has the label 'positive'" in captured.out
    with CaptureLogger(data_logger) as captured:
        check_columns(toy_sentiment)
    assert captured.out == ""


def test_a_stream_is_checked_by_its_columns_without_being_read(toy_sentiment):
    assert check_columns(toy_sentiment.to_iterable_dataset()).names == NAMES

    def rows():
        yield {"text": "a", "label": 0}

    with pytest.raises(ValueError, match="features are unknown"):
        check_columns(IterableDataset.from_generator(rows))


def test_the_label_column_alone(toy_sentiment):
    only_labels = toy_sentiment.remove_columns("text")
    assert check_columns(only_labels, None, "label").names == NAMES


# -- read_labelled_rows ----------------------------------------------------------------------------------


def test_read_labelled_rows_gives_texts_label_ids_and_the_class_label(toy_sentiment):
    texts, labels, feature = read_labelled_rows(toy_sentiment, "text", "label")
    assert texts == toy_sentiment["text"] and labels == [1, 0, 1, 0, 1, 0]
    assert feature.names == NAMES


def test_read_labelled_rows_refuses_a_stream_and_checks_every_row(toy_sentiment):
    with pytest.raises(TypeError, match="not a stream"):
        read_labelled_rows(toy_sentiment.to_iterable_dataset(), "text", "label")
    with pytest.raises(ValueError, match="empty text"):
        read_labelled_rows(make_dataset(["good", " "], [1, 0], NAMES), "text", "label")


# -- rename_columns_to -----------------------------------------------------------------------------------


def test_rename_columns_to_names_text_and_label_and_keeps_only_them(toy_sentiment):
    reviews = toy_sentiment.rename_columns({"text": "review", "label": "stars"}).add_column("id", list(range(6)))
    renamed = rename_columns_to(reviews, "review", "stars")
    assert renamed.column_names == ["text", "label"]
    assert renamed["text"] == toy_sentiment["text"] and renamed["label"] == toy_sentiment["label"]
    assert renamed.features["label"].names == NAMES


def test_rename_columns_to_a_datasets_own_names_keeps_the_other_columns(toy_sentiment):
    numbered = toy_sentiment.add_column("id", list(range(6)))
    renamed = rename_columns_to(numbered, "text", "label", text="review", label="stars", select=False)
    assert renamed.column_names == ["review", "stars", "id"]
    assert renamed["review"] == toy_sentiment["text"]


def test_rename_columns_to_leaves_names_that_already_match(toy_sentiment):
    assert rename_columns_to(toy_sentiment, "text", "label", select=False) is toy_sentiment
    half = rename_columns_to(toy_sentiment.rename_column("label", "stars"), "text", "stars")
    assert half.column_names == ["text", "label"]


# -- concatenate_with_real -------------------------------------------------------------------------------


def test_concatenate_with_real_drops_failed_synthetic_rows_and_says_how_many(toy_sentiment):
    synthetic = synthetic_rows(
        ["kept one", "", "no label", "\u200b\u00a0", "no soft label", "kept two"],
        [1, 0, -1, 1, 0, 0],
        [[0.2, 0.8], [0.6, 0.4], [], [0.1, 0.9], [], [0.7, 0.3]],
    )
    with CaptureLogger(data_logger) as captured:
        mixed = concatenate_with_real(toy_sentiment, synthetic)
    assert "Dropped 4 of 6 synthetic rows" in captured.out
    assert "1 with no label, 2 with no visible text, 1 with an empty soft label" in captured.out
    assert mixed.column_names == ["text", "label", "soft_labels", "is_synthetic"]
    assert list(mixed["text"]) == list(toy_sentiment["text"]) + ["kept one", "kept two"]
    assert list(mixed["is_synthetic"]) == [False] * len(toy_sentiment) + [True, True]
    assert list(mixed["label"])[-2:] == [1, 0]
    assert mixed["soft_labels"][-1] == pytest.approx([0.7, 0.3])
    assert mixed[0]["soft_labels"] == [0.0, 1.0]
    assert mixed.features == training_features(NAMES, is_synthetic=True)


def test_concatenate_with_real_on_the_augmenters_own_map_output(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.3), toy_sentiment, SST2, ratio=3, max_attempts=1)
    mapped = toy_sentiment.map(augmenter, batched=True, with_indices=True, remove_columns=toy_sentiment.column_names,
                               features=augmenter.features)
    failed = sum(label < 0 for label in mapped["label"])
    assert failed > 0  # the backend fails 70 % of attempts: some rows must have failed
    mixed = concatenate_with_real(toy_sentiment, mapped)
    assert len(mixed) == len(toy_sentiment) + len(mapped) - failed
    assert min(mixed["label"]) >= 0
    assert all(math.isclose(sum(soft), 1.0, abs_tol=1e-5) for soft in mixed["soft_labels"])


def test_concatenate_with_real_refuses_other_label_names(toy_sentiment):
    synthetic = synthetic_rows(["x"], [0], [[1.0, 0.0]], names=["bad", "good"])
    with pytest.raises(ValueError, match="Label names differ"):
        concatenate_with_real(toy_sentiment, synthetic)


def test_concatenate_with_real_needs_soft_labels(toy_sentiment):
    with pytest.raises(ValueError, match="'soft_labels'"):
        concatenate_with_real(toy_sentiment, toy_sentiment)


@pytest.mark.parametrize(("soft", "message"), [([0.2, 0.3, 0.5], "3 soft-label values for 2"),
                                               ([math.nan, 1.0], "NaN or infinite")])
def test_concatenate_with_real_refuses_soft_labels_that_are_not_failures(toy_sentiment, soft, message):
    with pytest.raises(ValueError, match=message):
        concatenate_with_real(toy_sentiment, synthetic_rows(["x"], [0], [soft]))


def test_concatenate_with_real_checks_the_real_rows():
    real = make_dataset(["good", " "], [1, 0], NAMES)
    with pytest.raises(ValueError, match=r"row\(s\) of real have an empty text"):
        concatenate_with_real(real, synthetic_rows(["x"], [0], [[1.0, 0.0]]))


# -- class_balanced_sample -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"fraction": math.nan}, {"fraction": math.inf}, {"fraction": 0},
                                    {"fraction": "0.5"}, {"per_class": 1.5}, {"per_class": True}, {"per_class": 0}])
def test_class_balanced_sample_refuses_bad_numbers(toy_sentiment, kwargs):
    with pytest.raises(ValueError, match="fraction|per_class"):
        class_balanced_sample(toy_sentiment, **kwargs)


def test_class_balanced_sample(toy_sentiment):
    sample = class_balanced_sample(toy_sentiment, per_class=2, seed=1)
    assert sorted(sample["label"]) == [0, 0, 1, 1]


def test_a_benchmark_the_hub_cannot_give_names_the_local_way(monkeypatch):
    from gpt3mix_hf.data import loading

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'SetFit/sst2' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(loading, "load_dataset", offline)
    with pytest.raises(ConnectionError, match=r"--data_dir\), a folder with sst2/test.jsonl"):
        loading.load_benchmark("sst2", "test")
