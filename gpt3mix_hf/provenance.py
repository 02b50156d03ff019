"""`gpt3mix_config.json`: everything that made an augmented dataset, as a file that can make it again.

`GPT3MixConfig` *is* the file (peft's `PeftConfig` pattern): one dataclass per section, each key spelled once,
written with `save_pretrained` and read back typed with `from_pretrained`. It holds the augmenter's settings
(`GPT3MixAugmenter.config()`: LM, task spec, prompt template, sampling, k, ratio, selection, label mode, seed),
where the real rows came from (benchmark, Hub id or file, split, class-balanced sub-sample and its seed, and a
hash of the rows themselves), the batch sizes that decide which prompts are decoded together, the counts of the
run, and the library versions. `GPT3MixConfig.make_augmenter` rebuilds the augmenter and `regenerate` runs it
again: with the same data, model and versions, the rows are identical.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers.utils import logging

from .augmenter import GPT3MixAugmenter
from .backends.base import Backend, SamplingConfig
from .backends.local.transformers import machine_kind
from .credentials import check_no_secrets, find_secret
from .data import DataSourceArguments, align_label_names, class_balanced_sample, load_split
from .labels import CONTENT_FREE_TEXTS
from .prompt import PromptTemplate
from .spec import TaskSpec
from .state import read_json, write_json
from .validation import ConfigTypeError, check_fields

logger = logging.get_logger(__name__)

CONFIG_NAME = "gpt3mix_config.json"
FORMAT = "gpt3mix_config"
# 2: rows seeded by their content (not their position), label_mode "hard" = the arg-max of the LM's label
# distribution, selection "uniform" = the paper's (k rows of the pool), the LM's weights recorded. Files of
# format_version 1 (and files without one, from the first release) may have been made under the older rules:
# rows seeded by position, "hard" meaning the written label, "uniform" meaning today's "anchored".
FORMAT_VERSION = 2
OLDER_FORMAT_RULES = (
    "rows seeded by their position in the data, label_mode 'hard' meaning the label the LM wrote (today's "
    "'written'), selection 'uniform' meaning the mapped row plus partners (today's 'anchored')"
)


def library_versions() -> dict[str, str]:
    """The versions that can change generated rows or trained weights."""
    versions = {"python": platform.python_version()}
    for package in ("gpt3mix_hf", "torch", "transformers", "datasets", "huggingface_hub"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def dataset_sha256(dataset: Dataset, text_column: str = "text", label_column: str = "label") -> str:
    """A hash of the real rows (texts, label names, order): regeneration checks it to be sure it starts
    from the same data."""
    digest = hashlib.sha256()
    names = dataset.features[label_column].names
    digest.update(json.dumps(names).encode())
    for text, label in zip(dataset[text_column], dataset[label_column], strict=True):
        digest.update(json.dumps([text, names[label]], ensure_ascii=False).encode())
    return digest.hexdigest()


logger = logging.get_logger(__name__)

_FILE_FIX = "the file was written by another gpt3mix_hf version, or edited"


def _from_section(cls, values: Any, section: str, fix: str = _FILE_FIX, where: str = CONFIG_NAME):
    """`cls(**values)` for one section of the file, refusing keys the schema does not have."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: `{section}` must be an object, got {type(values).__name__}: {fix}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{where}: `{section}` has keys {unknown} that {cls.__name__} does not define (it has "
            f"{sorted(known)}): {fix}."
        )
    try:
        return cls(**values)
    except ConfigTypeError as error:
        raise ValueError(f"{where}: `{section}` holds a value of the wrong kind: {error} ({fix})") from None
    except TypeError as error:
        raise ValueError(f"{where}: `{section}` is incomplete: {error}.") from None


