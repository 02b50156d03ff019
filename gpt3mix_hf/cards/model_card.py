"""The model card of a classifier trained on GPT3Mix data: `GPT3MixModelCardData` rendered from
`templates/model_card.md`, built one of two ways: `model_card_from_trainer` (a `Trainer` in memory) or
`model_card_from_folder` (a saved model with the files the `Trainer` writes beside it)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from huggingface_hub import CardData, ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult
from transformers import AutoConfig
from transformers.modelcard import extract_hyperparameters_from_trainer, parse_log_history

from ..credentials import find_secret
from ..provenance import GPT3MixConfig, as_config, library_versions
from ..state import read_json
from ..validation import check_fields, check_value
from .common import CITATION, TEMPLATES, hub_id_of, provenance_table, rounded, source_hub_id, table

MODEL_CARD_TEMPLATE = TEMPLATES / "model_card.md"

LOSS_DESCRIPTIONS = {
    "soft_ce": (
        "Soft cross-entropy, as in the paper: each row's loss is the cross-entropy between the classifier's "
        "distribution and the row's `soft_labels` (one-hot for real rows, the LM's label distribution for "
        "synthetic rows)."
    ),
    "kl": (
        "KL divergence from each row's `soft_labels` to the classifier's distribution at temperature T, scaled by "
        "T² as in distillation (one-hot targets for real rows)."
    ),
}
HARD_LOSS_DESCRIPTION = (
    "Cross-entropy on the hard `label` of every row (transformers' `Trainer` default): soft labels, if any, "
    "were not used."
)
_LOSS_FIELDS = ("loss_type", "temperature", "synthetic_weight")
# The hyper-parameters shown on a card built from a saved `training_args.json` (names as in TrainingArguments).
_CARD_HYPERPARAMETERS = (
    "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "seed", "optim", "weight_decay", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps",
    "early_stopping_patience", "metric_for_best_model",
)
_NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos"}
# model-index metric types for the usual metric names.
_METRIC_TYPES = {"accuracy": "accuracy", "f1": "f1", "macro_f1": "f1", "f1_macro": "f1", "precision": "precision",
                 "recall": "recall", "matthews_correlation": "matthews_correlation"}


def _metric_name(key: str) -> str:
    for prefix in ("eval_", "test_", "validation_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


@dataclass
class GPT3MixModelCardData(CardData):
    """What the classifier's model card shows; `model_card_from_trainer` / `model_card_from_folder` fill it.

    Args:
        model_id (`str`): where the model is published, `namespace/name`.
        model_name (`str`, *optional*): the card's title and the `model-index` name; default: the repo name.
        base_model (`str`, *optional*): the Hub id of the encoder it was fine-tuned from.
        dataset_id (`str`, *optional*): the Hub id of the (augmented) training data.
        dataset_name (`str`, *optional*): its readable name.
        eval_results (`dict[str, float]`): metric -> value on `eval_split` of `eval_dataset_id`.
        eval_dataset_id, eval_dataset_name, eval_split (`str`, *optional*): where `eval_results` were measured;
            default: the real data of the provenance.
        provenance (`GPT3MixConfig`, *optional*): the provenance of the training data.
        hyperparameters (`dict`): training hyper-parameters.
        loss (`dict`): `loss_type`, `temperature`, `synthetic_weight` (empty: hard-label cross-entropy).
        training_log (`list[dict]`): rows of the training-results table.
        label_names (`list[str]`): the model's labels, by id.
        language, license, tags: metadata passed through (`gpt3mix` and `text-classification` always tagged).

    Example:

    >>> card_data = GPT3MixModelCardData(model_id="me/minilm-sst2-gpt3mix", eval_results={"accuracy": 0.81})
    >>> card = ModelCard.from_template(card_data, template_path=MODEL_CARD_TEMPLATE)
    """

    model_id: str = "namespace/name"
    model_name: str | None = None
    base_model: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    eval_results: dict[str, float] = field(default_factory=dict)
    eval_dataset_id: str | None = None
    eval_dataset_name: str | None = None
    eval_split: str | None = None
    provenance: GPT3MixConfig | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    training_log: list[dict] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    predict_example: str | None = None
    language: str | list[str] | None = "en"
    license: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        # eval_results is read from result files as they are: a dict, of which the numeric entries are kept below.
        check_fields(self, skip=("eval_results",))
        check_value(type(self).__name__, "eval_results", self.eval_results, dict)
        for tag in ("gpt3mix", "text-classification"):
            if tag not in self.tags:
                self.tags = [*self.tags, tag]
        if self.model_name is None:
            self.model_name = self.model_id.split("/")[-1]
        data = self.provenance.data if self.provenance is not None else None
        if self.eval_dataset_id is None:
            self.eval_dataset_id = source_hub_id(data) or self.dataset_id
        if self.eval_dataset_name is None:
            self.eval_dataset_name = (data.dataset if data else None) or self.eval_dataset_id or "the evaluation data"
        if self.eval_split is None:
            self.eval_split = "validation"
        self.eval_results = {_metric_name(k): v for k, v in self.eval_results.items() if _metric_name(k) not in
                             _NOT_METRICS and isinstance(v, int | float)}

    def _eval_results(self) -> list[EvalResult]:
        return [
            EvalResult(
                task_type="text-classification",
                task_name="Text Classification",
                dataset_type=self.eval_dataset_id or "unknown",
                dataset_name=self.eval_dataset_name,
                dataset_split=self.eval_split,
                metric_type=_METRIC_TYPES.get(name, name),
                metric_name=name.replace("_", " ").title(),
                metric_value=rounded(float(value)),
                metric_config="macro" if "macro" in name else None,
            )
            for name, value in self.eval_results.items()
        ]

    def _loss_description(self) -> str:
        loss_type = self.loss.get("loss_type")
        if loss_type is None:
            return HARD_LOSS_DESCRIPTION
        text = LOSS_DESCRIPTIONS.get(loss_type, f"`{loss_type}` against each row's `soft_labels`.")
        details = [f"`loss_type={loss_type}`"]
        if loss_type == "kl" and self.loss.get("temperature") is not None:
            details.append(f"`temperature={self.loss['temperature']}`")
        if self.loss.get("synthetic_weight") is not None:
            details.append(
                f"synthetic rows weighted by `synthetic_weight={self.loss['synthetic_weight']}`, real rows by 1; the "
                "weighted sum is divided by the number of rows"
            )
        return f"{text} ({', '.join(details)}.)"

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            metric_lines=[f"{name.replace('_', ' ')}: {rounded(float(v))}" for name, v in self.eval_results.items()],
            loss_description=self._loss_description(),
            provenance_table=provenance_table(self.provenance) if self.provenance is not None else "",
            training_table=table([{key: rounded(value) for key, value in row.items()} for row in self.training_log]),
            predict_example=(self.predict_example or "a gripping, funny and moving film.").replace('"', '\\"'),
            versions=library_versions(),
            citation=CITATION,
        )
        return values

    def to_card_data(self) -> ModelCardData:
        """The YAML metadata as huggingface_hub's `ModelCardData` (`model-index` built from `eval_results`)."""
        return ModelCardData(
            base_model=self.base_model,
            datasets=[self.dataset_id] if self.dataset_id else None,
            eval_results=self._eval_results() or None,
            language=self.language,
            library_name="transformers",
            license=self.license,
            metrics=sorted({_METRIC_TYPES.get(name, name) for name in self.eval_results}) or None,
            model_name=self.model_name,
            pipeline_tag="text-classification",
            tags=self.tags,
        )

    def to_yaml(self, line_break=None, original_order=None) -> str:
        return self.to_card_data().to_yaml(line_break=line_break)


