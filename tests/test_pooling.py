"""Pooling that matches the encoder: a sentence-transformers folder gets mean pooling, a plain BERT keeps its pooler;
the pooled model trains, and saves and reloads as a normal transformers model."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    Trainer,
    TrainingArguments,
)

from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
from gpt3mix_hf.training.classification import load_classifier, tokenize_dataset
from gpt3mix_hf.training.pooling import PooledBertForSequenceClassification, checkpoint_pooling, mean_pool
from gpt3mix_hf.training.trainer import GPT3MixTrainer

NAMES = ["negative", "positive"]
TEXTS = ["a gripping , funny film .", "dull and lifeless .", "warm and wise , the best this year .", "far too long ."]
LABELS = [1, 0, 1, 0]


def save_tiny_bert(folder, tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sentence_transformers_files(folder, **flags):
    """The files sentence-transformers writes beside the encoder: modules.json and 1_Pooling/config.json."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": 16, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, **flags}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_classifier("minilm"))


@pytest.fixture(scope="module")
def plain_bert(tokenizer, tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("plain-bert"), tokenizer)


@pytest.fixture(scope="module")
def sentence_bert(tokenizer, tmp_path_factory):
    return sentence_transformers_files(save_tiny_bert(tmp_path_factory.mktemp("sentence-bert"), tokenizer))


def logits_of(model, tokenizer, texts=TEXTS):
    model.eval()
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def test_checkpoint_pooling_reads_the_sentence_transformers_files(plain_bert, tmp_path, tokenizer):
    assert checkpoint_pooling(plain_bert) is None
    cls_folder = sentence_transformers_files(save_tiny_bert(tmp_path / "cls", tokenizer),
                                             pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    assert checkpoint_pooling(cls_folder) == "cls"
    max_folder = sentence_transformers_files(save_tiny_bert(tmp_path / "max", tokenizer),
                                             pooling_mode_max_tokens=True, pooling_mode_mean_tokens=False)
    with pytest.raises(ValueError, match="pooling_mode_max_tokens"):
        checkpoint_pooling(max_folder)
    with pytest.raises(ValueError, match="pooling='mean'"):
        load_classifier(str(max_folder), NAMES)


def test_sentence_transformers_folder_gets_mean_pooling(sentence_bert, tokenizer):
    model = load_classifier(str(sentence_bert), NAMES)
    assert isinstance(model, PooledBertForSequenceClassification)
    assert model.config.pooling_mode == "mean" and model.config.id2label == {0: "negative", 1: "positive"}
    assert model.dtype == torch.float32
    # The encoder is the checkpoint's, and the head reads the masked mean of its token states.
    encoder = BertModel.from_pretrained(sentence_bert, add_pooling_layer=False).eval()
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert inputs["attention_mask"].min() == 0  # padding present: a plain mean would differ from the masked one
    with torch.no_grad():
        states = encoder(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    by_hand = (states * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(mean_pool(states, inputs["attention_mask"]), by_hand)
    expected = model.classifier(by_hand)
    torch.testing.assert_close(logits_of(model, tokenizer), expected, rtol=1e-5, atol=1e-5)
    first_token = model.classifier(states[:, 0])
    assert not torch.allclose(logits_of(model, tokenizer), first_token, atol=1e-4)


def test_plain_bert_keeps_its_pooler(plain_bert):
    model = load_classifier(str(plain_bert), NAMES)
    assert type(model) is BertForSequenceClassification
    saved = BertModel.from_pretrained(plain_bert)
    torch.testing.assert_close(model.bert.pooler.dense.weight, saved.pooler.dense.weight)
    # Asking for mean pooling on a plain BERT works too.
    assert load_classifier(str(plain_bert), NAMES, pooling="mean").config.pooling_mode == "mean"
    assert type(load_classifier(str(plain_bert), NAMES, pooling="pooler")) is BertForSequenceClassification
    with pytest.raises(ValueError, match="pooling='max' is not supported"):
        load_classifier(str(plain_bert), NAMES, pooling="max")


def test_pooled_model_loss_under_the_stock_trainer_counts_the_rows_of_the_whole_step(sentence_bert, tokenizer,
                                                                                      tmp_path):
    # The stock Trainer passes num_items_in_batch to a forward that takes **kwargs (gradient accumulation):
    # the loss must be a share of the step's rows, or k micro-batches give k times the gradient.
    model = load_classifier(str(sentence_bert), NAMES).eval()
    inputs = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"), labels=torch.tensor(LABELS))
    with torch.no_grad():
        mean = model(**inputs).loss
        share = model(**inputs, num_items_in_batch=2 * len(TEXTS)).loss
    torch.testing.assert_close(share, mean / 2)
    trainer = Trainer(model, TrainingArguments(str(tmp_path / "stock"), report_to="none", use_cpu=True))
    assert trainer.model_accepts_loss_kwargs


@pytest.mark.parametrize("head", ["default", "mlp"])
def test_pooled_model_trains_and_round_trips(sentence_bert, tokenizer, tmp_path, head):
    model = load_classifier(str(sentence_bert), NAMES, classifier_head=head)
    assert (model.dense is not None) == (head == "mlp")
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = GPT3MixTrainingArguments(
        output_dir=str(tmp_path / "out"), report_to="none", disable_tqdm=True, use_cpu=True, num_train_epochs=1,
        per_device_train_batch_size=4, save_strategy="no", eval_strategy="no", early_stopping_patience=None,
        learning_rate=1e-2, seed=0,
    )
    train = tokenize_dataset(make_dataset(TEXTS, LABELS, NAMES), tokenizer, max_length=32)
    GPT3MixTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer).train()
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "classifier.weight",
                 *(["dense.weight"] if head == "mlp" else [])):
        assert not torch.equal(before[name], dict(model.named_parameters())[name]), name

    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is PooledBertForSequenceClassification
    assert reloaded.config.classifier_head == head and reloaded.config.pooling_mode == "mean"
    assert reloaded.dtype == torch.float32
    torch.testing.assert_close(logits_of(reloaded, tokenizer), logits_of(model, tokenizer), rtol=0, atol=0)


@pytest.mark.slow
def test_minilm_reads_mean_pooling_from_its_wheel():
    path = resolve_classifier("minilm")
    assert checkpoint_pooling(path) == "mean"
    model = load_classifier("minilm", NAMES)
    assert isinstance(model, PooledBertForSequenceClassification) and model.config.pooling_mode == "mean"
