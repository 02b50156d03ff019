"""The on-disk request cache, and what it is for: an interrupted run resumes with the same rows, nothing paid twice."""

from __future__ import annotations

import pickle
import threading

import pytest
from conftest import make_dataset
from served_fixtures import CannedTransformersBackend, FakeOpenAIServer, TinyLMEngine

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import ServedBackendError, ServedConfig, UsageLimitError
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.backends.served.openai import OpenAIBackend
from gpt3mix_hf.backends.served.request_cache import RequestCache
from gpt3mix_hf.backends.served.runner import cache_key
from gpt3mix_hf.spec import TaskSpec

TEXTS = ["a gripping , funny film .", "dull and far too long .", "the best thing this year .", "awful .",
         "warm and wise .", "i wanted my hours back ."]


def test_put_get_and_persistence(tmp_path):
    path = tmp_path / "cache" / "requests.sqlite"
    key = cache_key("openai", "m", "/v1/completions", {"prompt": "Hi", "seed": 1, "temperature": 1.0})
    with RequestCache(path) as cache:
        assert cache.get(key) is None
        cache.put(key, {"choices": [{"text": " there"}]})
        assert key in cache
    with RequestCache(path) as cache:
        assert cache.get(key) == {"choices": [{"text": " there"}]}
        assert len(cache) == 1
        cache.clear()
        assert len(cache) == 0


def test_key_covers_model_prompt_parameters_and_seed_but_not_the_url():
    base = {"prompt": "Hi", "seed": 1, "temperature": 1.0}
    keys = {
        cache_key("openai", "m", "/v1/completions", base),
        cache_key("openai", "other", "/v1/completions", base),
        cache_key("openai", "m", "/v1/completions", {**base, "seed": 2}),
        cache_key("openai", "m", "/v1/completions", {**base, "temperature": 0.5}),
        cache_key("openai", "m", "/v1/completions", {**base, "prompt": "Ho"}),
        cache_key("tgi", "m", "/v1/completions", base),
    }
    assert len(keys) == 6
    # Key order inside the payload does not matter.
    assert cache_key("openai", "m", "/r", {"a": 1, "b": 2}) == cache_key("openai", "m", "/r", {"b": 2, "a": 1})


def test_threads_and_pickling(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")

    def write(start):
        for i in range(start, start + 50):
            cache.put(f"k{i}", {"i": i})

    threads = [threading.Thread(target=write, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 200
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get("k123") == {"i": 123}


@pytest.fixture(scope="module")
def engine(tiny_lm_dir):
    return TinyLMEngine(CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1, dtype="float32"))


def augment(backend):
    dataset = make_dataset(TEXTS, [1, 0, 1, 0, 1, 0], ["negative", "positive"])
    augmenter = GPT3MixAugmenter(backend, dataset, TaskSpec.from_preset("sst2"), seed=11, ratio=2,
                                 sampling=SamplingConfig(max_new_tokens=12), max_attempts=3)
    return augmenter.augment(load_from_cache_file=False, batch_size=4).to_list()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_interrupted_run_resumes_with_the_same_rows_and_pays_nothing_twice(engine, tmp_path, concurrency):
    fast = {"backoff_base": 0.01, "backoff_max": 0.05, "max_concurrency": concurrency}
    with FakeOpenAIServer(engine) as server:
        reference = augment(OpenAIBackend(server.url, config=ServedConfig(**fast)))
        paid_once = server.calls["/v1/completions"]
    assert reference

    cache_path = tmp_path / "requests.sqlite"
    with FakeOpenAIServer(engine) as server:
        interrupted = OpenAIBackend(server.url, config=ServedConfig(**fast, cache_path=str(cache_path),
                                                                    max_requests=paid_once // 2))
        with pytest.raises(UsageLimitError):
            augment(interrupted)
        first = server.calls["/v1/completions"]
    assert 0 < first < paid_once

    # Started again, against a server on another port (the cache is not keyed by the URL).
    with FakeOpenAIServer(engine) as server:
        resumed = OpenAIBackend(server.url, config=ServedConfig(**fast, cache_path=str(cache_path)))
        rows = augment(resumed)
        second = server.calls["/v1/completions"]
    assert rows == reference
    # Each run's connect() sends one echo probe (never cached); every other completion is paid exactly once.
    assert (first - 1) + (second - 1) == paid_once - 1
    assert resumed.usage.cache_hits > 0

    # A third run is free: everything is in the cache.
    with FakeOpenAIServer(engine) as server:
        again = OpenAIBackend(server.url, config=ServedConfig(**fast, cache_path=str(cache_path)))
        assert augment(again) == reference
        assert server.calls["/v1/completions"] == 1  # the echo probe
        assert again.usage.requests == sum(server.calls.values()) == 3  # the probes only


def test_server_killed_mid_run_then_back(engine, tmp_path):
    """The server dies after some answers: the run fails clearly; started again, it finishes identically."""
    fast = {"backoff_base": 0.01, "backoff_max": 0.05, "max_concurrency": 2, "connect_retries": 1}
    with FakeOpenAIServer(engine) as server:
        reference = augment(OpenAIBackend(server.url, config=ServedConfig(**fast)))
    cache_path = str(tmp_path / "requests.sqlite")
    server = FakeOpenAIServer(engine)
    backend = OpenAIBackend(server.url, config=ServedConfig(**fast, cache_path=cache_path))
    backend.connect()
    # After 5 answers, every connection is dropped mid-request, as by a server that died.
    server.faults.extend(["ok"] * 5 + ["drop"] * 200)
    with pytest.raises(ServedBackendError, match="connection lost"):
        augment(backend)
    server.close()
    stored = len(RequestCache(cache_path))
    assert stored >= 5
    with FakeOpenAIServer(engine) as server:
        rows = augment(OpenAIBackend(server.url, config=ServedConfig(**fast, cache_path=cache_path)))
    assert rows == reference
