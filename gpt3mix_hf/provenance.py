"""`gpt3mix_config.json`: everything that made an augmented dataset, as a file that can make it again.

The file holds the augmenter's settings (`GPT3MixAugmenter.config()`: LM, task spec, prompt template,
sampling, k, ratio, selection, label mode, seed), where the real rows came from (benchmark or file, split,
class-balanced sub-sample and its seed, and a hash of the rows themselves), the batch sizes that decide which
prompts are decoded together, the counts of the run, and the library versions. `regenerate` rebuilds the
augmenter from it and runs it again: with the same data, model and versions, the rows are identical.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, load_dataset
from transformers.utils import logging

from .augmenter import GPT3MixAugmenter
from .backends.base import Backend, SamplingConfig
from .data import BENCHMARKS, class_balanced_sample, load_benchmark
from .prompt import PromptTemplate
from .spec import TaskSpec

logger = logging.get_logger(__name__)

CONFIG_NAME = "gpt3mix_config.json"
FORMAT_VERSION = 1
# Keys of `data` in the file; the same names as the flags of `gpt3mix augment` (its DataArguments).
DATA_KEYS = (
    "dataset",
    "data_dir",
    "split",
    "text_column",
    "label_column",
    "sample_fraction",
    "sample_per_class",
    "sample_seed",
)
# A key that names a secret, and a value that looks like a Hugging Face or OpenAI token.
_SECRET_KEY = re.compile(r"(^|[_-])(token|api[_-]?key|secret|password|authorization)$", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})$")


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


def build_config(
    augmenter: GPT3MixAugmenter,
    dataset: Dataset | None = None,
    *,
    data: dict | None = None,
    map_batch_size: int = 16,
    report: Any | None = None,
) -> dict:
    """The provenance of one `augmenter.augment()` run, as plain data for `gpt3mix_config.json`.

    Args:
        augmenter (`GPT3MixAugmenter`): the augmenter that made the rows.
        dataset (`Dataset`, *optional*): the real rows it was given; hashed so that regeneration can check it
            starts from the same rows.
        data (`dict`, *optional*): where those rows came from, with the keys of `DATA_KEYS` (the flags of
            `gpt3mix augment`: `dataset` is a benchmark name, a Hub id or a file; `sample_fraction` /
            `sample_per_class` / `sample_seed` describe the class-balanced sub-sample). Without it, the file
            describes the rows but `regenerate` needs them passed in.
        map_batch_size (`int`): the `batch_size` given to `augment` (with the backend's own batch size, it
            decides which prompts are decoded together, and so the padding each prompt sees).
        report (`AugmentationReport`, *optional*): the run's counts; default `augmenter.report` when it exists.

    Example:

    >>> synthetic = augmenter.augment(batch_size=16)
    >>> config = build_config(augmenter, train, data={"dataset": "sst2", "split": "train", "sample_per_class": 8})
    >>> save_config(config, "outputs/sst2")
    """
    unknown = sorted(set(data or {}) - set(DATA_KEYS) - {"num_rows", "sha256"})
    if unknown:
        # Kept (provenance keeps everything it is told), but load_source_dataset will not use them.
        logger.info(f"data has keys {unknown} that regeneration does not use; it reads {list(DATA_KEYS)}.")
    origin = dict.fromkeys(DATA_KEYS)
    origin.update(text_column=augmenter.text_column, label_column=augmenter.label_column, split="train")
    origin.update(data or {})
    if dataset is not None:
        origin["num_rows"] = len(dataset)
        origin["sha256"] = dataset_sha256(dataset, augmenter.text_column, augmenter.label_column)
    report = report if report is not None else getattr(augmenter, "report", None)
    config = {
        "format": "gpt3mix_config",
        "format_version": FORMAT_VERSION,
        "data": origin,
        "augmenter": augmenter.config(),
        "run": {
            "map_batch_size": map_batch_size,
            "generation_batch_size": getattr(augmenter.backend, "batch_size", None),
            "keep_prompt": augmenter.keep_prompt,
        },
        "report": report.to_dict() if report is not None else None,
        "versions": library_versions(),
    }
    check_no_secrets(config)
    return config


def check_no_secrets(value: Any, where: str = "config") -> None:
    """Raise if `value` holds something that looks like a credential (a key named like `token` with a value,
    or a string shaped like an `hf_...` / `sk-...` token): provenance is published, credentials must not be."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _SECRET_KEY.search(str(key)) and item not in (None, "", False):
                raise ValueError(
                    f"{where}.{key} looks like a credential: it must not be written to a published file. "
                    "Backends must keep secrets out of `identity`."
                )
            check_no_secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_no_secrets(item, f"{where}[{i}]")
    elif isinstance(value, str) and _SECRET_VALUE.match(value.strip()):
        raise ValueError(f"{where} looks like an access token: it must not be written to a published file.")