@dataclass
class DataSource:
    """Where the real rows came from: the data flags of `gpt3mix augment` (`DataArguments`), and
    the size and hash of the rows, so regeneration can check it starts from the same ones.

    `dataset` is a benchmark name, a Hub id or a `.jsonl`/`.csv` file; `None` when the rows were passed in and
    their origin is unknown (then regeneration needs them passed in again).
    """

    dataset: str | None = None
    data_dir: str | None = None
    dataset_config: str | None = None
    revision: str | None = None
    split: str = "train"
    text_column: str = "text"
    label_column: str = "label"
    sample_fraction: float | None = None
    sample_per_class: int | None = None
    sample_seed: int = 0
    num_rows: int | None = None
    sha256: str | None = None

    def __post_init__(self):
        if self.sample_seed is None:
            # Files of the first release wrote null for a seed not given, which meant 0.
            self.sample_seed = 0
        check_fields(self)
        if self.sample_fraction is not None and self.sample_per_class is not None:
            raise ValueError(
                f"data has both sample_fraction={self.sample_fraction} and sample_per_class={self.sample_per_class}: "
                "a class-balanced sub-sample is described by one of them; remove the other."
            )

    def load(self, data_dir: str | Path | None = None) -> Dataset:
        """The real rows this describes; `data_dir` replaces the recorded folder (a path on the machine that
        made the data)."""
        if not self.dataset:
            raise ValueError(
                "The provenance file does not say which dataset the real rows came from (data.dataset is empty): "
                "pass the rows yourself, e.g. augmenter_from_config(config, dataset=train)."
            )
        # The loader `gpt3mix augment` and `gpt3mix experiment` use: benchmarks, split folders, files, Hub ids.
        source = DataSourceArguments(
            dataset=self.dataset, dataset_config=self.dataset_config, revision=self.revision,
            data_dir=str(data_dir) if data_dir is not None else self.data_dir, text_column=self.text_column,
            label_column=self.label_column,
        )
        rows = load_split(source, self.split)
        if self.sample_fraction is not None or self.sample_per_class is not None:
            rows = class_balanced_sample(rows, fraction=self.sample_fraction, per_class=self.sample_per_class,
                                         seed=self.sample_seed, label_column=self.label_column)
        return rows


@dataclass
class AugmenterSettings:
    """Everything that decides the synthetic rows: `GPT3MixAugmenter.config()`, typed."""

    backend: dict
    spec: TaskSpec
    template: PromptTemplate
    sampling: SamplingConfig
    label_names: list[str]
    k: int = 2
    ratio: float = 1.0
    selection: str = "uniform"
    label_mode: str = "soft"
    calibrate: bool = False
    content_free_texts: list[str] = field(default_factory=lambda: list(CONTENT_FREE_TEXTS))
    seed: int = 0
    max_attempts: int = 4
    text_column: str = "text"
    label_column: str = "label"
    # label_mode="debiased" only (None otherwise, and then left out of the file, as files before the mode).
    debias_orders: int | None = None
    debias_prior_rows: int | None = None

    def __post_init__(self):
        # Read back from JSON, the nested settings are plain dicts: make them the objects they describe.
        if isinstance(self.spec, dict):
            self.spec = TaskSpec(**self.spec)
        if isinstance(self.template, dict):
            self.template = PromptTemplate(**self.template)
        if isinstance(self.sampling, dict):
            self.sampling = SamplingConfig(**self.sampling)
        check_fields(self)

    def to_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(spec=self.spec.to_dict(), template=self.template.to_dict(), sampling=self.sampling.to_dict())
        for name in ("debias_orders", "debias_prior_rows"):
            if values[name] is None:
                del values[name]
        return values


@dataclass
class RunSettings:
    """How the run was batched, and where: `map_batch_size` (real rows per `Dataset.map` batch), `num_proc` and
    the backend's `generation_batch_size` decide which prompts are decoded together. In float32 the rows do not
    depend on them; in bfloat16 they do, and on the kind of `machine` too (`machine_kind`), so regeneration
    uses the recorded values and warns on another machine."""

    map_batch_size: int = 16
    generation_batch_size: int | None = None
    keep_prompt: bool = False
    num_proc: int | None = None
    machine: str | None = None

    def __post_init__(self):
        check_fields(self)
        for name in ("map_batch_size", "generation_batch_size", "num_proc"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"run.{name} must be a whole number >= 1, got {value!r}.")