def final_eval_results(log_history: list[dict], best_step: int | None = None) -> dict:
    """The evaluation that describes the final model: the one at `best_step` when the best checkpoint was loaded
    at the end of training (`load_best_model_at_end`), else the last one."""
    evaluations = [entry for entry in log_history if any(key.startswith("eval_") for key in entry)]
    if best_step is not None:
        at_best = [entry for entry in evaluations if entry.get("step") == best_step]
        evaluations = at_best or evaluations
    if not evaluations:
        return {}
    return {key: value for key, value in evaluations[-1].items() if key.startswith("eval_")}


def label_names_of(config) -> list[str]:
    """The labels of a model config, by id."""
    id2label = getattr(config, "id2label", None) or {}
    return [id2label[i] for i in sorted(id2label)]


def _render(provenance: Any, **values) -> ModelCard:
    try:
        card_data = GPT3MixModelCardData(provenance=as_config(provenance), **values)
    except TypeError as error:
        accepted = sorted(f.name for f in fields(GPT3MixModelCardData) if f.name != "provenance")
        raise TypeError(f"{error}: the model card takes {accepted} and provenance.") from None
    return ModelCard.from_template(card_data, template_path=str(MODEL_CARD_TEMPLATE))


def model_card_from_trainer(
    trainer, *, model_id: str | None = None, provenance: Any = None, **card_kwargs
) -> ModelCard:
    """The model card of a classifier read from its `Trainer` (a `GPT3MixTrainer` or any `transformers.Trainer`):
    hyper-parameters from `trainer.args`, the soft-label loss settings (`loss_type`, `temperature`,
    `synthetic_weight`), the training-results table and the last evaluation from `trainer.state.log_history`
    (unless `eval_results` is given; with `load_best_model_at_end`, the evaluation of the best checkpoint).

    `GPT3MixTrainer.create_model_card` and `push_classifier(trainer, ...)` both render this card.

    Args:
        trainer (`Trainer`): the trainer after `train()`.
        model_id (`str`, *optional*): the repository; default: the trainer's hub id, else its output folder.
        provenance (`GPT3MixConfig`, path or `GPT3MixAugmenter`, *optional*): how the training data was made.
        card_kwargs: the fields of `GPT3MixModelCardData` (`dataset_id`, `eval_results`, `license`, ...).

    Example:

    >>> card = model_card_from_trainer(trainer, model_id="me/minilm-sst2-gpt3mix", provenance=config)
    >>> card.save("outputs/classifier/README.md")
    """
    args = trainer.args
    hyperparameters = extract_hyperparameters_from_trainer(trainer)
    loss = {name: getattr(args, name) for name in _LOSS_FIELDS if getattr(args, "loss_type", None) is not None}
    hyperparameters.update({name: value for name, value in loss.items() if value is not None})
    log_history = list(trainer.state.log_history or [])
    _, lines, _ = parse_log_history(log_history)
    if card_kwargs.get("eval_results") is None:
        best_step = trainer.state.best_global_step if args.load_best_model_at_end else None
        card_kwargs["eval_results"] = final_eval_results(log_history, best_step)
    if model_id is None:
        # Not published yet: the card names the output folder, which from_pretrained / pipeline load as it is.
        model_id = getattr(trainer, "hub_model_id", None) or args.hub_model_id or Path(args.output_dir).name
    card_kwargs.setdefault("base_model", hub_id_of(getattr(trainer.model.config, "_name_or_path", None)))
    card_kwargs.setdefault("label_names", label_names_of(trainer.model.config))
    return _render(
        provenance,
        model_id=model_id,
        hyperparameters={name: rounded(value) for name, value in hyperparameters.items()},
        loss=loss,
        training_log=[{key: rounded(value) for key, value in line.items()} for line in lines or []],
        **card_kwargs,
    )


