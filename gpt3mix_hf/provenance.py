"""`gpt3mix_config.json`: everything that made an augmented dataset, as a file that can make it again.

`GPT3MixConfig` *is* the file (peft's `PeftConfig` pattern): one dataclass per section, each key spelled once,
written with `save_pretrained` and read back typed with `from_pretrained`. It holds the augmenter's settings
(its `AugmenterConfig`), the LM's identity, the task (spec, prompt template, label names), sampling,
where the real rows came from (benchmark, Hub id or file, split, class-balanced sub-sample and its seed, and a
hash of the rows themselves), the batch sizes that decide which prompts are decoded together, the counts of the
run, and the library versions. `regeneration.make_augmenter` rebuilds the augmenter and `regenerate` runs it
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

from .augment_run import AugmentationReport, RunSettings, default_map_batch_size
from .augmenter import GPT3MixAugmenter
from .backends.base import SamplingConfig
from .config import AugmenterConfig
from .credentials import check_no_secrets, find_secret
from .data import DataArguments
from .prompt import PromptTemplate
from .spec import TaskSpec
from .state import read_json, write_json
from .validation import ConfigTypeError, check_fields

logger = logging.get_logger(__name__)

CONFIG_NAME = "gpt3mix_config.json"
FORMAT = "gpt3mix_config"
# 3: the augmenter's settings are an `AugmenterConfig` section (keep_prompt with them), beside `backend`, `task`
# and `sampling` sections. 2: the same rows, the settings and those objects in one `augmenter` section (read and
# upgraded). 1 (or no version): rows made under older rules, which this version does not make again.
FORMAT_VERSION = 3


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
        raise ValueError(f"{where}: `{section}` is incomplete: {error} ({fix})") from None


def _report_section(values: Any, where: str) -> AugmentationReport:
    """The `report` section: `AugmentationReport.to_dict()`, whose derived rates are computed again, not read."""
    if isinstance(values, dict):
        values = {key: value for key, value in values.items() if key not in AugmentationReport.DERIVED}
    return _from_section(AugmentationReport, values, "report", where=where)


@dataclass
class DataSource(DataArguments):
    """Where the real rows came from: the data flags of `gpt3mix augment` (`DataArguments`), and the size and
    hash of the rows, so regeneration can check it starts from the same ones.

    `dataset` is a benchmark name, a Hub id or a `.jsonl`/`.csv` file; `None` when the rows were passed in and
    their origin is unknown (then regeneration needs them passed in again).
    """

    num_rows: int | None = None
    sha256: str | None = None

    def load(self, data_dir: str | Path | None = None) -> Dataset:
        """The real rows this describes; `data_dir` replaces the recorded folder (a path on the machine that
        made the data)."""
        if not self.dataset:
            raise ValueError(
                "The provenance file does not say which dataset the real rows came from (data.dataset is empty): "
                "pass the rows yourself, e.g. make_augmenter(config, dataset=train)."
            )
        return super().load(data_dir)


@dataclass
class TaskSection:
    """What the LM is shown: the task spec, the prompt template, and the label names in id order."""

    spec: TaskSpec
    template: PromptTemplate
    label_names: list[str]

    def __post_init__(self):
        # Read back from JSON, the nested settings are plain dicts: make them the objects they describe.
        if isinstance(self.spec, dict):
            self.spec = TaskSpec(**self.spec)
        if isinstance(self.template, dict):
            self.template = PromptTemplate(**self.template)
        check_fields(self)

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "template": self.template.to_dict(), "label_names": self.label_names}


@dataclass
class GPT3MixConfig:
    """The provenance of one augmentation run: the content of `gpt3mix_config.json`.

    Args:
        augmenter (`AugmenterConfig`): the augmenter's settings.
        backend (`dict`): the LM's identity (`Backend.identity`), from which `Backend.from_identity` rebuilds it.
        task (`TaskSection`): the task spec, prompt template and label names.
        sampling (`SamplingConfig`): how the LM sampled.
        data (`DataSource`): where the real rows came from.
        run (`RunSettings`): the batch sizes of the run, and the machine.
        report (`AugmentationReport`, *optional*): the run's counts and the quality of its rows (in the file:
            `AugmentationReport.to_dict()`; the failures are in `gpt3mix augment`'s failures.jsonl).
        versions (`dict[str, str]`): the library versions that made the rows.
        format_version (`int`): the version of this schema.

    Example:

    >>> synthetic = augmenter.augment()
    >>> config = GPT3MixConfig.from_augmenter(augmenter, train, data={"dataset": "sst2", "sample_per_class": 8})
    >>> config.save_pretrained("outputs/sst2")
    >>> GPT3MixConfig.from_pretrained("outputs/sst2").augmenter.seed
    0
    """

    augmenter: AugmenterConfig
    backend: dict
    task: TaskSection
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    data: DataSource = field(default_factory=DataSource)
    run: RunSettings = field(default_factory=RunSettings)
    report: AugmentationReport | None = None
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
        map_batch_size: int | None = None,
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
            map_batch_size (`int`, *optional*): the `batch_size` given to `augment`; default: the one the run's
                report recorded (without a report, `augment`'s default, `default_map_batch_size`).
            num_proc (`int`, *optional*): the `num_proc` given to `augment`; default: the report's.
            report (`AugmentationReport`, *optional*): the run's counts; default `augmenter.report` if it exists.

        Refused: a run over other rows than the augmenter's whole pool (a part of it, or `augment(pool=...)`), and
        a `dataset` other than the pool: `regenerate` augments the recorded pool whole.
        """
        if isinstance(data, DataSource):
            source = DataSource(**asdict(data))
        else:
            given = {"text_column": augmenter.text_column, "label_column": augmenter.label_column}
            given.update({key: value for key, value in (data or {}).items() if value is not None})
            source = _from_section(DataSource, given, "data", "data= takes these keys only (gpt3mix augment's flags)")
        report = report if report is not None else getattr(augmenter, "report", None)
        if getattr(report, "augmented_the_pool", None) is False:
            raise ValueError(
                "This run augmented other rows than the augmenter's whole pool (a part of it, or with pool=): a "
                "provenance file describes a run over the pool, which regenerate() makes again. Build the augmenter "
                "on the rows to augment, and augment() them all, to record it."
            )
        if dataset is not None:
            source.num_rows = len(dataset)
            source.sha256 = dataset_sha256(dataset, augmenter.text_column, augmenter.label_column)
            names = dataset.features[augmenter.label_column].names
            rows = [(text, names[label]) for text, label in
                    zip(dataset[augmenter.text_column], dataset[augmenter.label_column], strict=True)]
            if rows != [(text, augmenter.label_names[label]) for text, label in
                        zip(augmenter.pool_texts, augmenter.pool_labels, strict=True)]:
                raise ValueError(
                    f"dataset ({len(dataset)} rows) is not the augmenter's pool ({len(augmenter.pool_texts)} rows), "
                    "which regenerate() augments again: pass the rows the augmenter was built with."
                )
        if map_batch_size is None:
            map_batch_size = getattr(report, "map_batch_size", None) or default_map_batch_size(augmenter.backend)
        if num_proc is None:
            num_proc = getattr(report, "num_proc", None)
        config = cls(
            augmenter=AugmenterConfig(**augmenter.config.to_dict()),
            backend=augmenter.backend.identity,
            task=TaskSection(augmenter.spec, augmenter.template, list(augmenter.label_names)),
            sampling=SamplingConfig(**augmenter.sampling.to_dict()),
            data=source,
            run=RunSettings.of(augmenter.backend, map_batch_size, num_proc),
            report=None if report is None else report.as_recorded(),
        )
        check_no_secrets(config.to_dict())
        return config

    # -- the file ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "data": asdict(self.data),
            "backend": self.backend,
            "task": self.task.to_dict(),
            "sampling": self.sampling.to_dict(),
            "augmenter": self.augmenter.to_dict(),
            "run": asdict(self.run),
            "report": self.report.to_dict() if self.report is not None else None,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, values: dict, where: str = "gpt3mix_config") -> GPT3MixConfig:
        """The config of a parsed `gpt3mix_config.json`, checked: every section has the schema's keys only. A file
        of format_version 2 (the same rows, another layout) is read into this one."""
        if not isinstance(values, dict) or values.get("format", FORMAT) != FORMAT or "augmenter" not in values:
            raise ValueError(f"{where} is not a gpt3mix_config.json: it has no 'augmenter' section.")
        version = values.get("format_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(
                f"{where} has format_version {version!r}: it must be a whole number >= 1 (this gpt3mix_hf writes "
                f"{FORMAT_VERSION}): {_FILE_FIX}."
            )
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{where} has format_version {version}, newer than this gpt3mix_hf reads ({FORMAT_VERSION}): "
                "upgrade gpt3mix_hf."
            )
        if version < 2:
            made_by = (values.get("versions") or {}).get("gpt3mix_hf", "its first release")
            raise ValueError(
                f"{where} has format_version {version}: its rows were made under older rules (seeded by their "
                "position in the data, label_mode 'hard' meaning the written label, selection 'uniform' meaning "
                f"today's 'anchored'), which this gpt3mix_hf does not make again: read it with gpt3mix_hf {made_by}."
            )
        if version == 2:
            values = _from_format_2(values)
        sections = ("format", "format_version", "data", "backend", "task", "sampling", "augmenter", "run", "report",
                    "versions")
        unknown = sorted(set(values) - set(sections))
        if unknown:
            raise ValueError(f"{where} has sections {unknown} that gpt3mix_config.json does not define.")
        backend = values.get("backend")
        if not isinstance(backend, dict):
            raise ValueError(f"{where}: `backend` must be an object (the LM's identity): {_FILE_FIX}.")
        try:
            return cls(
                augmenter=_from_section(AugmenterConfig, values["augmenter"], "augmenter", where=where),
                backend=backend,
                task=_from_section(TaskSection, values.get("task"), "task", where=where),
                sampling=_from_section(SamplingConfig, values.get("sampling") or {}, "sampling", where=where),
                data=_from_section(DataSource, values.get("data") or {}, "data", where=where),
                run=_from_section(RunSettings, values.get("run") or {}, "run", where=where),
                report=_report_section(values["report"], where) if values.get("report") is not None else None,
                versions=values.get("versions") or {},
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


def _from_format_2(values: dict) -> dict:
    """A format_version 2 file in this version's layout: its one `augmenter` section held the LM's identity, the
    task, sampling and the columns beside the settings, and `run` held keep_prompt. Its rows are today's rows."""
    values = json.loads(json.dumps(values))
    section = values["augmenter"] if isinstance(values["augmenter"], dict) else {}
    run = values.get("run") or {}
    data = values.get("data") or {}
    for column in ("text_column", "label_column"):
        if column in section:
            data[column] = section.pop(column)
    values["data"] = data
    values["backend"] = section.pop("backend", None)
    values["task"] = {name: section.pop(name, None) for name in ("spec", "template", "label_names")}
    values["sampling"] = section.pop("sampling", None) or {}
    if "keep_prompt" in run:
        section["keep_prompt"] = run.pop("keep_prompt")
    for name in ("debias_orders", "debias_prior_rows"):
        if section.get(name, 0) is None:
            del section[name]
    values["augmenter"], values["run"] = section, run
    return values


def as_config(provenance: Any) -> GPT3MixConfig | None:
    """A provenance given as a `GPT3MixConfig`, its dict, the path of a `gpt3mix_config.json` (or its folder),
    or the `GPT3MixAugmenter` that made the data, as a checked `GPT3MixConfig` (None stays None): what the card
    and push helpers accept."""
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