def save_config(config: dict, path: str | Path) -> Path:
    """Write `config` as JSON; `path` is the file, or a folder to write `gpt3mix_config.json` into."""
    check_no_secrets(config)
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_config(path: str | Path) -> dict:
    """Read a `gpt3mix_config.json` (the file, or the folder that holds it) and check it can be used."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"No provenance file at {path}: it is written beside the data as {CONFIG_NAME}.")
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or "augmenter" not in config:
        raise ValueError(f"{path} is not a gpt3mix_config.json: it has no 'augmenter' section.")
    version = config.get("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version}, newer than this gpt3mix_hf reads ({FORMAT_VERSION}): "
            "upgrade gpt3mix_hf."
        )
    return config


def as_config(provenance: Any) -> dict | None:
    """A provenance given as a config dict, the path of a `gpt3mix_config.json` (or its folder), or the
    `GPT3MixAugmenter` that made the data, as a checked config dict (None stays None)."""
    if provenance is None:
        return None
    if isinstance(provenance, GPT3MixAugmenter):
        config = build_config(provenance)
    elif isinstance(provenance, str | Path):
        config = load_config(provenance)
    elif isinstance(provenance, dict):
        config = provenance
    else:
        raise TypeError(
            "provenance must be a gpt3mix_config dict, the path of a gpt3mix_config.json, or the GPT3MixAugmenter "
            f"that made the data; got {type(provenance).__name__}."
        )
    check_no_secrets(config)
    return config


def load_source_dataset(data: dict, data_dir: str | Path | None = None) -> Dataset:
    """The real rows described by a config's `data` section: a benchmark (local `data_dir` or the Hub), a
    `.jsonl`/`.json`/`.csv` file, or a Hub dataset id, then the same class-balanced sub-sample.

    `data_dir` overrides the folder recorded in the file (it is a path on the machine that made the data).
    """
    name = data.get("dataset")
    if not name:
        raise ValueError(
            "The provenance file does not say which dataset the real rows came from (data.dataset is empty): "
            "pass the rows yourself, e.g. augmenter_from_config(config, dataset=train)."
        )
    split = data.get("split") or "train"
    label_column = data.get("label_column") or "label"
    data_dir = data_dir if data_dir is not None else data.get("data_dir")
    if name in BENCHMARKS:
        dataset = load_benchmark(name, split, data_dir=data_dir)
    elif Path(name).suffix in (".jsonl", ".json", ".csv"):
        builder = "csv" if name.endswith(".csv") else "json"
        dataset = load_dataset(builder, data_files=name, split="train")
    else:
        dataset = load_dataset(name, split=split)
    if not isinstance(dataset.features[label_column], ClassLabel):
        dataset = dataset.class_encode_column(label_column)
    if data.get("sample_fraction") is not None or data.get("sample_per_class") is not None:
        dataset = class_balanced_sample(
            dataset,
            fraction=data.get("sample_fraction"),
            per_class=data.get("sample_per_class"),
            seed=data.get("sample_seed") or 0,
            label_column=label_column,
        )
    return dataset


def backend_from_identity(identity: dict, batch_size: int | None = None, device: str | None = None) -> Backend:
    """Load the LM a config names. Only local `transformers` models loaded by name or path can be rebuilt;
    for any other backend, build it yourself and pass it as `backend=`."""
    kind = identity.get("backend")
    if kind == "transformers" and "model_name_or_path" in identity:
        from .backends.transformers import TransformersBackend

        commit = identity.get("commit")
        revision = identity.get("revision")
        if revision is None and commit is not None and not Path(identity["model_name_or_path"]).exists():
            # Pin the exact Hub commit the data was made with.
            revision = commit
        return TransformersBackend.from_pretrained(
            identity["model_name_or_path"],
            revision=revision,
            dtype=identity.get("dtype") or "float32",
            device=device or identity.get("device"),
            batch_size=batch_size or 8,
        )
    raise ValueError(
        f"Cannot rebuild the {kind!r} backend from the provenance file ({sorted(identity)}): "
        "create it yourself (same model and settings) and pass it as augmenter_from_config(config, backend=...)."
    )


def augmenter_from_config(
    config: dict | str | Path,
    *,
    dataset: Dataset | None = None,
    backend: Backend | None = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    check_data: bool = True,
) -> GPT3MixAugmenter:
    """The augmenter a provenance file describes, on the same real rows.

    Args:
        config (`dict` or path): a loaded config, or the path of `gpt3mix_config.json` (or its folder).
        dataset (`Dataset`, *optional*): the real rows; default: loaded as the config's `data` says.
        backend (`Backend`, *optional*): the LM; default: rebuilt from the config (local transformers models).
        data_dir (`str`, *optional*): where the benchmark's JSONL files are, instead of the recorded folder.
        device (`str`, *optional*): where to load the LM.
        check_data (`bool`): refuse real rows whose hash differs from the recorded one.

    Example:

    >>> augmenter = augmenter_from_config("outputs/sst2/gpt3mix_config.json", data_dir="../shared/data")
    >>> synthetic = augmenter.augment()
    """
    if not isinstance(config, dict):
        config = load_config(config)
    settings = config["augmenter"]
    data = config.get("data") or {}
    run = config.get("run") or {}
    text_column = settings.get("text_column", "text")
    label_column = settings.get("label_column", "label")
    if dataset is None:
        dataset = load_source_dataset({**data, "text_column": text_column, "label_column": label_column}, data_dir)
    names = list(dataset.features[label_column].names) if label_column in dataset.column_names else None
    if names is not None and names != settings["label_names"]:
        raise ValueError(
            f"The real rows have labels {names}, the provenance file {settings['label_names']}: the label ids would "
            "not mean the same. Cast the label column to ClassLabel(names=<the file's label_names>)."
        )
    expected = data.get("sha256")
    if check_data and expected is not None:
        found = dataset_sha256(dataset, text_column, label_column)
        if found != expected:
            raise ValueError(
                f"The real rows differ from those the dataset was made from ({len(dataset)} rows, sha256 {found[:12]}"
                f"..., recorded {data.get('num_rows')} rows, {expected[:12]}...): check the data folder, split and "
                "sub-sample, or pass check_data=False to generate from these rows anyway."
            )
    if backend is None:
        backend = backend_from_identity(settings["backend"], run.get("generation_batch_size"), device)
    return GPT3MixAugmenter(
        backend,
        dataset,
        TaskSpec(**settings["spec"]),
        k=settings["k"],
        ratio=settings["ratio"],
        selection=settings["selection"],
        label_mode=settings["label_mode"],
        seed=settings["seed"],
        sampling=SamplingConfig(**settings["sampling"]),
        template=PromptTemplate(**settings["template"]),
        text_column=text_column,
        label_column=label_column,
        max_attempts=settings.get("max_attempts", 4),
        keep_prompt=run.get("keep_prompt", False),
    )


def regenerate(config: dict | str | Path, **kwargs) -> Dataset:
    """Make the synthetic rows a provenance file describes again (keyword arguments as `augmenter_from_config`).

    Example:

    >>> synthetic = regenerate("outputs/sst2/gpt3mix_config.json", data_dir="../shared/data")
    """
    if not isinstance(config, dict):
        config = load_config(config)
    augmenter = augmenter_from_config(config, **kwargs)
    batch_size = (config.get("run") or {}).get("map_batch_size") or 16
    return augmenter.augment(batch_size=batch_size, load_from_cache_file=False)
