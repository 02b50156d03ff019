"""The dataset card of a GPT3Mix dataset: `GPT3MixDatasetCardData` rendered from `templates/dataset_card.md`.

The YAML metadata is written by huggingface_hub's `DatasetCardData` (and `datasets`' `DatasetInfosDict` /
`MetadataConfigs` for the features and data files), so what the Hub parses is what those classes produce; the
body is filled from the provenance (`GPT3MixConfig`) and from the rows themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Sequence, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import CardData, DatasetCard, DatasetCardData
from transformers.utils import logging

from ...provenance import GPT3MixConfig, library_versions
from ...quality import quality_rows
from ...validation import check_fields
from .common import CITATION, TEMPLATES, check_license, provenance_table, sample_description, source_hub_id, table

logger = logging.get_logger(__name__)

DATASET_CARD_TEMPLATE = TEMPLATES / "dataset_card.md"

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
    "label": "the label (see the label mode under 'How it was made')",
    "soft_labels": "probability of each label, in the order of the `label` names",
    "uncalibrated_soft_labels": "the LM's label distribution before calibration (empty where it was not scored)",
    "label_prior": "the LM's content-free label prior divided out by calibration (empty without calibration)",
    "written_label": "the label word the LM wrote after its text",
    "source_ids": "the real rows (ids in the source sample) shown in the prompt",
    "generation": "the LM's raw line, before parsing",
    "failed_attempts": "generations tried before this one that did not parse, with the reason",
    "generated_tokens": "tokens the LM generated for this row, failed attempts included",
    "label_mass": "share of the next-token probability the label words covered (1.0 where scoring is exact)",
    "order_averaged_soft_labels": "the mean of the LM's label distributions over the prompt's example orders, before "
                                  "the task prior is divided out (label mode 'debiased')",
    "debias_prior": "the task-level label prior that the debiased label divides out",
    "is_synthetic": "whether the row was written by the LM (true) or is a real row (false)",
    "prompt": "the full prompt the LM completed",
}

# The report's counts shown on the card, in this order.
_COUNTS = {
    "rows_requested": "Synthetic rows asked for",
    "rows_written": "Synthetic rows written",
    "failed_rows": "Rows dropped (every attempt failed)",
    "parse_failures": "Generations that did not parse",
    "parse_failure_rate": "Parse-failure rate (of all generations)",
    "generated_tokens": "Tokens generated",
    "seconds": "Seconds",
    "samples_per_second": "Rows per second",
}


def size_category(num_rows: int) -> str:
    """The Hub's `size_categories` value for a dataset of `num_rows` rows."""
    for bound, name in _SIZE_CATEGORIES:
        if num_rows < bound:
            return name
    return "n>1B"


