"""Pooling that matches the encoder: a BERT classifier that reads a mean (or first-token) pooled sentence vector,
for checkpoints trained that way (sentence-transformers folders say so in `modules.json` and
`1_Pooling/config.json`), and the function that reads which pooling a checkpoint was trained with.

`PooledBertForSequenceClassification` is a plain `transformers` model: it trains with `Trainer`, saves with
`save_pretrained`, and, once `gpt3mix_hf` is imported, reloads with `AutoModelForSequenceClassification`
(its config type is registered with the auto classes).
"""

from __future__ import annotations

import json
from dataclasses import field
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertPreTrainedModel
from transformers.utils import logging

logger = logging.get_logger(__name__)

# What `pooled` vector the classification head reads. "pooler": the architecture's own head (for BERT, the
# pre-trained pooler: dense + tanh on the first token); "mean": the mean of the token states over the attention
# mask; "cls": the first token's state, no pooler. "auto" reads the checkpoint (see `checkpoint_pooling`).
POOLING_MODES = ("auto", "pooler", "mean", "cls")
HEADS = ("default", "mlp")


def classifier_head_field():
    """The `classifier_head` flag, for every command that trains a classifier."""
    return field(default="default", metadata={
        "help": "default: the architecture's own head (one linear layer on the pooled vector); mlp: two fully "
                "connected layers (the paper's).", "choices": list(HEADS)})


def pooling_field():
    """The `pooling` flag, for every command that trains a classifier."""
    return field(default="auto", metadata={
        "help": "The sentence vector the head reads: auto (what the checkpoint was trained with: mean for "
                "all-MiniLM-L6-v2, BERT's pooler for a plain BERT), mean, cls or pooler.",
        "choices": list(POOLING_MODES)})
# sentence-transformers' Pooling config flags, and the modes of ours they map to.
SENTENCE_TRANSFORMERS_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
POOLING_MODULE = "sentence_transformers.models.Pooling"


def checkpoint_pooling(model_path: str | Path) -> str | None:
    """The pooling a sentence-transformers checkpoint folder was trained with: `"mean"` or `"cls"`; None for a
    folder without `modules.json` (a plain transformers checkpoint, whose own head then applies).

    Raises a `ValueError` when the folder's Pooling module uses a pooling this package does not implement (max,
    mean-sqrt-len, weighted mean, last token, or several at once).

    Example:

    >>> checkpoint_pooling(resolve_classifier("minilm"))
    'mean'
    """
    folder = Path(model_path)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling = [module for module in modules if module.get("type") == POOLING_MODULE]
    if not pooling:
        return None
    config_file = folder / pooling[0].get("path", "") / "config.json"
    if not config_file.is_file():
        raise ValueError(
            f"{modules_file} lists a Pooling module at {pooling[0].get('path')!r}, but {config_file} does not exist: "
            "restore the folder, or pass pooling='mean' / 'cls' / 'pooler' explicitly."
        )
    config = json.loads(config_file.read_text(encoding="utf-8"))
    modes = [key for key, value in config.items() if key.startswith("pooling_mode") and value is True]
    if len(modes) == 1 and modes[0] in SENTENCE_TRANSFORMERS_FLAGS:
        return SENTENCE_TRANSFORMERS_FLAGS[modes[0]]
    raise ValueError(
        f"{config_file} asks for the pooling {modes or 'none'}; only {sorted(SENTENCE_TRANSFORMERS_FLAGS)} (one of "
        "them) are implemented. Pass pooling='mean', 'cls' or 'pooler' to choose one."
    )


class PooledBertConfig(BertConfig):
    r"""A `BertConfig` with the pooling and the head of [`PooledBertForSequenceClassification`].

    Args:
        pooling_mode (`str`, *optional*, defaults to `"mean"`): `"mean"` (mean of the token states over the
            attention mask, as sentence-transformers' mean pooling) or `"cls"` (the first token's state).
        classifier_head (`str`, *optional*, defaults to `"default"`): `"default"`: dropout and one linear layer on
            the pooled vector; `"mlp"`: the GPT3Mix paper's two fully connected layers (dense + tanh, dropout,
            linear), both trained from scratch.
        kwargs: the `BertConfig` fields.

    Example:

    >>> config = PooledBertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    ...                           pooling_mode="mean", num_labels=2)
    >>> PooledBertForSequenceClassification(config).config.pooling_mode
    'mean'
    """

    model_type = "gpt3mix_pooled_bert"

    def __init__(self, pooling_mode: str = "mean", classifier_head: str = "default", **kwargs):
        if pooling_mode not in ("mean", "cls"):
            raise ValueError(
                f"pooling_mode={pooling_mode!r} is not supported by PooledBertConfig: use 'mean' or 'cls' (for BERT's "
                "own pooler, use BertForSequenceClassification)."
            )
        if classifier_head not in HEADS:
            raise ValueError(f"classifier_head={classifier_head!r} is not supported: use one of {HEADS}.")
        self.pooling_mode = pooling_mode
        self.classifier_head = classifier_head
        super().__init__(**kwargs)


def mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of `hidden_states` (batch, tokens, hidden) over the tokens the attention mask keeps, as
    sentence-transformers computes it (a row without tokens gives zeros)."""
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class PooledBertForSequenceClassification(BertPreTrainedModel):
    r"""A BERT sequence classifier whose head reads the mean-pooled (or first-token) sentence vector instead of BERT's
    pooler: the pooling a sentence-transformers checkpoint such as all-MiniLM-L6-v2 was trained with. It loads the
    encoder's weights from such a folder (the pooler's weights, if any, are not used) and adds a fresh head.

    Example:

    >>> config = PooledBertConfig.from_pretrained(path, pooling_mode="mean", num_labels=2)
    >>> model = PooledBertForSequenceClassification.from_pretrained(path, config=config)
    >>> model.save_pretrained("out")  # reloads with AutoModelForSequenceClassification.from_pretrained("out")
    """

    config_class = PooledBertConfig
    config: PooledBertConfig

    def __init__(self, config: PooledBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        # The paper's head: a second fully connected layer (dense + tanh, like BERT's pooler) trained from scratch.
        self.dense = nn.Linear(config.hidden_size, config.hidden_size) if config.classifier_head == "mlp" else None
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def pool(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.config.pooling_mode == "mean":
            return mean_pool(hidden_states, attention_mask)
        return hidden_states[:, 0]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        # The stock Trainer passes the labelled rows of all micro-batches of an optimizer step (its forward takes
        # **kwargs): the loss is then a share of their sum, so that gradient accumulation gives one big batch's.
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        pooled = self.pool(outputs.last_hidden_state, attention_mask)
        if self.dense is not None:
            pooled = torch.tanh(self.dense(pooled))
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            # Single-label classification only (GPT3MixTrainer pins it); the stock Trainer needs the loss.
            reduction = "mean" if num_items_in_batch is None else "sum"
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1), reduction=reduction)
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


AutoConfig.register(PooledBertConfig.model_type, PooledBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(PooledBertConfig, PooledBertForSequenceClassification, exist_ok=True)
