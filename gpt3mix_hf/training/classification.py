"""Train and evaluate a text classifier on real and GPT3Mix rows in a few calls (the experiments and the demo)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import ClassLabel, Dataset
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EvalPrediction,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ..data import align_label_names
from ..models import DEFAULT_CLASSIFIER, resolve_classifier
from .arguments import GPT3MixTrainingArguments
from .metrics import compute_metrics, compute_selection_metrics
from .pooling import HEADS, POOLING_MODES, PooledBertConfig, PooledBertForSequenceClassification, checkpoint_pooling
from .trainer import GPT3MixTrainer

logger = logging.get_logger(__name__)

TARGET_COLUMNS = ("label", "soft_labels", "is_synthetic")
ENCODER_ONLY_KEYS = ("model_type", "architectures", "pooling_mode", "classifier_head", "transformers_version")


def _label_names(dataset: Dataset, name: str) -> list[str]:
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty: it needs at least one row per class.")
    feature = dataset.features.get("label")
    if not isinstance(feature, ClassLabel):
        raise ValueError(
            f"{name} needs a 'label' column of type ClassLabel (it has columns {dataset.column_names}, label type "
            f"{type(feature).__name__}). Cast it: dataset.cast_column('label', ClassLabel(names=[...]))."
        )
    return list(feature.names)


def tokenize_dataset(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    text_column: str = "text",
    max_length: int = 128,
) -> Dataset:
    """Token ids of `text_column` (truncated to `max_length`, padded later per batch), keeping only `label`,
    `soft_labels` and `is_synthetic` besides them.

    Example:

    >>> tokenized = tokenize_dataset(train, AutoTokenizer.from_pretrained(resolve_classifier("minilm")))
    >>> tokenized.column_names
    ['label', 'input_ids', 'token_type_ids', 'attention_mask']
    """
    if text_column not in dataset.column_names:
        raise ValueError(f"No text column {text_column!r}; the dataset has {dataset.column_names}: pass "
                         "text_column= with the name of its text column.")
    drop = [column for column in dataset.column_names if column not in TARGET_COLUMNS]
    return dataset.map(
        lambda batch: tokenizer(batch[text_column], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=drop,
        desc="Tokenizing",
    )


def load_classifier(
    model_name_or_path: str, label_names: list[str], classifier_head: str = "default", pooling: str = "auto"
) -> PreTrainedModel:
    """A sequence classifier for `label_names` on a pre-trained encoder, with a fresh classification head.

    Args:
        model_name_or_path (`str`): a Hub id, a folder, or `"minilm"` (the embedded all-MiniLM-L6-v2).
        label_names (`list[str]`): the classes, by id (written into the model's `id2label` / `label2id`).
        pooling (`str`, *optional*, defaults to `"auto"`): the sentence vector the head reads. `"auto"`: the
            pooling the checkpoint was trained with, read from a sentence-transformers folder's `modules.json` and
            `1_Pooling/config.json` (all-MiniLM-L6-v2: mean pooling), else the architecture's own head (a plain
            BERT checkpoint keeps its pre-trained pooler). `"mean"` / `"cls"`: mean or first-token pooling without
            a pooler ([`PooledBertForSequenceClassification`], BERT-type encoders). `"pooler"`: the
            architecture's own head (`AutoModelForSequenceClassification`).
        classifier_head (`str`, *optional*, defaults to `"default"`):
            `"default"`: the head `AutoModelForSequenceClassification` builds for the architecture (BERT: one new
            linear layer on the pre-trained pooler; DistilBERT, RoBERTa, ELECTRA, DeBERTa: two new layers).
            `"mlp"`: the GPT3Mix paper's classifier, two fully connected layers trained from scratch on the
            encoder's first-token state. For BERT-like models this re-initialises the pooler (dense + tanh), so
            the saved model is a stock `BertForSequenceClassification` that reloads with `from_pretrained`;
            architectures whose own head already has two new layers keep it. With mean or first-token pooling,
            the two layers (dense + tanh, then linear) sit on the pooled vector.

    Example:

    >>> model = load_classifier("minilm", ["negative", "positive"], classifier_head="mlp")
    >>> model.config.classifier_head, model.config.pooling_mode
    ('mlp', 'mean')
    """
    if classifier_head not in HEADS:
        raise ValueError(f"classifier_head={classifier_head!r} is not supported: use one of {HEADS}.")
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling={pooling!r} is not supported: use one of {POOLING_MODES}.")
    path = resolve_classifier(model_name_or_path)
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
    }
    mode = (checkpoint_pooling(path) or "pooler") if pooling == "auto" else pooling
    if mode != "pooler":
        encoder_config = AutoConfig.from_pretrained(path)
        if encoder_config.model_type not in ("bert", PooledBertConfig.model_type):
            raise ValueError(
                f"pooling={mode!r} is implemented for BERT-type encoders; {model_name_or_path!r} is a "
                f"{encoder_config.model_type!r} model. Pass pooling='pooler' to use its own classification head."
            )
        # The encoder's own fields only: the type, head and labels are the new model's.
        values = {key: value for key, value in encoder_config.to_dict().items() if key not in ENCODER_ONLY_KEYS}
        config = PooledBertConfig(**{**values, **labels}, pooling_mode=mode, classifier_head=classifier_head)
        logger.info(f"{model_name_or_path}: {mode} pooling ({'the checkpoint' if pooling == 'auto' else 'asked'}).")
        return PooledBertForSequenceClassification.from_pretrained(path, config=config)
    model = AutoModelForSequenceClassification.from_pretrained(path, **labels)
    if classifier_head == "mlp":
        _two_layer_head(model)
    # Saved with the model, so that its card and config say which head it was trained with.
    model.config.classifier_head = classifier_head
    return model


def _two_layer_head(model: PreTrainedModel) -> None:
    """Make the classification head two freshly initialised fully connected layers (see `load_classifier`)."""
    head = getattr(model, "classifier", None)
    if hasattr(model, "pre_classifier") or (hasattr(head, "dense") and hasattr(head, "out_proj")):
        return  # DistilBERT / RoBERTa-style heads: already two new layers
    base = getattr(model, model.base_model_prefix, None)
    pooler = getattr(base, "pooler", None) or getattr(model, "pooler", None)
    dense = getattr(pooler, "dense", None)
    if not isinstance(dense, torch.nn.Linear) or not isinstance(head, torch.nn.Linear):
        raise ValueError(
            f"classifier_head='mlp' does not know the head of {type(model).__name__} (model_type "
            f"{model.config.model_type!r}): it supports BERT-like models (a pooler dense layer + a linear "
            "classifier) and DistilBERT/RoBERTa-style two-layer heads. Use classifier_head='default'."
        )
    # The pooler's pre-trained weights (BERT's next-sentence objective) are dropped: both layers start fresh, with
    # the architecture's own initialisation of a linear layer.
    std = getattr(model.config, "initializer_range", 0.02)
    torch.nn.init.normal_(dense.weight, mean=0.0, std=std)
    torch.nn.init.zeros_(dense.bias)


def classifier_trainer(
    train_dataset: Dataset,
    eval_dataset: Dataset | None,
    model_name_or_path: str,
    args: GPT3MixTrainingArguments,
    *,
    text_column: str = "text",
    max_length: int = 128,
    callbacks: list | None = None,
    classifier_head: str = "default",
    pooling: str = "auto",
    compute_metrics: Callable | None = None,
) -> GPT3MixTrainer:
    """A [`GPT3MixTrainer`] of a fresh classifier for `train_dataset`'s labels ([`load_classifier`], the new head
    seeded with `args.seed`), with both datasets tokenized; not trained yet. What [`train_classifier`] and
    `gpt3mix train` train.

    Args:
        train_dataset (`Dataset`): `text_column` and `label` (`ClassLabel`), optionally `soft_labels` and
            `is_synthetic`.
        eval_dataset (`Dataset`, *optional*): validation rows with the same label names, or `None`.
        model_name_or_path (`str`): a Hub id, a folder, or `"minilm"`.
        args (`GPT3MixTrainingArguments`): the training arguments.
        compute_metrics (`Callable`, *optional*): handed to the trainer as it is.

    The other arguments are those of [`train_classifier`].

    Example:

    >>> trainer = classifier_trainer(train, None, "minilm", GPT3MixTrainingArguments("out", num_train_epochs=1))
    >>> trainer.train()
    """
    names = _label_names(train_dataset, "train_dataset")
    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier(model_name_or_path))
    # The new classification head is drawn at random: seed it so that runs repeat.
    set_seed(args.seed)
    model = load_classifier(model_name_or_path, names, classifier_head, pooling)
    return GPT3MixTrainer(
        model=model,
        args=args,
        train_dataset=tokenize_dataset(train_dataset, tokenizer, text_column, max_length),
        eval_dataset=None if eval_dataset is None else tokenize_dataset(eval_dataset, tokenizer, text_column,
                                                                        max_length),
        processing_class=tokenizer,
        callbacks=callbacks,
        compute_metrics=compute_metrics,
    )


def train_classifier(
    train_dataset: Dataset,
    eval_dataset: Dataset,
    model_name_or_path: str = DEFAULT_CLASSIFIER,
    args: GPT3MixTrainingArguments | None = None,
    *,
    text_column: str = "text",
    max_length: int = 128,
    callbacks: list | None = None,
    keep_checkpoints: bool = True,
    classifier_head: str = "default",
    pooling: str = "auto",
) -> GPT3MixTrainer:
    """Fine-tune a sequence classifier with [`GPT3MixTrainer`] and return the trainer (best model loaded).

    Args:
        train_dataset (`Dataset`): `text` and `label` (`ClassLabel`), optionally `soft_labels` and `is_synthetic`
            (as made by [`concatenate_with_real`]); rows without soft labels train on their one-hot label.
        eval_dataset (`Dataset`): real validation rows, `text` and `label` with the same label names.
        model_name_or_path (`str`, *optional*, defaults to `"minilm"`): a Hub id, a folder, or `"minilm"` (the
            embedded all-MiniLM-L6-v2). A fresh classification head is added with the dataset's labels.
        args (`GPT3MixTrainingArguments`, *optional*): defaults to the paper's settings in a temporary output folder.
        text_column (`str`, *optional*, defaults to `"text"`): the text column of both datasets.
        max_length (`int`, *optional*, defaults to 128): longer texts are truncated.
        callbacks (`list`, *optional*): extra `TrainerCallback`s.
        keep_checkpoints (`bool`, *optional*, defaults to `True`): `False` deletes the `checkpoint-*` folders of
            `args.output_dir` after training (the best model stays loaded in the returned trainer); for sweeps of
            many runs.
        classifier_head (`str`, *optional*, defaults to `"default"`): `"mlp"` for the paper's two fully
            connected layers (see [`load_classifier`]).
        pooling (`str`, *optional*, defaults to `"auto"`): the pooling the checkpoint was trained with (mean for
            all-MiniLM-L6-v2), or `"mean"`, `"cls"`, `"pooler"` (see [`load_classifier`]).

    The validation metrics also hold `nll` and `accuracy_then_nll` ([`compute_selection_metrics`]): set
    `metric_for_best_model="accuracy_then_nll"` to break ties in validation accuracy by the validation loss.

    Example:

    >>> trainer = train_classifier(concatenate_with_real(real, synthetic), validation,
    ...                            args=GPT3MixTrainingArguments("out", num_train_epochs=5))
    >>> evaluate_classifier(trainer, test)
    {'accuracy': ..., 'macro_f1': ...}
    """
    names = _label_names(train_dataset, "train_dataset")
    eval_names = _label_names(eval_dataset, "eval_dataset")
    if eval_names != names and sorted(eval_names) == sorted(names):
        eval_dataset = align_label_names(eval_dataset, "label", names)  # the same classes: compared by name
    elif eval_names != names:
        raise ValueError(f"Label names differ: train_dataset {names}, eval_dataset {eval_names}: evaluate on rows "
                         "of the classes the model is trained on, named as train_dataset names them.")
    if args is None:
        args = GPT3MixTrainingArguments(output_dir=tempfile.mkdtemp(prefix="gpt3mix-classifier-"))
        logger.info(f"No args given: training with the paper's defaults into {args.output_dir}.")
    if classifier_head not in HEADS:
        raise ValueError(f"classifier_head={classifier_head!r} is not supported: use one of {HEADS}.")
    trainer = classifier_trainer(
        train_dataset, eval_dataset, model_name_or_path, args, text_column=text_column, max_length=max_length,
        callbacks=callbacks, classifier_head=classifier_head, pooling=pooling,
        compute_metrics=compute_selection_metrics,
    )
    trainer.train()
    if not keep_checkpoints:
        for checkpoint in Path(args.output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    return trainer


def evaluate_classifier(
    trainer: GPT3MixTrainer, test_dataset: Dataset, text_column: str = "text", max_length: int = 128
) -> dict[str, float]:
    """Accuracy and macro-F1 of the trainer's model on `test_dataset` (`text` and `label`; synthetic rows, if any,
    are left out).

    Example:

    >>> evaluate_classifier(trainer, load_benchmark("sst2", "test", data_dir="../shared/data"))
    {'accuracy': ..., 'macro_f1': ...}
    """
    names = _label_names(test_dataset, "test_dataset")
    id2label = trainer.model.config.id2label
    model_names = [id2label[index] for index in sorted(id2label)]
    generic = model_names == [f"LABEL_{index}" for index in range(len(model_names))]
    if len(model_names) != len(names) or (model_names != names and not generic):
        raise ValueError(
            f"test_dataset's labels {names} differ from the model's {model_names}: the predictions would not mean "
            "the same classes."
        )
    if "is_synthetic" in test_dataset.column_names:
        test_dataset = test_dataset.filter(lambda flags: [not flag for flag in flags], input_columns="is_synthetic",
                                           batched=True, desc="Keeping the real rows")
        if len(test_dataset) == 0:
            raise ValueError("test_dataset has no real rows (all are is_synthetic=True): evaluate on real data.")
    if "input_ids" not in test_dataset.column_names:
        test_dataset = tokenize_dataset(test_dataset, trainer.processing_class, text_column, max_length)
    output = trainer.predict(test_dataset, metric_key_prefix="test")
    return compute_metrics(EvalPrediction(predictions=output.predictions, label_ids=output.label_ids))