def model_card_from_folder(folder: str | Path, *, model_id: str, provenance: Any = None, **card_kwargs) -> ModelCard:
    """The model card of a classifier saved in `folder` (`save_pretrained`), with what the `Trainer` wrote beside
    it: `training_args.json` (hyper-parameters and the soft-label loss), `trainer_state.json` (training log),
    `test_results.json` or `eval_results.json` (`Trainer.save_metrics`). Nothing else is invented; keyword
    arguments (the fields of `GPT3MixModelCardData`) replace what the files say.

    Example:

    >>> card = model_card_from_folder("outputs/classifier", model_id="me/minilm-sst2", provenance=config)
    """
    folder = Path(folder)
    found: dict[str, Any] = {}
    if (folder / "config.json").exists():
        found["label_names"] = label_names_of(AutoConfig.from_pretrained(folder))
    elif not (folder / "adapter_config.json").exists():  # a peft adapter has no config.json of its own
        raise FileNotFoundError(f"{folder} has no config.json: save the classifier there with save_pretrained().")
    if (folder / "training_args.json").exists():
        saved = read_json(folder / "training_args.json")
        # max_steps=-1 means "train num_train_epochs": not a setting worth showing.
        shown = [name for name in _CARD_HYPERPARAMETERS if saved.get(name) is not None and saved.get(name) != -1]
        found["hyperparameters"] = {name: saved[name] for name in shown}
        found["loss"] = {name: saved[name] for name in _LOSS_FIELDS if name in saved}
    state = read_json(folder / "trainer_state.json") if (folder / "trainer_state.json").exists() else {}
    log_history = state.get("log_history") or []
    if log_history:
        _, lines, _ = parse_log_history(log_history)
        found["training_log"] = [{key: rounded(value) for key, value in line.items()} for line in lines or []]
    for name, split in (("test_results.json", "test"), ("eval_results.json", "validation")):
        if (folder / name).exists():
            found["eval_results"], found["eval_split"] = read_json(folder / name), split
            break
    else:
        results = final_eval_results(log_history, state.get("best_global_step"))
        if results:
            found["eval_results"], found["eval_split"] = results, "validation"
    found.update({key: value for key, value in card_kwargs.items() if value is not None})
    return _render(provenance, model_id=model_id, **found)


