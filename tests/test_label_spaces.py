"""Label spaces are compared by name wherever a dataset meets the pool (map, augment), the trainer or the eval set
(the harness's loader): the same names in another order are remapped or refused, never shown flipped; label
columns of names, fractions or mixed kinds get a message that says how to encode them."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ScriptedBackend, make_dataset
from datasets import ClassLabel, Dataset, Features, IterableDataset, Sequence, Value
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from gpt3mix_hf import (
    GPT3MixAugmenter,
    GPT3MixConfig,
    GPT3MixTrainer,
    GPT3MixTrainingArguments,
    TaskSpec,
    make_augmenter,
)
from gpt3mix_hf.data import DataSourceArguments, align_label_names, encode_labels, load_split
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.training.label_columns import SoftLabelCollator

NAMES = ["negative", "positive"]
TEXTS = ["a gripping film .", "dull and long .", "the best of the year .", "an embarrassment ."]
LABELS = [1, 0, 1, 0]
SST2 = TaskSpec.from_preset("sst2")


def _flipped(texts=TEXTS, labels=LABELS) -> Dataset:
    """The same rows with ClassLabel(["positive", "negative"]): each row keeps its class, not its id."""
    return make_dataset(texts, [1 - label for label in labels], ["positive", "negative"])


def _augmenter(**kwargs) -> GPT3MixAugmenter:
    options = {"k": 1, "selection": "anchored", "keep_prompt": True, "max_attempts": 1} | kwargs
    return GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), make_dataset(TEXTS, LABELS, NAMES), SST2, **options)


def _anchor_lines(prompts: list[str]) -> list[str]:
    return [prompt.splitlines()[1] for prompt in prompts]


@pytest.mark.parametrize("prepare", [
    lambda dataset: dataset,
    lambda dataset: dataset.shuffle(seed=1),
    lambda dataset: dataset.select([2, 0, 3]),
], ids=["as is", "shuffled", "selected"])
def test_map_remaps_a_reordered_class_label_by_name(prepare):
    augmenter = _augmenter()
    flipped = prepare(_flipped())
    mapped = flipped.map(augmenter, batched=True, batch_size=2, remove_columns=flipped.column_names,
                         features=augmenter.features)
    shown = _anchor_lines(mapped["prompt"])
    for text, label, line in zip(flipped["text"], flipped["label"], shown, strict=True):
        own = flipped.features["label"].int2str(label)
        assert line == f"Movie review: {text} (Sentiment: {own})"


def test_map_refuses_other_classes():
    augmenter = _augmenter()
    other = make_dataset(TEXTS, LABELS, ["bad", "good"])
    with pytest.raises(ValueError, match=r"labels are \['bad', 'good'\], the pool's \['negative', 'positive'\]"):
        other.map(augmenter, batched=True, remove_columns=other.column_names, features=augmenter.features)


def test_augment_remaps_by_name_and_gives_the_rows_of_the_pools_order():
    augmenter = _augmenter()
    flipped = augmenter.augment(_flipped())
    same = augmenter.augment(make_dataset(TEXTS, LABELS, NAMES))
    assert flipped["prompt"] == same["prompt"] and flipped["text"] == same["text"]
    with pytest.raises(ValueError, match="not the same classes"):
        augmenter.augment(make_dataset(TEXTS, LABELS, ["bad", "good"]))
    rows = augmenter.augment(pool=_flipped())
    assert len(rows) == len(TEXTS)


def test_align_label_names_keeps_each_rows_class():
    flipped = _flipped()
    aligned = align_label_names(flipped, "label", NAMES)
    assert aligned.features["label"].names == NAMES
    assert [aligned.features["label"].int2str(i) for i in aligned["label"]] == \
        [flipped.features["label"].int2str(i) for i in flipped["label"]]


def test_the_harness_loader_remaps_an_eval_split_by_name():
    encoded = encode_labels(_flipped(), "text", "label", origin="test", names=NAMES)
    assert encoded.features["label"].names == NAMES and encoded["label"] == LABELS


def test_mixed_int_and_str_labels_say_how_to_encode(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": "positive"}, {"text": "c", "label": 0}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match=r"train.jsonl.*mixes kinds of values.*all as label names"):
        load_split(DataSourceArguments(dataset=str(path)), "train")
    path.write_text("".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in (("a", 0.7), ("b", 1.0))))
    with pytest.raises(ValueError, match="holds fractions"):
        load_split(DataSourceArguments(dataset=str(path)), "train")
    path.write_text("".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in (("a", True), ("b", False))))
    with pytest.raises(ValueError, match="holds true/false values"):
        load_split(DataSourceArguments(dataset=str(path)), "train")


def test_whole_number_float_labels_are_integer_ids(tmp_path):
    # A reader may give 1 as 1.0: the class is "1", as in a split written with integers.
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in (("a", 1.0), ("b", 0.0))))
    loaded = load_split(DataSourceArguments(dataset=str(path)), "train")
    assert loaded.features["label"].names == ["0", "1"] and loaded["label"] == [1, 0]
    integers = tmp_path / "test.jsonl"
    integers.write_text("".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in (("c", 1), ("d", 0))))
    assert load_split(DataSourceArguments(dataset=str(integers)), "train", names=["0", "1"])["label"] == [1, 0]


# -- the trainer ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_classifier("minilm"))


def _model(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config)


def _args(tmp_path, **kwargs):
    return GPT3MixTrainingArguments(str(tmp_path / "out"), report_to="none", use_cpu=True, **kwargs)


@pytest.mark.parametrize("labels, message", [
    (["positive", "negative", "positive", "negative"], r"'positive', a name.*class_encode_column\('label'\)"),
    ([0.7, 0.2, 1.5, 0.0], r"0.7, a fraction.*soft_labels"),
])
def test_the_trainer_refuses_labels_that_are_not_class_ids(tokenizer, tmp_path, labels, message):
    train = Dataset.from_dict({"text": TEXTS, "label": labels})
    with pytest.raises(ValueError, match=message):
        GPT3MixTrainer(_model(tokenizer), _args(tmp_path, eval_strategy="no", early_stopping_patience=None),
                       train_dataset=train, processing_class=tokenizer)


def test_a_streamed_name_label_is_refused_by_the_collator():
    collator = SoftLabelCollator(lambda features: {}, num_labels=2)
    with pytest.raises(ValueError, match=r"'positive', a name.*class_encode_column"):
        collator([{"input_ids": [1, 2], "label": "positive"}])
    with pytest.raises(ValueError, match="a fraction"):
        collator([{"input_ids": [1, 2], "label": 0.5}])


def test_the_trainer_compares_eval_label_names_by_name(tokenizer, tmp_path):
    train = make_dataset(TEXTS, LABELS, NAMES)
    with pytest.raises(ValueError, match=r"differ from train_dataset's.*align_label_names\(eval_dataset"):
        GPT3MixTrainer(_model(tokenizer), _args(tmp_path), train_dataset=train, eval_dataset=_flipped(),
                       processing_class=tokenizer)


def test_an_eval_set_without_labels_is_refused_when_the_trainer_is_built(tokenizer, tmp_path):
    train = make_dataset(TEXTS, LABELS, NAMES)
    unlabelled = Dataset.from_dict({"text": TEXTS})
    with pytest.raises(ValueError, match=r"eval_dataset has no labels: it has the columns \['text'\]"):
        GPT3MixTrainer(_model(tokenizer), _args(tmp_path), train_dataset=train, eval_dataset=unlabelled,
                       processing_class=tokenizer)
    features = Features({"text": Value("string")})
    stream = IterableDataset.from_generator(lambda: iter([{"text": "a"}]), features=features)
    with pytest.raises(ValueError, match="eval_dataset has no labels"):
        GPT3MixTrainer(_model(tokenizer), _args(tmp_path), train_dataset=train, eval_dataset=stream,
                       processing_class=tokenizer)


def test_concatenate_with_real_aligns_synthetic_rows_and_their_soft_labels_by_name():
    from gpt3mix_hf import concatenate_with_real

    real = make_dataset(TEXTS, LABELS, NAMES)
    features = Features({"text": Value("string"), "label": ClassLabel(names=["positive", "negative"]),
                         "soft_labels": Sequence(Value("float32"))})
    synthetic = Dataset.from_dict({"text": ["lovely", "awful"], "label": [0, 1],
                                   "soft_labels": [[0.9, 0.1], [0.2, 0.8]]}, features=features)
    mixed = concatenate_with_real(real, synthetic).filter(lambda row: row["is_synthetic"])
    assert [mixed.features["label"].int2str(i) for i in mixed["label"]] == ["positive", "negative"]
    for row, expected in zip(mixed["soft_labels"], [[0.1, 0.9], [0.8, 0.2]], strict=True):
        assert row == pytest.approx(expected)
    other = synthetic.cast_column("label", ClassLabel(names=["bad", "good"]))
    with pytest.raises(ValueError, match="not the same classes"):
        concatenate_with_real(real, other)


def test_the_trainer_refuses_a_model_whose_id2label_is_the_datas_classes_in_another_order(tokenizer, tmp_path):
    model = _model(tokenizer)
    model.config.id2label = {0: "positive", 1: "negative"}
    model.config.label2id = {"positive": 0, "negative": 1}
    with pytest.raises(ValueError, match=r"id2label lists \['positive', 'negative'\].*another order"):
        GPT3MixTrainer(model, _args(tmp_path, eval_strategy="no", early_stopping_patience=None),
                       train_dataset=make_dataset(TEXTS, LABELS, NAMES), processing_class=tokenizer)
    GPT3MixTrainer(_model(tokenizer), _args(tmp_path, eval_strategy="no", early_stopping_patience=None),
                   train_dataset=make_dataset(TEXTS, LABELS, NAMES), processing_class=tokenizer)


def test_regeneration_aligns_rows_of_the_files_classes_by_name():

    augmenter = _augmenter()
    config = GPT3MixConfig.from_augmenter(augmenter, make_dataset(TEXTS, LABELS, NAMES))
    rebuilt = make_augmenter(config, dataset=_flipped(), backend=ScriptedBackend(parse_rate=1.0))
    assert rebuilt.label_names == NAMES
    assert rebuilt.augment()["prompt"] == augmenter.augment()["prompt"]


def test_map_remaps_by_name_in_worker_processes_and_warns_for_streams(caplog):
    import logging

    augmenter = _augmenter()
    flipped = _flipped()
    mapped = flipped.map(augmenter, batched=True, batch_size=1, num_proc=2, remove_columns=flipped.column_names,
                         features=augmenter.features)
    for text, label, line in zip(flipped["text"], flipped["label"], _anchor_lines(mapped["prompt"]), strict=True):
        assert line == f"Movie review: {text} (Sentiment: {flipped.features['label'].int2str(label)})"
    logger = logging.getLogger("gpt3mix_hf")
    logger.addHandler(caplog.handler)
    # The warning is logged once per process (transformers' warning_once): another test in this worker may have
    # had it already.
    logging.Logger.warning_once.cache_clear()
    try:
        list(flipped.to_iterable_dataset().map(augmenter, batched=True, remove_columns=flipped.column_names,
                                               features=augmenter.features))
    finally:
        logger.removeHandler(caplog.handler)
    assert "label ids without label names (a streaming dataset)" in caplog.text
