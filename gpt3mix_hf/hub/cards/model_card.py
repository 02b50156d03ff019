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
from transformers.modelcard import parse_log_history

from ...credentials import find_secret
from ...provenance import GPT3MixConfig, as_config, library_versions
from ...state import read_json, write_json
from ...validation import check_fields, check_value
from .common import (
    CITATION,
    TEMPLATES,
    check_license,
    hub_id_of,
    provenance_table,
    rounded,
    saved_classifier_kind,
    table,
)
from .training_record import TRAINING_RECORD_NAME, read_training_record, training_hyperparameters, training_loss

MODEL_CARD_TEMPLATE = TEMPLATES / "model_card.md"

LOSS_DESCRIPTIONS = {
    "soft_ce": (
        "Soft cross-entropy, as in the paper: each row's loss is the cross-entropy between the classifier's "
        "distribution and the row's `soft_labels` (one-hot for real rows, the LM's label distribution for "
        "synthetic rows)."
    ),
    "kl": (
        "KL divergence from each row's `soft_labels` to the classifier's distribution, both at temperature T, "
        "scaled by T² as in distillation (one-hot targets for real rows)."
    ),
}
HARD_LOSS_DESCRIPTION = (
    "Cross-entropy on the hard `label` of every row (transformers' `Trainer` default): soft labels, if any, "
    "were not used."
)
ONE_HOT_NOTE = (
    " The training rows had no `soft_labels` column, so every target was one-hot: the loss was cross-entropy on "
    "the hard labels."
)
_RECORDED_CARD_FIELDS = ("base_model", "dataset_id", "dataset_name", "eval_dataset_id", "eval_dataset_name",
                         "eval_split")
_NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos",
                "model_preparation_time", "samples"}
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
        eval_dataset_id, eval_dataset_name, eval_split (`str`, *optional*): where `eval_results` were measured
            (the Hub id, a readable name, the split). Never guessed: without a Hub id, the scores are shown but no
            `model-index` entry credits them to a dataset.
        provenance (`GPT3MixConfig`, *optional*): the provenance of the training data.
        hyperparameters (`dict`): training hyper-parameters.
        loss (`dict`): `loss_type`, `temperature`, `synthetic_weight`, and `soft_targets` (whether the rows had
            `soft_labels`); empty: the stock `Trainer`'s hard-label cross-entropy.
        training_log (`list[dict]`): rows of the training-results table.
        label_names (`list[str]`): the model's labels, by id.
        versions (`dict[str, str]`): the library versions it was trained with (`gpt3mix_training.json` records
            them); default: those installed when the card is made.
        language, license, license_name, license_link, tags: metadata as in the dataset card's; `gpt3mix` and
            `text-classification` always tagged.

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
    versions: dict[str, str] = field(default_factory=dict)
    predict_example: str | None = None
    # Not stated unless given: nothing here knows the texts' language.
    language: str | list[str] | None = None
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        # eval_results is read from result files as they are: a dict, of which the numeric entries are kept below.
        check_fields(self, skip=("eval_results",))
        check_value(type(self).__name__, "eval_results", self.eval_results, dict)
        check_license(self.license, self.license_name, self.license_link)
        for tag in ("gpt3mix", "text-classification"):
            if tag not in self.tags:
                self.tags = [*self.tags, tag]
        if self.model_name is None:
            self.model_name = self.model_id.split("/")[-1]
        # The evaluation data is what the caller (or the training record) says it was, never a guess: without it
        # the scores are shown, but no `model-index` entry credits them to a dataset.
        if self.eval_dataset_name is None:
            self.eval_dataset_name = self.eval_dataset_id
        self.eval_results = {_metric_name(k): v for k, v in self.eval_results.items() if _metric_name(k) not in
                             _NOT_METRICS and isinstance(v, int | float)}

    def _eval_results(self) -> list[EvalResult]:
        # A model-index entry's dataset type is a Hub id: a name alone (a local file, or a dataset's builder name,
        # e.g. "sst2" for SetFit/sst2, which is another dataset on the Hub) credits the scores to no entry.
        if self.eval_dataset_id is None:
            return []
        return [
            EvalResult(
                task_type="text-classification",
                task_name="Text Classification",
                dataset_type=self.eval_dataset_id,
                dataset_name=self.eval_dataset_name,
                dataset_split=self.eval_split,
                metric_type=_METRIC_TYPES.get(name, name),
                metric_name=name.replace("_", " ").title(),
                metric_value=float(value),
                metric_args={"average": "macro"} if "macro" in name else None,
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
        text = f"{text} ({', '.join(details)}.)"
        if self.loss.get("soft_targets") is False:
            text += ONE_HOT_NOTE
        smoothing = self.hyperparameters.get("label_smoothing_factor")
        if smoothing:
            text += (f" Every target was smoothed first, as `Trainer` smooths labels: (1 − ε) × target + ε / "
                     f"labels, ε = `label_smoothing_factor` = {smoothing}.")
        return text

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            metric_lines=[f"{name.replace('_', ' ')}: {float(v)}" for name, v in self.eval_results.items()],
            loss_description=self._loss_description(),
            provenance_table=provenance_table(self.provenance) if self.provenance is not None else "",
            training_table=table([{key: rounded(value) for key, value in row.items()} for row in self.training_log]),
            predict_example=(self.predict_example or "a gripping, funny and moving film.").replace('"', '\\"'),
            versions=self.versions or library_versions(),
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
            license_name=self.license_name,
            license_link=self.license_link,
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


def eval_dataset_description(dataset) -> dict[str, str]:
    """`eval_dataset_name` / `eval_split` read from a `datasets.Dataset`'s own info, when it was loaded from the
    Hub under a name (a dataset built from files or in memory has none: the caller names it)."""
    info = getattr(dataset, "info", None)
    name = getattr(info, "dataset_name", None)
    if not name or name in ("json", "csv", "parquet", "text", "arrow", "generator", "pandas"):
        return {}
    described = {"eval_dataset_name": name}
    split = getattr(dataset, "split", None)
    if split is not None:
        described["eval_split"] = str(split)
    return described


def _fill_from_trainer(trainer, card_kwargs: dict) -> None:
    """The card fields a trainer knows and the caller did not give: the base model, the labels, and the
    evaluation data where the eval dataset names itself."""
    if card_kwargs.get("eval_dataset_name") is None and card_kwargs.get("eval_dataset_id") is None:
        for name, value in eval_dataset_description(getattr(trainer, "eval_dataset", None)).items():
            if card_kwargs.get(name) is None:
                card_kwargs[name] = value
    if card_kwargs.get("base_model") is None:
        card_kwargs["base_model"] = hub_id_of(getattr(trainer.model.config, "_name_or_path", None))
    card_kwargs.setdefault("label_names", label_names_of(trainer.model.config))


def model_card_from_trainer(
    trainer, *, model_id: str | None = None, provenance: Any = None, **card_kwargs
) -> ModelCard:
    """The model card of a classifier read from its `Trainer` (a `GPT3MixTrainer` or any `transformers.Trainer`):
    hyper-parameters from `trainer.args` at full precision, the loss that was used (`loss_type`, `temperature`,
    `synthetic_weight` of a `GPT3MixTrainer`, else the stock cross-entropy), the training-results table and the
    last evaluation from `trainer.state.log_history` (unless `eval_results` is given; with
    `load_best_model_at_end`, the evaluation of the best checkpoint).

    The evaluation data is named by `eval_dataset_name` / `eval_dataset_id` / `eval_split`; without them it is
    read from the eval dataset's own info where it has one (a Hub dataset), else the card shows the scores
    without crediting them to any dataset.

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
    log_history = list(trainer.state.log_history or [])
    _, lines, _ = parse_log_history(log_history)
    if card_kwargs.get("eval_results") is None:
        best_step = trainer.state.best_global_step if args.load_best_model_at_end else None
        card_kwargs["eval_results"] = final_eval_results(log_history, best_step)
    _fill_from_trainer(trainer, card_kwargs)
    if model_id is None:
        # Not published yet: the card names the output folder, which from_pretrained / pipeline load as it is.
        model_id = getattr(trainer, "hub_model_id", None) or args.hub_model_id or Path(args.output_dir).name
    return _render(
        provenance,
        model_id=model_id,
        hyperparameters=training_hyperparameters(args),
        loss=training_loss(args, getattr(trainer, "train_dataset", None)),
        training_log=[{key: rounded(value) for key, value in line.items()} for line in lines or []],
        **card_kwargs,
    )


def model_card_from_folder(folder: str | Path, *, model_id: str, provenance: Any = None, **card_kwargs) -> ModelCard:
    """The model card of a classifier saved in `folder` (`save_pretrained`), with what was written beside it:
    `gpt3mix_training.json` or the `Trainer`'s `training_args.bin` (hyper-parameters, the loss that was used, the
    base model and the evaluation data: `read_training_record`), `trainer_state.json` (training log),
    `test_results.json` or `eval_results.json` (`Trainer.save_metrics`). Nothing else is invented; keyword
    arguments (the fields of `GPT3MixModelCardData`) replace what the files say.

    Example:

    >>> card = model_card_from_folder("outputs/classifier", model_id="me/minilm-sst2", provenance=config)
    """
    folder = Path(folder)
    found: dict[str, Any] = {}
    if saved_classifier_kind(folder) == "model":
        found["label_names"] = label_names_of(AutoConfig.from_pretrained(folder))
    record = read_training_record(folder)
    for name in ("hyperparameters", "loss", "versions", *_RECORDED_CARD_FIELDS):
        if name in record:
            found[name] = record[name]
    state = read_json(folder / "trainer_state.json") if (folder / "trainer_state.json").exists() else {}
    log_history = state.get("log_history") or []
    if log_history:
        _, lines, _ = parse_log_history(log_history)
        found["training_log"] = [{key: rounded(value) for key, value in line.items()} for line in lines or []]
    for name in ("test_results.json", "eval_results.json"):
        if (folder / name).exists():
            found["eval_results"] = read_json(folder / name)
            if name == "test_results.json":
                # `save_metrics("test", ...)`: scored on the test split, not on the recorded evaluation split.
                found["eval_split"] = "test"
            break
    else:
        results = final_eval_results(log_history, state.get("best_global_step"))
        if results:
            found["eval_results"] = results
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
    """`GPT3MixTrainer.create_model_card`: write `model_card_from_trainer`'s card to `output_dir/README.md`, the
    provenance beside it, and `gpt3mix_training.json` (what the card read from the run, so that a card made
    later from the saved folder says the same), so that `trainer.push_to_hub(provenance=..., dataset_tags=...)`
    uploads them.

    `Trainer.create_model_card`'s arguments map to the card: `finetuned_from` is the base model, `dataset_tags`
    the training data's Hub id, `dataset` its name; `language`, `license`, `tags`, `model_name` as they are.
    Arguments the card cannot show are refused rather than ignored.
    """
    if dataset_args is not None:
        raise ValueError(
            "dataset_args has no place on the GPT3Mix model card: name the evaluation data with eval_dataset_id= / "
            "eval_dataset_name= / eval_split=."
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
    _fill_from_trainer(trainer, card_kwargs)
    card = model_card_from_trainer(trainer, provenance=config, **card_kwargs)
    # `push_to_hub` uploads what is written here: refuse what push_classifier would refuse.
    found = find_secret(card.content, trainer.args.hub_token)
    if found:
        raise ValueError(f"The model card contains {found}: it was not written. Remove it from the card arguments.")
    output_dir = Path(trainer.args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    card.save(output_dir / "README.md")
    record = {"hyperparameters": training_hyperparameters(trainer.args),
              "loss": training_loss(trainer.args, getattr(trainer, "train_dataset", None)),
              "versions": card_kwargs.get("versions") or library_versions()}
    record.update({name: card_kwargs.get(name) for name in _RECORDED_CARD_FIELDS})
    write_json(output_dir / TRAINING_RECORD_NAME, record)
    if config is not None:
        config.save_pretrained(output_dir)
    return output_dir / "README.md"