@dataclass
class GPT3MixConfig:
    """The provenance of one augmentation run: the content of `gpt3mix_config.json`.

    Args:
        augmenter (`AugmenterSettings`): the augmenter's settings.
        data (`DataSource`): where the real rows came from.
        run (`RunSettings`): the batch sizes of the run.
        report (`dict`, *optional*): the run's counts (`AugmentationReport.to_dict()`).
        versions (`dict[str, str]`): the library versions that made the rows.
        format_version (`int`): the version of this schema.

    Example:

    >>> synthetic = augmenter.augment(batch_size=16)
    >>> config = GPT3MixConfig.from_augmenter(augmenter, train, data={"dataset": "sst2", "sample_per_class": 8})
    >>> config.save_pretrained("outputs/sst2")
    >>> GPT3MixConfig.from_pretrained("outputs/sst2").augmenter.seed
    0
    """

    augmenter: AugmenterSettings
    data: DataSource = field(default_factory=DataSource)
    run: RunSettings = field(default_factory=RunSettings)
    report: dict | None = None
    versions: dict[str, str] = field(default_factory=library_versions)
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_augmenter(
        cls,
        augmenter: GPT3MixAugmenter,
        dataset: Dataset | None = None,
        *,
        data: DataSource | dict | None = None,
        map_batch_size: int = 16,
        num_proc: int | None = None,
        report: Any | None = None,
    ) -> GPT3MixConfig:
        """The provenance of one `augmenter.augment()` run.

        Args:
            augmenter (`GPT3MixAugmenter`): the augmenter that made the rows.
            dataset (`Dataset`, *optional*): the real rows it was given; hashed so that regeneration can check
                it starts from the same rows.
            data (`DataSource` or `dict`, *optional*): where those rows came from (the flags of `gpt3mix
                augment`). Without it, the file describes the rows but regeneration needs them passed in.
            map_batch_size (`int`): the `batch_size` given to `augment`.
            num_proc (`int`, *optional*): the `num_proc` given to `augment`.
            report (`AugmentationReport`, *optional*): the run's counts; default `augmenter.report` if it exists.
        """
        if isinstance(data, DataSource):
            source = DataSource(**asdict(data))
        else:
            given = {"text_column": augmenter.text_column, "label_column": augmenter.label_column}
            given.update({key: value for key, value in (data or {}).items() if value is not None})
            source = _from_section(DataSource, given, "data", "data= takes these keys only (gpt3mix augment's flags)")
        if dataset is not None:
            source.num_rows = len(dataset)
            source.sha256 = dataset_sha256(dataset, augmenter.text_column, augmenter.label_column)
        report = report if report is not None else getattr(augmenter, "report", None)
        config = cls(
            augmenter=_from_section(
                AugmenterSettings, augmenter.config(), "augmenter",
                "GPT3MixAugmenter.config() has a setting the provenance schema lacks: add it to AugmenterSettings",
            ),
            data=source,
            run=RunSettings(map_batch_size, getattr(augmenter.backend, "batch_size", None), augmenter.keep_prompt,
                            num_proc, getattr(augmenter.backend, "machine", None)),
            report=report.to_dict() if report is not None else None,
        )
        check_no_secrets(config.to_dict())
        return config

    # -- the file ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "data": asdict(self.data),
            "augmenter": self.augmenter.to_dict(),
            "run": asdict(self.run),
            "report": self.report,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, values: dict, where: str = "gpt3mix_config") -> GPT3MixConfig:
        """The config of a parsed `gpt3mix_config.json`, checked: every section has the schema's keys only."""
        if not isinstance(values, dict) or values.get("format", FORMAT) != FORMAT or "augmenter" not in values:
            raise ValueError(f"{where} is not a gpt3mix_config.json: it has no 'augmenter' section.")
        # A file without a version is from the first release, not from this one.
        version = values.get("format_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(
                f"{where} has format_version {version!r}: it must be a whole number >= 1 (this gpt3mix_hf writes "
                f"{FORMAT_VERSION}): {_FILE_FIX}."
            )
        if version < FORMAT_VERSION:
            logger.warning(
                f"{where} has format_version {version}{'' if 'format_version' in values else ' (it has none)'}, older "
                f"than this gpt3mix_hf writes ({FORMAT_VERSION}): its rows may have been made under older rules "
                f"({OLDER_FORMAT_RULES}). It is read for its settings; regenerating from it is refused, because "
                "today's rules may give other rows (regenerate(..., check_format=False) makes rows under today's "
                "rules anyway)."
            )
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{where} has format_version {version}, newer than this gpt3mix_hf reads ({FORMAT_VERSION}): "
                "upgrade gpt3mix_hf."
            )
        unknown = sorted(set(values) - {"format", "format_version", "data", "augmenter", "run", "report", "versions"})
        if unknown:
            raise ValueError(f"{where} has sections {unknown} that gpt3mix_config.json does not define.")
        try:
            return cls(
                augmenter=_from_section(AugmenterSettings, values["augmenter"], "augmenter", where=where),
                data=_from_section(DataSource, values.get("data") or {}, "data", where=where),
                run=_from_section(RunSettings, values.get("run") or {}, "run", where=where),
                report=values.get("report"),
                versions=values.get("versions") or {},
                format_version=version,
            )
        except ConfigTypeError as error:
            raise ValueError(f"{where}: {error} ({_FILE_FIX})") from None

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write `save_directory/gpt3mix_config.json` atomically; refused if it holds a credential."""
        if Path(save_directory).suffix == ".json":
            raise ValueError(
                f"save_pretrained takes a folder (it writes {CONFIG_NAME} there), got the file name {save_directory}."
            )
        record = self.to_dict()
        check_no_secrets(record)
        found = find_secret(json.dumps(record, ensure_ascii=False), shapes=False)
        if found:
            raise ValueError(f"The provenance holds {found}: it must not be written to a published file.")
        return write_json(Path(save_directory) / CONFIG_NAME, record)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> GPT3MixConfig:
        """Read a `gpt3mix_config.json`: the file, or the folder that holds it."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(
                f"No provenance file at {path}: it is written beside the data as {CONFIG_NAME}."
            )
        return cls.from_dict(read_json(path), where=str(path))

    # -- regeneration ---------------------------------------------------------------------------------------

    def make_augmenter(
        self,
        *,
        dataset: Dataset | None = None,
        backend: Backend | None = None,
        data_dir: str | Path | None = None,
        device: str | None = None,
        check_data: bool = True,
        check_format: bool = True,
        **backend_options,
    ) -> GPT3MixAugmenter:
        """The augmenter this file describes, on the same real rows.

        Args:
            dataset (`Dataset`, *optional*): the real rows; default: loaded as `data` says.
            backend (`Backend`, *optional*): the LM; default: rebuilt from the recorded identity with the
                backend's `from_identity`.
            data_dir (`str`, *optional*): where the benchmark's JSONL files are, instead of the recorded folder.
            device (`str`, *optional*): where to load a local LM.
            check_data (`bool`): refuse real rows whose hash differs from the recorded one.
            check_format (`bool`): refuse a file of an older `format_version`, whose rows today's rules may not
                make again; `False` makes rows under today's rules (they may differ from the published ones).
            backend_options: passed to the backend's `from_identity`: a served backend needs `base_url=` (the
                file records no URL and no key) and takes `api_key_env=`.
        """
        if check_format and self.format_version < FORMAT_VERSION:
            raise ValueError(
                f"This provenance has format_version {self.format_version}; this gpt3mix_hf makes rows under the "
                f"rules of format_version {FORMAT_VERSION}, and the file's rows may have been made under older ones "
                f"({OLDER_FORMAT_RULES}), so they would not come back the same. Install the gpt3mix_hf version the "
                f"file records ({self.versions.get('gpt3mix_hf', 'unknown')}), or pass check_format=False to make "
                "rows under today's rules."
            )
        settings, source = self.augmenter, self.data
        if dataset is None:
            dataset = DataSource(
                **{**asdict(source), "text_column": settings.text_column, "label_column": settings.label_column}
            ).load(data_dir)
        column = settings.label_column
        names = list(dataset.features[column].names) if column in dataset.column_names else None
        if names is not None and names != settings.label_names and sorted(names) == sorted(settings.label_names):
            dataset = align_label_names(dataset, column, settings.label_names)  # the same classes: by name
            names = settings.label_names
        if names is not None and names != settings.label_names:
            raise ValueError(
                f"The real rows have labels {names}, the provenance file {settings.label_names}: the label ids "
                "would not mean the same: regenerate from rows with the file's label_names."
            )
        if check_data and source.sha256 is not None:
            found = dataset_sha256(dataset, settings.text_column, column)
            if found != source.sha256:
                raise ValueError(
                    f"The real rows differ from those the dataset was made from ({len(dataset)} rows, sha256 "
                    f"{found[:12]}..., recorded {source.num_rows} rows, {source.sha256[:12]}...): check the data "
                    "folder, split and sub-sample, or pass check_data=False to generate from these rows anyway."
                )
        dtype = settings.backend.get("dtype")
        if dtype not in (None, "float32") and self.run.machine is not None:
            here = machine_kind(device or settings.backend.get("device") or "cpu")
            if here != self.run.machine:
                logger.warning(
                    f"These rows were generated in {dtype} on another kind of machine ({self.run.machine}; this is "
                    f"{here}): {dtype} rows are the same for the same settings on the same kind of machine only, so "
                    "some texts may differ. Rows generated in float32 regenerate the same anywhere."
                )
        if backend is None:
            if settings.backend.get("backend") == "transformers":
                # The local LM is rebuilt with the recorded batch size: it decides each prompt's padding.
                backend_options = {"batch_size": self.run.generation_batch_size, "device": device, **backend_options}
            backend = Backend.from_identity(settings.backend, **backend_options)
        options = {}
        if settings.calibrate:
            # Passed only when set, so files from before calibration existed build on any augmenter version.
            options["calibrate"] = True
            options["content_free_texts"] = tuple(settings.content_free_texts)
        if settings.label_mode == "debiased":
            options.update(debias_orders=settings.debias_orders, debias_prior_rows=settings.debias_prior_rows)
        return GPT3MixAugmenter(
            backend,
            dataset,
            settings.spec,
            k=settings.k,
            ratio=settings.ratio,
            selection=settings.selection,
            label_mode=settings.label_mode,
            seed=settings.seed,
            sampling=settings.sampling,
            template=settings.template,
            text_column=settings.text_column,
            label_column=column,
            max_attempts=settings.max_attempts,
            keep_prompt=self.run.keep_prompt,
            **options,
        )


