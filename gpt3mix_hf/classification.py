"""Train and evaluate a text classifier on real and GPT3Mix rows in a few calls (the experiments and the demo)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from datasets import ClassLabel, Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EvalPrediction,
    PreTrainedTokenizerBase,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from .metrics import compute_metrics
from .models import DEFAULT_CLASSIFIER, resolve_classifier
from .trainer import GPT3MixTrainer
from .training_args import GPT3MixTrainingArguments

logger = logging.get_logger(__name__)

TARGET_COLUMNS = ("label", "soft_labels", "is_synthetic")


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
        raise ValueError(f"No text column {text_column!r}; the dataset has {dataset.column_names}.")
    drop = [column for column in dataset.column_names if column not in TARGET_COLUMNS]
    return dataset.map(
        lambda batch: tokenizer(batch[text_column], truncation=True, max_length=max_length),
        batched=True,
        remove_columns=drop,
        desc="Tokenizing",
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

    Example:

    >>> trainer = train_classifier(concatenate_with_real(real, synthetic), validation,
    ...                            args=GPT3MixTrainingArguments("out", num_train_epochs=5))
    >>> evaluate_classifier(trainer, test)
    {'accuracy': ..., 'macro_f1': ...}
    """
    names = _label_names(train_dataset, "train_dataset")
    eval_names = _label_names(eval_dataset, "eval_dataset")
    if eval_names != names:
        raise ValueError(f"Label names differ: train_dataset {names}, eval_dataset {eval_names}.")
    if args is None:
        args = GPT3MixTrainingArguments(output_dir=tempfile.mkdtemp(prefix="gpt3mix-classifier-"))
        logger.info(f"No args given: training with the paper's defaults into {args.output_dir}.")
    path = resolve_classifier(model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # The new classification head is drawn at random: seed it so that runs repeat.
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: index for index, name in enumerate(names)},
    )
    trainer = GPT3MixTrainer(
        model=model,
        args=args,
        train_dataset=tokenize_dataset(train_dataset, tokenizer, text_column, max_length),
        eval_dataset=tokenize_dataset(eval_dataset, tokenizer, text_column, max_length),
        processing_class=tokenizer,
        callbacks=callbacks,
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
    if "input_ids" not in test_dataset.column_names:
        test_dataset = tokenize_dataset(test_dataset, trainer.processing_class, text_column, max_length)
    output = trainer.predict(test_dataset, metric_key_prefix="test")
    return compute_metrics(EvalPrediction(predictions=output.predictions, label_ids=output.label_ids))
