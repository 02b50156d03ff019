"""Fail before the work: what would fail after a long generation or at the first evaluation is said up front."""

from __future__ import annotations

import logging

import pytest
from conftest import ScriptedBackend, make_dataset

from gpt3mix_hf import GPT3MixAugmenter, TaskSpec
from gpt3mix_hf.training.label_columns import validate_soft_labels

TEXTS = ["a gripping film .", "dull and long .", "the best of the year .", "an embarrassment ."]


def test_map_names_remove_columns_before_generating_when_extra_columns_cannot_be_carried(caplog):
    pool = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    backend = ScriptedBackend(parse_rate=1.0)
    augmenter = GPT3MixAugmenter(backend, pool, TaskSpec.from_preset("sst2"), ratio=2)
    extra = pool.add_column("idx", list(range(len(pool))))
    logger = logging.getLogger("gpt3mix_hf")
    logger.addHandler(caplog.handler)
    try:
        with pytest.raises(Exception):  # noqa: B017 - datasets' own (pyarrow) length error
            extra.map(augmenter, batched=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert "remove_columns=dataset.column_names" in caplog.text and "['idx']" in caplog.text
    rows = extra.map(augmenter, batched=True, remove_columns=extra.column_names, features=augmenter.features)
    assert len(rows) == 2 * len(pool)


@pytest.mark.parametrize("rows, message", [
    ([[0.5, 0.5], []], "An empty soft label marks a synthetic row that failed"),
    ([[0.5, 0.5], [1.0]], "at least 2 labels"),
    ([[0.5, 0.5], [0.2, 0.3, 0.5]], "num_labels=3"),
])
def test_soft_label_width_errors_never_suggest_fewer_than_two_labels(rows, message):
    with pytest.raises(ValueError, match=message) as error:
        validate_soft_labels(rows, 2, 1e-3)
    assert "num_labels=0" not in str(error.value) and "num_labels=1" not in str(error.value)


def test_a_metric_the_evaluation_does_not_report_is_refused_when_the_trainer_is_built(tmp_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from gpt3mix_hf import GPT3MixTrainer, GPT3MixTrainingArguments
    from gpt3mix_hf.models import resolve_classifier

    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier("minilm"))
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=2))
    rows = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    args = GPT3MixTrainingArguments(str(tmp_path), report_to="none", use_cpu=True, metric_for_best_model="acc")
    with pytest.raises(ValueError, match=r"metric_for_best_model='acc', but the evaluation reports \[.*'eval_acc"):
        GPT3MixTrainer(model, args, train_dataset=rows, eval_dataset=rows, processing_class=tokenizer)
    args = GPT3MixTrainingArguments(str(tmp_path), report_to="none", use_cpu=True, metric_for_best_model="eval_loss",
                                    greater_is_better=False)
    GPT3MixTrainer(model, args, train_dataset=rows, eval_dataset=rows, processing_class=tokenizer)


def test_max_new_tokens_that_fill_the_context_are_refused_when_the_augmenter_is_built():
    from gpt3mix_hf import SamplingConfig

    class ShortContext(ScriptedBackend):
        max_context = 64

    pool = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    with pytest.raises(ValueError, match="max_new_tokens=60 leaves no room"):
        GPT3MixAugmenter(ShortContext(), pool, sampling=SamplingConfig(max_new_tokens=60))