# The functional spelling, as exported by the package.


def build_config(augmenter: GPT3MixAugmenter, dataset: Dataset | None = None, **kwargs) -> GPT3MixConfig:
    """`GPT3MixConfig.from_augmenter`."""
    return GPT3MixConfig.from_augmenter(augmenter, dataset, **kwargs)


def save_config(config: GPT3MixConfig, save_directory: str | Path) -> Path:
    """`config.save_pretrained(save_directory)`."""
    return as_config(config).save_pretrained(save_directory)


def load_config(path: str | Path) -> GPT3MixConfig:
    """`GPT3MixConfig.from_pretrained(path)`."""
    return GPT3MixConfig.from_pretrained(path)


def as_config(provenance: Any) -> GPT3MixConfig | None:
    """A provenance given as a `GPT3MixConfig`, its dict, the path of a `gpt3mix_config.json` (or its folder),
    or the `GPT3MixAugmenter` that made the data, as a checked `GPT3MixConfig` (None stays None)."""
    if provenance is None or isinstance(provenance, GPT3MixConfig):
        config = provenance
    elif isinstance(provenance, GPT3MixAugmenter):
        config = GPT3MixConfig.from_augmenter(provenance)
    elif isinstance(provenance, str | Path):
        config = GPT3MixConfig.from_pretrained(provenance)
    elif isinstance(provenance, dict):
        config = GPT3MixConfig.from_dict(provenance)
    else:
        raise TypeError(
            "provenance must be a GPT3MixConfig, the path of a gpt3mix_config.json, or the GPT3MixAugmenter that "
            f"made the data; got {type(provenance).__name__}."
        )
    if config is not None:
        check_no_secrets(config.to_dict())
    return config


def augmenter_from_config(config: GPT3MixConfig | str | Path, **kwargs) -> GPT3MixAugmenter:
    """The augmenter a provenance file describes (keyword arguments as `GPT3MixConfig.make_augmenter`).

    Example:

    >>> augmenter = augmenter_from_config("outputs/sst2/gpt3mix_config.json", data_dir="data")
    """
    return as_config(config).make_augmenter(**kwargs)


def regenerate(config: GPT3MixConfig | str | Path, **kwargs) -> Dataset:
    """Make the synthetic rows a provenance file describes again (keyword arguments as `make_augmenter`).

    Example:

    >>> synthetic = regenerate("outputs/sst2/gpt3mix_config.json", data_dir="data")
    """
    config = as_config(config)
    augmenter = config.make_augmenter(**kwargs)
    return augmenter.augment(batch_size=config.run.map_batch_size, num_proc=config.run.num_proc,
                             load_from_cache_file=False)