@dataclass
class GPT3MixDatasetCardData(CardData):
    """What the dataset card shows; `register_dataset` fills the parts read from the data.

    Args:
        repo_id (`str`): where the dataset is published, `namespace/name`.
        provenance (`GPT3MixConfig`, *optional*): what made the data.
        pretty_name (`str`, *optional*): the card's title.
        language, license (`str`, *optional*): passed through to the metadata; `license` is one of the Hub's ids.
        license_name, license_link (`str`, *optional*): the name and link of a licence not on the Hub's list (with
            `license="other"`).
        source_datasets (`list[str]`, *optional*): Hub ids of the real data; default: from the provenance.
        tags (`list[str]`): metadata tags; `synthetic` and `gpt3mix` are always included.
        num_sample_rows (`int`): synthetic rows shown in the card.

    Example:

    >>> card_data = GPT3MixDatasetCardData(repo_id="me/sst2-gpt3mix", provenance=config, license="mit")
    >>> card_data.register_dataset(synthetic)
    >>> card = DatasetCard.from_template(card_data, template_path=DATASET_CARD_TEMPLATE)
    """

    repo_id: str = "namespace/name"
    provenance: GPT3MixConfig | None = None
    pretty_name: str | None = None
    # Not stated unless given: nothing here knows the texts' language.
    language: str | list[str] | None = None
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    source_datasets: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    task_categories: list[str] = field(default_factory=lambda: ["text-classification"])
    num_sample_rows: int = 5

    # Filled by register_dataset.
    splits: dict[str, int] = field(default_factory=dict, init=False)
    split_bytes: dict[str, int] = field(default_factory=dict, init=False)
    has_real_rows: bool = field(default=False, init=False)
    features: Any = field(default=None, init=False)
    label_names: list[str] = field(default_factory=list, init=False)
    has_soft_labels: bool = field(default=True, init=False)
    sample_rows: list[dict] = field(default_factory=list, init=False)
    example_prompt: str | None = field(default=None, init=False)
    example_prompt_origin: str | None = field(default=None, init=False)
    counts_from_data: dict | None = field(default=None, init=False)

    def __post_init__(self):
        check_fields(self)
        check_license(self.license, self.license_name, self.license_link)
        for tag in ("gpt3mix", "synthetic"):
            if tag not in self.tags:
                self.tags = [*self.tags, tag]

    def register_dataset(self, dataset: Dataset | DatasetDict, split: str = "train") -> None:
        """Read splits, features, labels, a sample of synthetic rows and, without a report, counts."""
        splits = dataset if isinstance(dataset, DatasetDict) else DatasetDict({split: dataset})
        first = next(iter(splits.values()))
        self.splits = {name: len(part) for name, part in splits.items()}
        # The size `datasets` itself records for a split: the bytes of its Arrow table, of the rows selected only
        # (augment() selects the rows written from a table that holds the failed ones too).
        self.split_bytes = {name: int(part.flatten_indices(keep_in_memory=True).data.nbytes)
                            for name, part in splits.items()}
        self.features = first.features
        label = first.features.get("label")
        self.label_names = list(label.names) if isinstance(label, ClassLabel) else []
        self.has_soft_labels = "soft_labels" in first.column_names
        synthetic = first
        if "is_synthetic" in first.column_names:
            flags = np.asarray(first["is_synthetic"], dtype=bool)
            synthetic = first.select(np.flatnonzero(flags))
            self.has_real_rows = bool((~flags).any())
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
        if self.provenance is None or not len(real) or not self.label_names:
            return
        task = self.provenance.task
        k = min(self.provenance.augmenter.k, len(real))
        examples = [(real[i]["text"], real[i]["label"]) for i in range(k)]
        self.example_prompt = task.template.build(task.spec, self.label_names, examples)
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

    @property
    def library_version(self) -> str:
        if self.provenance is not None and "gpt3mix_hf" in self.provenance.versions:
            return self.provenance.versions["gpt3mix_hf"]
        return library_versions()["gpt3mix_hf"]

    def _columns(self) -> list[dict]:
        if self.features is None:
            return []
        columns = []
        for name, feature in self.features.items():
            if isinstance(feature, ClassLabel):
                kind = f"ClassLabel ({len(feature.names)} names)"
            elif isinstance(feature, Sequence | list):
                kind = "list"
            else:
                kind = getattr(feature, "dtype", type(feature).__name__)
            columns.append({"name": name, "type": kind, "description": COLUMN_DESCRIPTIONS.get(name, "")})
        return columns

    def _counts_rows(self) -> list[dict]:
        report = self.provenance.report if self.provenance is not None else None
        report = report.to_dict() if report is not None else self.counts_from_data
        if not report:
            return []
        rows = []
        for key, name in _COUNTS.items():
            if report.get(key) is None:
                continue
            value = report[key]
            if key == "parse_failure_rate":
                value = f"{value:.1%}"
            elif isinstance(value, float):
                value = f"{value:.2f}"
            rows.append({"count": name, "value": value})
        return rows

    def _quality_rows(self) -> list[dict]:
        report = self.provenance.report if self.provenance is not None else None
        quality = report.quality if report is not None else None
        if not quality:
            return []
        names = self.provenance.task.label_names or self.label_names
        return quality_rows(quality, names)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        config = self.provenance
        settings = config.augmenter if config is not None else None
        values.update(
            pretty_name=self.pretty_name or self.repo_id.split("/")[-1],
            text_type=config.task.spec.text_type if config else "text",
            label_type=config.task.spec.label_type if config else "label",
            k=settings.k if settings else None,
            label_mode=settings.label_mode if settings else None,
            template=config.task.template if config else None,
            library_version=self.library_version,
            source_description=sample_description(config.data) if config and config.data.dataset else None,
            splits_table=table([{"split": name, "rows": rows} for name, rows in self.splits.items()]),
            columns=self._columns(),
            settings_table=provenance_table(config) if config is not None else "",
            counts_table=table(self._counts_rows()),
            quality_table=table(self._quality_rows()),
            sample_table=table(self.sample_rows),
            citation=CITATION,
        )
        return values

    def to_card_data(self) -> DatasetCardData:
        """The YAML metadata, as huggingface_hub's `DatasetCardData` (what `DatasetCard.load` gives back)."""
        source_datasets = self.source_datasets
        if source_datasets is None and self.provenance is not None:
            hub_id = source_hub_id(self.provenance.data)
            source_datasets = [hub_id] if hub_id else None
        card_data = DatasetCardData(
            # The synthetic rows' labels and texts are the LM's; real rows published with them bring their own
            # ("found": taken from an existing dataset).
            annotations_creators=["machine-generated", "found"] if self.has_real_rows else ["machine-generated"],
            language_creators=None if self.has_real_rows else ["machine-generated"],
            language=self.language,
            license=self.license,
            license_name=self.license_name,
            license_link=self.license_link,
            pretty_name=self.pretty_name or self.repo_id.split("/")[-1],
            size_categories=[size_category(self.num_rows)],
            source_datasets=source_datasets,
            task_categories=self.task_categories,
            tags=self.tags,
        )
        if self.features is not None:
            split_dict = SplitDict()
            for name, rows in self.splits.items():
                split_dict.add(SplitInfo(name=name, num_examples=rows, num_bytes=self.split_bytes.get(name, 0)))
            info = DatasetInfo(features=self.features, splits=split_dict, dataset_size=sum(self.split_bytes.values()))
            DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
            data_files = [{"split": name, "path": f"data/{name}-*"} for name in self.splits]
            MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
        return card_data

    def to_yaml(self, line_break=None, original_order=None) -> str:
        return self.to_card_data().to_yaml(line_break=line_break)


def build_dataset_card(
    dataset: Dataset | DatasetDict,
    repo_id: str,
    provenance: GPT3MixConfig | None = None,
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
    if provenance is not None and not isinstance(provenance, GPT3MixConfig):
        raise TypeError(
            f"provenance must be a GPT3MixConfig (GPT3MixConfig.from_pretrained(path) reads a gpt3mix_config.json), "
            f"got {type(provenance).__name__}."
        )
    card_data = GPT3MixDatasetCardData(repo_id=repo_id, provenance=provenance, **card_kwargs)
    card_data.register_dataset(dataset, split=split)
    if not card_data.has_soft_labels:
        logger.warning("The dataset has no soft_labels column: it is published with hard labels, as its card says.")
    if card_data.license is None:
        logger.warning(
            f"No license given for {repo_id}: the card says so, and others cannot know whether they may reuse the "
            "data. Pass license= (e.g. the license of the real data and of the LM's outputs)."
        )
    return DatasetCard.from_template(card_data, template_path=str(DATASET_CARD_TEMPLATE))
