"""GPT3MixTrainer, its arguments, metrics and the classification helpers, on tiny BERT classifiers built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TOY_TEXTS
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
    pipeline,
)

from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
from gpt3mix_hf.training.classification import evaluate_classifier, tokenize_dataset, train_classifier
from gpt3mix_hf.training.label_columns import SoftLabelCollator
from gpt3mix_hf.training.losses import kl_divergence, soft_cross_entropy
from gpt3mix_hf.training.trainer import GPT3MixTrainer

NAMES = ["negative", "positive"]
TEXTS = [*TOY_TEXTS, "a small miracle of a movie ."]
LABELS = [1, 0, 1, 0, 1, 0, 1]
SOFT = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.0, 1.0], [1.0, 0.0], [0.45, 0.55]]
SYNTHETIC = [False, True, True, True, False, False, True]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_classifier("minilm"))


def tiny_model(tokenizer, num_labels: int = 2, seed: int = 0, dropout: float = 0.0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def soft_dataset(soft=SOFT, synthetic=SYNTHETIC, texts=TEXTS, labels=LABELS, names=NAMES) -> Dataset:
    features = Features({
        "text": Value("string"),
        "label": ClassLabel(names=names),
        "soft_labels": Sequence(Value("float32")),
        "is_synthetic": Value("bool"),
        "generation": Value("string"),
    })
    return Dataset.from_dict(
        {"text": texts, "label": labels, "soft_labels": soft, "is_synthetic": synthetic,
         "generation": ["raw"] * len(texts)},
        features=features,
    )


def real_dataset(texts=TEXTS, labels=LABELS, names=NAMES) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


def make_args(tmp_path, **overrides) -> GPT3MixTrainingArguments:
    settings = {
        "output_dir": str(tmp_path / "out"),
        "report_to": "none",
        "disable_tqdm": True,
        "eval_strategy": "no",
        "save_strategy": "no",
        "early_stopping_patience": None,
        "warmup_steps": 0,
        "learning_rate": 1e-3,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "use_cpu": True,
        "seed": 0,
    }
    settings.update(overrides)
    return GPT3MixTrainingArguments(**settings)


def first_eval_batch(trainer, dataset):
    return next(iter(trainer.get_eval_dataloader(dataset)))


# --- the loss ---------------------------------------------------------------------------------------------------


def test_one_hot_loss_equals_stock_trainer_cross_entropy(tokenizer, tmp_path):
    dataset = tokenize_dataset(real_dataset(), tokenizer)
    model = tiny_model(tokenizer).eval()
    stock = Trainer(model, TrainingArguments(str(tmp_path / "stock"), report_to="none", use_cpu=True,
                                             per_device_eval_batch_size=8), processing_class=tokenizer)
    stock_batch = first_eval_batch(stock, dataset)
    with torch.no_grad():
        stock_loss = stock.compute_loss(model, stock_batch)

    ours = GPT3MixTrainer(model, make_args(tmp_path), processing_class=tokenizer)
    batch = first_eval_batch(ours, dataset)
    assert torch.equal(batch["soft_labels"], F.one_hot(batch["labels"], 2).float())
    with torch.no_grad():
        loss_counted = ours.compute_loss(model, batch, num_items_in_batch=len(batch["labels"]))
        loss_mean = ours.compute_loss(model, batch)
    assert abs(loss_counted.item() - stock_loss.item()) < 1e-6
    assert abs(loss_mean.item() - stock_loss.item()) < 1e-6


def test_label_smoothing_is_the_stock_trainers_and_a_loss_function_is_refused(tokenizer, tmp_path):
    dataset = tokenize_dataset(real_dataset(), tokenizer)
    model = tiny_model(tokenizer).eval()
    stock = Trainer(model, TrainingArguments(str(tmp_path / "stock"), report_to="none", use_cpu=True,
                                             label_smoothing_factor=0.3), processing_class=tokenizer)
    ours = GPT3MixTrainer(model, make_args(tmp_path, label_smoothing_factor=0.3), processing_class=tokenizer)
    with torch.no_grad():
        stock_loss = stock.compute_loss(model, first_eval_batch(stock, dataset))
        loss = ours.compute_loss(model, first_eval_batch(ours, dataset))
        plain = GPT3MixTrainer(model, make_args(tmp_path), processing_class=tokenizer)
        unsmoothed = plain.compute_loss(model, first_eval_batch(plain, dataset))
    assert loss.item() == pytest.approx(stock_loss.item(), abs=1e-6) and abs(loss.item() - unsmoothed.item()) > 1e-5
    with pytest.raises(ValueError, match="compute_loss_func would never be called"):
        GPT3MixTrainer(model, make_args(tmp_path), compute_loss_func=lambda outputs, labels, num_items_in_batch: 0)


def test_soft_and_kl_losses_in_the_trainer_match_the_pure_functions(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer).eval()
    weights = torch.tensor([0.5 if flag else 1.0 for flag in SYNTHETIC])
    for loss_type, function in [("soft_ce", soft_cross_entropy), ("kl", kl_divergence)]:
        args = make_args(tmp_path, loss_type=loss_type, temperature=2.0, synthetic_weight=0.5)
        trainer = GPT3MixTrainer(model, args, processing_class=tokenizer)
        batch = first_eval_batch(trainer, dataset)
        with torch.no_grad():
            loss, outputs = trainer.compute_loss(model, batch, return_outputs=True, num_items_in_batch=len(TEXTS))
        extra = {"temperature": 2.0} if loss_type == "kl" else {}
        expected = function(outputs.logits, torch.tensor(SOFT), weights=weights, **extra).sum() / len(TEXTS)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
        assert outputs.loss is None  # the model's own loss is not computed


def test_synthetic_weight_zero_gives_synthetic_rows_no_loss(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer).eval()
    trainer = GPT3MixTrainer(model, make_args(tmp_path, synthetic_weight=0.0), processing_class=tokenizer)
    batch = first_eval_batch(trainer, dataset)
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True, num_items_in_batch=len(TEXTS))
        real = ~torch.tensor(SYNTHETIC)
        expected = soft_cross_entropy(outputs.logits[real], torch.tensor(SOFT)[real]).sum() / len(TEXTS)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_gradients_reach_the_model_and_train_changes_parameters(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer)
    trainer = GPT3MixTrainer(model, make_args(tmp_path, max_steps=3), train_dataset=dataset,
                             processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.compute_loss(model, batch, num_items_in_batch=len(batch["labels"])).backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    model.zero_grad()

    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    trainer.train()
    for name, parameter in model.named_parameters():
        assert not torch.equal(parameter, before[name]), f"{name} did not change"
    assert model.config.problem_type == "single_label_classification"


def test_gradient_accumulation_gives_the_loss_of_one_big_batch(tokenizer, tmp_path):
    # 7 rows: one batch of 7, or micro-batches of 3, 3 and 1 accumulated into one step. With SGD the update is the
    # gradient itself, so a wrongly scaled loss would show in the parameters.
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    results = {}
    for name, (batch_size, steps) in {"big": (7, 1), "accumulated": (3, 3)}.items():
        model = tiny_model(tokenizer, seed=3)
        args = make_args(tmp_path / name, per_device_train_batch_size=batch_size, gradient_accumulation_steps=steps,
                         max_steps=1, optim="sgd", learning_rate=0.5, max_grad_norm=0.0, synthetic_weight=0.5,
                         logging_steps=1)
        trainer = GPT3MixTrainer(model, args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
        results[name] = (trainer.state.log_history[0]["loss"], [p.detach().clone() for p in model.parameters()])

    big_loss, big_parameters = results["big"]
    accumulated_loss, accumulated_parameters = results["accumulated"]
    assert accumulated_loss == pytest.approx(big_loss, abs=1e-6)
    for big, accumulated in zip(big_parameters, accumulated_parameters, strict=True):
        assert torch.allclose(big, accumulated, atol=1e-6)

    # The scale is the mean over the 7 rows, the loss of the big batch computed by hand.
    model = tiny_model(tokenizer, seed=3).eval()
    trainer = GPT3MixTrainer(model, make_args(tmp_path, synthetic_weight=0.5), processing_class=tokenizer)
    with torch.no_grad():
        logits = model(**{k: v for k, v in first_eval_batch(trainer, dataset).items()
                          if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    weights = torch.tensor([0.5 if flag else 1.0 for flag in SYNTHETIC])
    per_row = soft_cross_entropy(logits, torch.tensor(SOFT), weights)
    assert per_row.mean().item() == pytest.approx(big_loss, abs=1e-5)


@pytest.mark.parametrize("average_tokens", [True, False])
def test_under_data_parallel_the_loss_is_the_mean_over_the_batch(tokenizer, tmp_path, average_tokens):
    # DataParallel (several GPUs in one process) gathers the replicas' logits, while the Trainer hands one row
    # count per replica. Simulated on the CPU: n_gpu as TrainingArguments sets it with two visible GPUs, and the
    # count as Trainer._get_num_items_in_batch makes it then.
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer, seed=3).train()
    # A batch of 6, whose count the Trainer splits evenly between the 2 GPUs (it floors it per GPU otherwise).
    trainer = GPT3MixTrainer(model, make_args(tmp_path, per_device_train_batch_size=6, synthetic_weight=0.5,
                                              average_tokens_across_devices=average_tokens),
                             train_dataset=dataset, processing_class=tokenizer)
    trainer.args._n_gpu = 2
    batch = next(iter(trainer.get_train_dataloader()))
    count = trainer._get_num_items_in_batch([batch], "cpu")
    assert count.shape == (2, 1)
    loss = trainer.compute_loss(model, batch, num_items_in_batch=count)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items()
                          if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    weights = torch.where(batch["is_synthetic"].bool(), 0.5, 1.0)
    assert len(weights) == 6
    # As Trainer.training_step reduces it under DataParallel (loss.mean()).
    expected = soft_cross_entropy(logits, batch["soft_labels"].float(), weights).mean()
    assert loss.mean().item() == pytest.approx(expected.item(), abs=1e-5)


# --- columns, collation, fallbacks ------------------------------------------------------------------------------


def test_soft_labels_survive_remove_unused_columns(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer).add_column("source_ids", [[0]] * len(TEXTS))
    model = tiny_model(tokenizer)
    args = make_args(tmp_path, remove_unused_columns=True, per_device_train_batch_size=7)
    trainer = GPT3MixTrainer(model, args, train_dataset=dataset, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels", "soft_labels", "is_synthetic"}
    # Rows are shuffled: compare the (label, soft labels, is_synthetic) triples as sets.
    rows = zip(batch["labels"].tolist(), batch["soft_labels"].tolist(), batch["is_synthetic"].tolist(), strict=True)
    got = sorted((label, tuple(round(p, 5) for p in soft), flag) for label, soft, flag in rows)
    expected = sorted((label, tuple(round(p, 5) for p in soft), flag)
                      for label, soft, flag in zip(LABELS, SOFT, SYNTHETIC, strict=True))
    assert got == expected

    # The stock Trainer, which knows nothing of them, prunes them.
    stock = Trainer(model, TrainingArguments(str(tmp_path / "stock"), report_to="none", use_cpu=True),
                    train_dataset=dataset, processing_class=tokenizer)
    assert "soft_labels" not in next(iter(stock.get_train_dataloader()))


def test_rows_without_soft_labels_use_one_hot_labels(tokenizer, tmp_path):
    dataset = tokenize_dataset(real_dataset(), tokenizer)
    trainer = GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), processing_class=tokenizer)
    batch = first_eval_batch(trainer, dataset)
    assert torch.equal(batch["soft_labels"], F.one_hot(batch["labels"], 2).float())
    assert not batch["is_synthetic"].any()


def test_collator_fills_labels_from_soft_labels_and_checks_rows(tokenizer):
    collator = SoftLabelCollator(lambda rows: {"x": torch.tensor([row["x"] for row in rows]),
                                               "labels": torch.tensor([row["label"] for row in rows])}, 3)
    batch = collator([{"x": 1, "soft_labels": [0.1, 0.2, 0.7]}, {"x": 2, "soft_labels": [0.6, 0.2, 0.2]}])
    assert batch["labels"].tolist() == [2, 0]
    assert batch["is_synthetic"].tolist() == [False, False]
    with pytest.raises(ValueError, match="row 1 sums to 1.2"):
        collator([{"x": 1, "soft_labels": [0.1, 0.2, 0.7]}, {"x": 2, "soft_labels": [0.6, 0.4, 0.2]}])


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ([0.2, 0.3, 0.5], "row 2 has 3 values but the model has 2 labels"),
        ([0.3, 0.3], "row 2 sums to 0.6"),
        ([float("nan"), 1.0], "row 2 holds NaN"),
        ([-0.5, 1.5], "row 2 has negative values"),
    ],
)
def test_bad_soft_labels_are_refused(tokenizer, tmp_path, bad_row, message):
    soft = [list(row) for row in SOFT]
    soft[2] = bad_row
    dataset = soft_dataset(soft=soft)
    with pytest.raises(ValueError, match=message):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=dataset, processing_class=tokenizer)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_stock_arguments_that_ask_for_evaluations_without_an_eval_set_are_refused_as_by_the_stock_trainer(
        tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    stock = TrainingArguments(str(tmp_path), eval_strategy="epoch", report_to="none", use_cpu=True)
    with pytest.raises(ValueError) as refused:
        Trainer(tiny_model(tokenizer), stock, train_dataset=dataset, processing_class=tokenizer)
    with pytest.raises(ValueError) as ours:
        GPT3MixTrainer(tiny_model(tokenizer), stock, train_dataset=dataset, processing_class=tokenizer)
    assert str(ours.value) == str(refused.value)


def test_num_labels_mismatch_is_refused(tokenizer, tmp_path):
    dataset = soft_dataset()
    with pytest.raises(ValueError, match=r"train_dataset has 2 labels .* num_labels=3"):
        GPT3MixTrainer(tiny_model(tokenizer, num_labels=3), make_args(tmp_path), train_dataset=dataset)
    with pytest.raises(ValueError, match="at least 2 labels"):
        GPT3MixTrainer(tiny_model(tokenizer, num_labels=1), make_args(tmp_path), train_dataset=dataset)


def test_plain_training_arguments_are_converted(tokenizer, tmp_path):
    plain = TrainingArguments(str(tmp_path), report_to="none", learning_rate=1e-4, warmup_steps=3, seed=7,
                              hub_token="secret-token", use_cpu=True)
    before = plain.to_dict()
    trainer = GPT3MixTrainer(tiny_model(tokenizer), plain)
    args = trainer.args
    assert isinstance(args, GPT3MixTrainingArguments)
    assert (args.learning_rate, args.warmup_steps, args.seed, args.hub_token) == (1e-4, 3, 7, "secret-token")
    # What the stock Trainer does stays: no early stopping, no evaluation, transformers' warm-up.
    assert args.early_stopping_patience is None and args.load_best_model_at_end is False
    assert args.nonzero_warmup is False and args.eval_strategy == "no"
    assert (args.loss_type, args.synthetic_weight) == ("soft_ce", 1.0)
    assert plain.to_dict() == before  # the caller's arguments are left as they were
    # A subclass's own fields have nowhere to go: they are named in a warning, the rest is kept.
    from transformers import Seq2SeqTrainingArguments

    seq2seq = Seq2SeqTrainingArguments(str(tmp_path), report_to="none", learning_rate=2e-4, predict_with_generate=True)
    converted = GPT3MixTrainingArguments.from_training_arguments(seq2seq)
    assert converted.learning_rate == 2e-4 and not hasattr(converted, "predict_with_generate")
    with pytest.raises(TypeError, match="pass a GPT3MixTrainingArguments or a transformers TrainingArguments"):
        GPT3MixTrainer(tiny_model(tokenizer), {"output_dir": str(tmp_path)})


def test_without_soft_labels_trains_exactly_as_the_stock_trainer(tokenizer, tmp_path):
    # Same model, data, seed and plain TrainingArguments: the same loss at every step and the same weights after.
    dataset = tokenize_dataset(real_dataset(), tokenizer)
    results = {}
    for name, trainer_class in {"stock": Trainer, "ours": GPT3MixTrainer}.items():
        model = tiny_model(tokenizer, seed=5, dropout=0.1)
        args = TrainingArguments(str(tmp_path / name), report_to="none", use_cpu=True, disable_tqdm=True,
                                 per_device_train_batch_size=3, num_train_epochs=2, learning_rate=1e-3,
                                 warmup_steps=2, logging_steps=1, seed=11, save_strategy="no")
        trainer = trainer_class(model, args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
        losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        results[name] = (losses, [parameter.detach().clone() for parameter in model.parameters()])
    assert len(results["stock"][0]) == 6
    assert results["ours"][0] == pytest.approx(results["stock"][0], abs=1e-6)
    for stock, ours in zip(results["stock"][1], results["ours"][1], strict=True):
        assert torch.allclose(stock, ours, atol=1e-6)


def test_without_eval_dataset_trains_with_early_stopping_off_and_says_so_once(tokenizer, tmp_path, caplog):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    args = make_args(tmp_path, num_train_epochs=1, eval_strategy="epoch", save_strategy="epoch",
                     early_stopping_patience=3)
    with caplog.at_level("WARNING", logger="gpt3mix_hf.training.trainer"):
        trainer = GPT3MixTrainer(tiny_model(tokenizer), args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    warnings = [record for record in caplog.records if "No eval_dataset" in record.getMessage()]
    assert len(warnings) == 1 and "early stopping" in warnings[0].getMessage()
    assert trainer.state.global_step == 2
    assert not any("eval_accuracy" in log for log in trainer.state.log_history)
    # The caller's arguments are left as they were.
    assert args.early_stopping_patience == 3 and args.eval_strategy == "epoch"


def test_what_the_stock_trainer_takes_it_takes(tokenizer, tmp_path):
    train = tokenize_dataset(soft_dataset(), tokenizer)
    validation = tokenize_dataset(real_dataset(), tokenizer)
    # model_init (hyperparameter_search's way), each model it makes checked as a model passed in.
    made = []

    def model_init():
        made.append(tiny_model(tokenizer))
        made[-1].config.problem_type = "multi_label_classification"
        return made[-1]

    trainer = GPT3MixTrainer(args=make_args(tmp_path, max_steps=1), model_init=model_init, train_dataset=train,
                             processing_class=tokenizer)
    trainer.train()
    assert len(made) == 2 and all(model.config.problem_type == "single_label_classification" for model in made)
    # Several eval sets: the metrics are reported per set, and metric_for_best_model names one of them.
    evaluations = {"validation": validation, "again": validation}
    args = make_args(tmp_path, eval_strategy="epoch", num_train_epochs=1, metric_for_best_model="accuracy")
    with pytest.raises(ValueError, match="eval_validation_accuracy"):
        GPT3MixTrainer(tiny_model(tokenizer), args, train_dataset=train, eval_dataset=evaluations)
    args = make_args(tmp_path, eval_strategy="epoch", num_train_epochs=1,
                     metric_for_best_model="eval_validation_accuracy")
    trainer = GPT3MixTrainer(tiny_model(tokenizer), args, train_dataset=train, eval_dataset=evaluations,
                             processing_class=tokenizer)
    trainer.train()
    assert "eval_again_accuracy" in trainer.state.log_history[-2]
    # With the loss only reported (prediction_loss_only, or batch_eval_metrics without a compute_metrics of its
    # kind), best-model selection on accuracy is refused before training; on the loss it trains.
    for only_loss in ({"prediction_loss_only": True}, {"batch_eval_metrics": True}):
        with pytest.raises(ValueError, match=r"reports \['eval_loss'\]"):
            GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path, eval_strategy="epoch", num_train_epochs=1,
                                                            metric_for_best_model="accuracy", **only_loss),
                           train_dataset=train, eval_dataset=validation)
        trainer = GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path, eval_strategy="epoch", num_train_epochs=1,
                                                                  metric_for_best_model="loss", **only_loss),
                                 train_dataset=train, eval_dataset=validation, processing_class=tokenizer)
        trainer.train()
        assert "eval_loss" in trainer.state.log_history[-2]


def test_user_compute_metrics_receives_class_labels_as_from_the_stock_trainer(tokenizer, tmp_path):
    dataset = tokenize_dataset(real_dataset(), tokenizer)
    received = {}

    def spy(name):
        def compute(eval_pred):
            received[name] = eval_pred
            return {"rows": len(eval_pred.label_ids)}
        return compute

    args = TrainingArguments(str(tmp_path), report_to="none", use_cpu=True, per_device_eval_batch_size=3)
    model = tiny_model(tokenizer)
    Trainer(model, args, eval_dataset=dataset, processing_class=tokenizer, compute_metrics=spy("stock")).evaluate()
    metrics = GPT3MixTrainer(model, args, eval_dataset=dataset, processing_class=tokenizer,
                             compute_metrics=spy("ours")).evaluate()
    stock, ours = received["stock"], received["ours"]
    assert isinstance(ours.label_ids, np.ndarray) and ours.label_ids.tolist() == LABELS
    assert np.array_equal(ours.label_ids, stock.label_ids)
    assert np.allclose(ours.predictions, stock.predictions, atol=1e-6)
    assert metrics["eval_rows"] == len(LABELS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss_type": "mse"}, "loss_type='mse'"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"synthetic_weight": -1.0}, "synthetic_weight=-1.0"),
        ({"early_stopping_patience": 3, "eval_strategy": "no"}, "eval_strategy='no'"),
        ({"early_stopping_patience": 3, "load_best_model_at_end": False}, "load_best_model_at_end=False"),
        ({"early_stopping_patience": 3, "eval_on_start": True}, "eval_on_start=True"),
    ],
)
def test_training_arguments_validation(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        GPT3MixTrainingArguments(output_dir=str(tmp_path), **overrides)


def test_new_fields_are_command_line_flags(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(GPT3MixTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--nonzero_warmup", "false", "--loss_type", "kl", "--early_stopping_patience",
         "0", "--report_to", "none"]
    )
    assert (args.nonzero_warmup, args.loss_type, args.early_stopping_patience) == (False, "kl", None)


def test_training_arguments_defaults(tmp_path):
    args = GPT3MixTrainingArguments(output_dir=str(tmp_path))
    assert args.learning_rate == 3e-5
    assert args.early_stopping_patience == 20
    assert args.load_best_model_at_end is True
    assert args.metric_for_best_model == "accuracy"
    assert args.greater_is_better is True
    assert args.label_names is None and args.nonzero_warmup is True
    off = GPT3MixTrainingArguments(output_dir=str(tmp_path), early_stopping_patience=0)
    assert off.early_stopping_patience is None and off.load_best_model_at_end is False


# --- evaluation, early stopping, saving -------------------------------------------------------------------------


def test_early_stopping_stops_after_patience(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    args = make_args(tmp_path, learning_rate=0.0, num_train_epochs=10, eval_strategy="epoch",
                     save_strategy="epoch", early_stopping_patience=2, per_device_train_batch_size=8)
    trainer = GPT3MixTrainer(tiny_model(tokenizer), args, train_dataset=dataset,
                             eval_dataset=tokenize_dataset(real_dataset(), tokenizer), processing_class=tokenizer)
    trainer.train()
    # Nothing is learnt at learning rate 0: the first evaluation stays the best, two more end training.
    assert trainer.state.epoch == 3
    evaluations = [log for log in trainer.state.log_history if "eval_accuracy" in log]
    assert len(evaluations) == 3 and "eval_macro_f1" in evaluations[0]


def test_saved_model_reloads_and_predicts_the_same(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer, dropout=0.1)
    # As transformers leaves a model that once saw float labels: the trainer must pin single-label again.
    model.config.problem_type = "multi_label_classification"
    trainer = GPT3MixTrainer(model, make_args(tmp_path, max_steps=2), train_dataset=dataset,
                             processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    assert reloaded.config.problem_type == "single_label_classification"

    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, reloaded(**inputs).logits, atol=1e-6)
    classifier = pipeline("text-classification", model=reloaded, tokenizer=tokenizer, top_k=None)
    scores = classifier([TEXTS[0]])[0]
    assert sum(score["score"] for score in scores) == pytest.approx(1.0, abs=1e-5)  # softmax, not sigmoid


# --- classification helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_classifier_dir(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-classifier")
    tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_train_and_evaluate_classifier(tiny_classifier_dir, tmp_path):
    args = make_args(tmp_path, num_train_epochs=2, eval_strategy="epoch", save_strategy="epoch",
                     early_stopping_patience=5)
    trainer = train_classifier(soft_dataset(), real_dataset(), str(tiny_classifier_dir), args=args,
                               keep_checkpoints=False)
    assert isinstance(trainer, GPT3MixTrainer)
    assert trainer.state.best_model_checkpoint is not None
    assert not list((tmp_path / "out").glob("checkpoint-*"))
    assert trainer.model.config.id2label == {0: "negative", 1: "positive"}
    scores = evaluate_classifier(trainer, real_dataset())
    assert set(scores) == {"accuracy", "macro_f1"}
    inputs = trainer.processing_class(TEXTS, padding=True, return_tensors="pt")
    trainer.model.eval()
    with torch.no_grad():
        predictions = trainer.model(**inputs.to(trainer.model.device)).logits.argmax(-1).cpu().numpy()
    assert scores["accuracy"] == pytest.approx(float((predictions == np.array(LABELS)).mean()))


def test_train_classifier_bad_input(tiny_classifier_dir, tmp_path):
    with pytest.raises(ValueError, match="eval_dataset is empty"):
        train_classifier(soft_dataset(), real_dataset().select([]), str(tiny_classifier_dir), make_args(tmp_path))
    other = real_dataset(names=["bad", "good"])
    with pytest.raises(ValueError, match="Label names differ"):
        train_classifier(soft_dataset(), other, str(tiny_classifier_dir), make_args(tmp_path))
    with pytest.raises(ValueError, match="Cast it"):
        train_classifier(soft_dataset().cast_column("label", Value("int64")), real_dataset(),
                         str(tiny_classifier_dir), make_args(tmp_path))


@pytest.mark.slow
def test_real_minilm_learns_its_training_rows(data_dir, tmp_path):
    from transformers import set_seed

    from gpt3mix_hf.data import class_balanced_sample, load_benchmark
    from gpt3mix_hf.training.classification import load_classifier

    train = class_balanced_sample(load_benchmark("sst2", "train", data_dir=data_dir), per_class=8, seed=0)
    validation = class_balanced_sample(load_benchmark("sst2", "validation", data_dir=data_dir), per_class=8, seed=0)
    args = make_args(tmp_path, num_train_epochs=4, per_device_train_batch_size=8, learning_rate=1e-4,
                     warmup_steps=0.1, eval_strategy="epoch", save_strategy="epoch", early_stopping_patience=20)
    trainer = train_classifier(train, validation, "minilm", args=args, max_length=64, classifier_head="mlp")
    assert trainer.state.global_step == 8 and trainer.state.best_model_checkpoint is not None
    assert trainer.model.config.problem_type == "single_label_classification"
    assert trainer.model.config.classifier_head == "mlp"

    # The same initial model (same seed, same head), scored on the training rows before and after training.
    tokenized = tokenize_dataset(train, trainer.processing_class, max_length=64)
    set_seed(args.seed)
    untrained = load_classifier("minilm", train.features["label"].names, classifier_head="mlp")
    before = GPT3MixTrainer(untrained, make_args(tmp_path / "before"), processing_class=trainer.processing_class)
    loss_before = before.evaluate(tokenized)["eval_loss"]
    loss_after = trainer.evaluate(tokenized)["eval_loss"]
    # Measured here: 0.690 -> 0.655 (the best checkpoint by validation accuracy, not the last one).
    assert loss_after < loss_before - 0.01, (loss_before, loss_after)

    scores = evaluate_classifier(trainer, validation)
    inputs = trainer.processing_class(list(validation["text"]), padding=True, truncation=True, max_length=64,
                                      return_tensors="pt")
    trainer.model.eval()
    with torch.no_grad():
        predictions = trainer.model(**inputs).logits.argmax(-1).numpy()
    assert scores["accuracy"] == pytest.approx(float((predictions == np.array(validation["label"])).mean()))


# --- labels that are not labels -----------------------------------------------------------------------------------


def test_out_of_range_label_without_soft_labels_is_an_error_naming_the_row(tokenizer, tmp_path):
    features = Features({"text": Value("string"), "label": ClassLabel(names=NAMES)})
    labels = list(LABELS)
    labels[4] = -1  # datasets' "no label": with no soft label there is nothing to train on
    dataset = Dataset.from_dict({"text": TEXTS, "label": labels}, features=features)
    with pytest.raises(ValueError, match=r"train_dataset row 4 has label -1, outside \[0, 2\)"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=dataset)
    soft = [list(row) for row in SOFT]
    soft[3] = None
    bad = soft_dataset(soft=soft, labels=[1, 0, 1, -1, 1, 0, 1])
    with pytest.raises(ValueError, match="train_dataset row 3 has label -1"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=bad)
    # An int column is not bounded by a ClassLabel: 5 of 2 classes is refused too.
    ints = Dataset.from_dict({"text": TEXTS, "label": [0, 1, 5, 0, 1, 0, 1]})
    with pytest.raises(ValueError, match="row 2 has label 5"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=ints)
    # The collator refuses it too (an IterableDataset is only seen batch by batch).
    collator = SoftLabelCollator(lambda rows: {"labels": torch.tensor([row["label"] for row in rows])}, 2)
    with pytest.raises(ValueError, match="Row 1 of the batch has label -1"):
        collator([{"label": 0}, {"label": -1}])


def test_missing_label_with_soft_labels_trains_on_the_soft_label(tokenizer, tmp_path):
    dataset = tokenize_dataset(soft_dataset(labels=[1, -1, 1, 0, 1, 0, 1]), tokenizer)
    trainer = GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), processing_class=tokenizer,
                             train_dataset=dataset)
    batch = first_eval_batch(trainer, dataset)
    assert batch["labels"].tolist() == [1, 0, 1, 0, 1, 0, 1]  # row 1: the arg-max of [0.8, 0.2]
    assert torch.allclose(batch["soft_labels"], torch.tensor(SOFT))


def test_eval_set_with_other_label_names_or_synthetic_rows_is_refused(tokenizer, tmp_path):
    train = tokenize_dataset(soft_dataset(), tokenizer)
    other = tokenize_dataset(real_dataset(names=["bad", "good"]), tokenizer)
    with pytest.raises(ValueError, match=r"eval_dataset's label names \['bad', 'good'\] differ from train_dataset"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=train, eval_dataset=other)
    with pytest.raises(ValueError, match=r"validation's label names"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=train,
                       eval_dataset={"validation": other})
    with pytest.raises(ValueError, match="eval_dataset holds 4 synthetic rows"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=train, eval_dataset=train)


# --- the first step trains ----------------------------------------------------------------------------------------


def test_warmup_never_gives_a_step_learning_rate_zero(tokenizer, tmp_path):
    # 7 rows, batch 16: one optimizer step per epoch. With warmup_steps=0.1 transformers' linear warm-up gives that
    # step a learning rate of 0, so one epoch leaves the model as it was; nonzero_warmup trains it.
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    changed = {}
    for nonzero in (False, True):
        model = tiny_model(tokenizer)
        before = [parameter.detach().clone() for parameter in model.parameters()]
        args = make_args(tmp_path / str(nonzero), num_train_epochs=1, per_device_train_batch_size=16,
                         warmup_steps=0.1, nonzero_warmup=nonzero)
        GPT3MixTrainer(model, args, train_dataset=dataset, processing_class=tokenizer).train()
        changed[nonzero] = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed == {False: False, True: True}


def learning_rates(trainer: GPT3MixTrainer, steps: int) -> list[float]:
    """The learning rate of each of `steps` optimizer steps, from a fresh optimizer and scheduler."""
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return rates


@pytest.mark.parametrize("scheduler", ["linear", "cosine", "constant_with_warmup"])
def test_nonzero_warmup_schedule(tokenizer, tmp_path, scheduler):
    trainer = GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path, warmup_steps=3, lr_scheduler_type=scheduler))
    rates = learning_rates(trainer, steps=10)
    base = trainer.args.learning_rate
    assert rates[:3] == pytest.approx([base / 4, base * 2 / 4, base * 3 / 4])
    assert rates[3] == pytest.approx(base)
    assert all(rate > 0 for rate in rates)
    # After the warm-up, the stock schedule.
    stock = GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path, warmup_steps=3, lr_scheduler_type=scheduler,
                                                            nonzero_warmup=False))
    stock_rates = learning_rates(stock, steps=10)
    assert stock_rates[0] == 0.0
    assert rates[3:] == pytest.approx(stock_rates[3:])


def test_best_checkpoint_is_never_the_untrained_start(tokenizer, tmp_path):
    # One step per epoch and a validation score that never improves (learning so slow that the accuracy stays):
    # the best checkpoint is epoch 1's, which must hold trained weights, not the initial ones.
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    model = tiny_model(tokenizer)
    initial = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = make_args(tmp_path, num_train_epochs=3, per_device_train_batch_size=16, learning_rate=1e-4,
                     warmup_steps=0.5, eval_strategy="epoch", save_strategy="epoch", early_stopping_patience=5,
                     save_total_limit=None)
    trainer = GPT3MixTrainer(model, args, train_dataset=dataset, eval_dataset=tokenize_dataset(real_dataset(),
                                                                                                tokenizer),
                             processing_class=tokenizer)
    trainer.train()
    # The premise: the best checkpoint is epoch 1's (the score never improved after it).
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-1")
    first = AutoModelForSequenceClassification.from_pretrained(trainer.state.best_model_checkpoint)
    assert any(not torch.equal(parameter, initial[name]) for name, parameter in first.named_parameters())


# --- the paper's classifier head, LoRA ----------------------------------------------------------------------------


def test_mlp_head_is_two_fresh_layers_and_reloads(tiny_classifier_dir, tmp_path):
    from gpt3mix_hf.training.classification import load_classifier

    default = load_classifier(str(tiny_classifier_dir), NAMES)
    mlp = load_classifier(str(tiny_classifier_dir), NAMES, classifier_head="mlp")
    pretrained = BertForSequenceClassification.from_pretrained(tiny_classifier_dir)
    # "default" keeps the pre-trained pooler, "mlp" draws it anew; the encoder is the same.
    assert torch.equal(default.bert.pooler.dense.weight, pretrained.bert.pooler.dense.weight)
    assert not torch.equal(mlp.bert.pooler.dense.weight, pretrained.bert.pooler.dense.weight)
    assert torch.equal(mlp.bert.encoder.layer[0].attention.self.query.weight,
                       pretrained.bert.encoder.layer[0].attention.self.query.weight)
    assert mlp.bert.pooler.dense.weight.std().item() == pytest.approx(0.02, rel=0.2)
    mlp.save_pretrained(tmp_path / "mlp")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "mlp")
    assert reloaded.config.classifier_head == "mlp"
    assert torch.equal(reloaded.bert.pooler.dense.weight, mlp.bert.pooler.dense.weight)
    with pytest.raises(ValueError, match="classifier_head='deep'"):
        load_classifier(str(tiny_classifier_dir), NAMES, classifier_head="deep")


def test_lora_model_trains_and_publishes(tiny_classifier_dir, tokenizer, tmp_path):
    peft = pytest.importorskip("peft", reason="the peft extra: pip install 'gpt3mix_hf[peft]'")
    from huggingface_hub import ModelCard

    from gpt3mix_hf.hub.push import push_classifier

    base = BertForSequenceClassification.from_pretrained(tiny_classifier_dir)
    model = peft.get_peft_model(base, peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    lora_before = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_B" in name}
    frozen_before = model.base_model.model.bert.embeddings.word_embeddings.weight.detach().clone()
    dataset = tokenize_dataset(soft_dataset(), tokenizer)
    args = make_args(tmp_path, max_steps=3, eval_strategy="epoch", save_strategy="epoch", early_stopping_patience=2)
    trainer = GPT3MixTrainer(model, args, train_dataset=dataset, eval_dataset=tokenize_dataset(real_dataset(),
                                                                                                tokenizer),
                             processing_class=tokenizer)
    trainer.train()
    assert lora_before and all(not torch.equal(p, lora_before[name])
                               for name, p in model.named_parameters() if "lora_B" in name)
    assert torch.equal(model.base_model.model.bert.embeddings.word_embeddings.weight, frozen_before)
    assert "eval_accuracy" in trainer.evaluate()

    # Published through the package's own path (a dry run to a folder: the Hub cannot be reached here).
    folder = push_classifier(trainer, "me/tiny-lora-gpt3mix", local_dir=tmp_path / "repo")
    assert (folder / "adapter_config.json").exists() and (folder / "README.md").exists()
    assert ModelCard.load(folder / "README.md").data.library_name is not None
    reloaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(folder).eval()
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, reloaded(**inputs).logits, atol=1e-5)


def test_bad_soft_label_is_named_by_its_dataset_row_when_some_rows_have_none(tokenizer, tmp_path):
    soft = [list(row) for row in SOFT]
    soft[1] = None
    soft[5] = [0.7, 0.7]
    with pytest.raises(ValueError, match="train_dataset: row 5 sums to 1.4"):
        GPT3MixTrainer(tiny_model(tokenizer), make_args(tmp_path), train_dataset=soft_dataset(soft=soft))