def write_trainer_model_card(
    trainer,
    *,
    finetuned_from: str | None = None,
    dataset_tags: str | list[str] | None = None,
    dataset: str | list[str] | None = None,
    tasks: str | list[str] | None = None,
    dataset_args: str | list[str] | None = None,
    tags: str | list[str] | None = None,
    provenance: Any = None,
    **card_kwargs,
) -> Path:
    """`GPT3MixTrainer.create_model_card`: write `model_card_from_trainer`'s card to `output_dir/README.md` and
    the provenance beside it, so that `trainer.push_to_hub(provenance=..., dataset_tags=...)` uploads both.

    `Trainer.create_model_card`'s arguments map to the card: `finetuned_from` is the base model, `dataset_tags`
    the training data's Hub id, `dataset` its name; `language`, `license`, `tags`, `model_name` as they are.
    Arguments the card cannot show are refused rather than ignored.
    """
    if dataset_args is not None:
        raise ValueError(
            "dataset_args has no place on the GPT3Mix model card: the evaluation data comes from the provenance "
            "(or pass eval_dataset_id= / eval_dataset_name= / eval_split=)."
        )
    task_list = [tasks] if isinstance(tasks, str) else list(tasks or [])
    if any(task != "text-classification" for task in task_list):
        raise ValueError(f"tasks={tasks!r}: a GPT3Mix classifier's card is for text-classification only.")
    dataset_ids = [dataset_tags] if isinstance(dataset_tags, str) else list(dataset_tags or [])
    names = [dataset] if isinstance(dataset, str) else list(dataset or [])
    if len(dataset_ids) > 1 or len(names) > 1:
        raise ValueError("The card names one training dataset: give one dataset_tags (its Hub id) and one dataset.")
    given = {"base_model": finetuned_from, "dataset_id": dataset_ids[0] if dataset_ids else None,
             "dataset_name": names[0] if names else None, "tags": [tags] if isinstance(tags, str) else tags}
    card_kwargs.update({key: value for key, value in given.items() if value is not None})
    config = as_config(provenance)
    card = model_card_from_trainer(trainer, provenance=config, **card_kwargs)
    # `push_to_hub` uploads what is written here: refuse what push_classifier would refuse.
    found = find_secret(card.content, trainer.args.hub_token)
    if found:
        raise ValueError(f"The model card contains {found}: it was not written. Remove it from the card arguments.")
    output_dir = Path(trainer.args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    card.save(output_dir / "README.md")
    if config is not None:
        config.save_pretrained(output_dir)
    return output_dir / "README.md"
