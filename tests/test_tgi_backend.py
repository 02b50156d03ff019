"""TGIBackend against an in-process server that speaks TGI's /generate protocol (answers built from
huggingface_hub's TextGenerationOutput types) with a real tiny LM behind it. No real TGI server can run on
these machines: real-TGI coverage is by protocol only."""

from __future__ import annotations

import json
import logging
import math
import pickle
import sqlite3
import time

import pytest
import served_checks as checks
from conftest import make_dataset
from huggingface_hub import TextGenerationOutput
from served_checks import CONTEXTS, FAST, LABELS, PROMPTS, TEXTS, call
from served_fixtures import CannedTransformersBackend, FakeTGIServer, TinyLMEngine, free_port, stored_answers

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import (
    AuthenticationError,
    RequestFailedError,
    ServedBackendError,
    ServedConfig,
    ServerUnreachableError,
)
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.backends.served.tgi import TGIBackend
from gpt3mix_hf.spec import TaskSpec

SECRET = "hf_test_Secret_0123456789abcdef"
KEY_ENV = "GPT3MIX_TEST_TGI_KEY"


@pytest.fixture(scope="module")
def local(tiny_lm_dir):
    return CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1, dtype="float32")


@pytest.fixture(scope="module")
def engine(local):
    return TinyLMEngine(local)


@pytest.fixture
def server(engine):
    with FakeTGIServer(engine) as server:
        yield server


def make_backend(url, **kwargs):
    return TGIBackend(url, config=ServedConfig(**{**FAST, **kwargs.pop("config", {})}), **kwargs)


def augment(backend, **kwargs):
    dataset = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    augmenter = GPT3MixAugmenter(backend, dataset, TaskSpec.from_preset("sst2"), seed=5, ratio=2,
                                 sampling=SamplingConfig(max_new_tokens=12), max_attempts=2, **kwargs)
    return augmenter.augment(load_from_cache_file=False).to_list()


def test_answers_follow_huggingface_hub_types(server, local):
    """What the fake serves parses into TextGenerationOutput with every field the backend reads."""
    backend = make_backend(server.url)
    backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    assert server.answers
    for answer in server.answers:
        parsed = TextGenerationOutput.parse_obj_as_instance(answer)
        assert isinstance(parsed.generated_text, str)
        assert parsed.details.generated_tokens == len(parsed.details.tokens)
        assert all(isinstance(token.id, int) for token in parsed.details.prefill)


def test_soft_labels_match_local_backend(server, local):
    backend = make_backend(server.url)
    served = backend.score(PROMPTS, CONTEXTS, LABELS)
    expected = local.score(PROMPTS, CONTEXTS, LABELS)
    for row_served, row_expected in zip(served, expected, strict=True):
        assert row_served == pytest.approx(row_expected, abs=1e-4)
    assert backend.identity == {"backend": "tgi", "model": "tiny", "label_scoring": "prefill", "top_n_tokens": 5}
    assert backend.max_context == 512


def test_augmenter_rows_equal_local_rows(server, local):
    served = augment(make_backend(server.url))
    expected = augment(local)
    assert served
    assert [row["text"] for row in served] == [row["text"] for row in expected]
    for a, b in zip(served, expected, strict=True):
        assert a["soft_labels"] == pytest.approx(b["soft_labels"], abs=1e-4)


def test_generation_is_seeded_and_independent_of_concurrency(server):
    sampling = SamplingConfig(max_new_tokens=8)
    seeds = [3, 1, 4, 1, 5, 9]
    one = make_backend(server.url, config={"max_concurrency": 1}).generate(PROMPTS * 3, seeds, sampling)
    many = make_backend(server.url, config={"max_concurrency": 6}).generate(PROMPTS * 3, seeds, sampling)
    assert [c.text for c in one] == [c.text for c in many]
    assert one[1].text == one[3].text  # same prompt, same seed
    # The seed reaches the server: other seeds, other texts (the server samples by the request's seed).
    others = make_backend(server.url).generate([PROMPTS[0]] * 4, [10, 11, 12, 13], sampling)
    assert len({c.text for c in others}) > 1


def test_without_prefill_falls_back_to_top_n_tokens(engine, caplog):
    with FakeTGIServer(engine, prefill=False) as server:
        backend = make_backend(server.url, top_n_tokens=5)
        with caplog.at_level(logging.WARNING):
            assert backend.identity["label_scoring"] == "top_n_tokens"
        assert "--enable-prefill-logprobs" in caplog.text
        scores = backend.score(PROMPTS, CONTEXTS, LABELS)
    assert all(len(row) == 2 and all(not math.isnan(v) for v in row) for row in scores)
    assert backend.usage.rows_scored_top_k == 2
    assert "approximate" in backend.usage.summary()


def test_a_server_without_info_needs_the_models_name(engine):
    # The identity and the request cache name the model, never the URL (another port, the same answers).
    with FakeTGIServer(engine, info=False) as server:
        with pytest.raises(ServedBackendError, match="no /info saying which model it serves: pass model="):
            make_backend(server.url).connect()
        backend = make_backend(server.url, model="tiny")
        backend.connect()
        assert backend.identity["model"] == "tiny" and server.url not in str(backend.identity)


def test_top_n_above_the_server_cap_names_the_flag(engine):
    with FakeTGIServer(engine, prefill=False, max_top_n_tokens=5) as server:
        backend = make_backend(server.url, top_n_tokens=10)
        with pytest.raises(ServedBackendError, match="--max-top-n-tokens 10"):
            backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


def test_refused_connection_is_quick_and_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError, match=url):
        make_backend(url, label_scoring="prefill").generate(["Hi"], [0], SamplingConfig())
    assert time.monotonic() - start < 5


def test_401_fails_at_once_without_the_key(server, caplog):
    server.api_key = "right"
    backend = make_backend(server.url, api_key="hf_secret_xyz", label_scoring="prefill")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as error:
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=2))
    assert "hf_secret_xyz" not in str(error.value) + repr(backend) + caplog.text
    assert backend.usage.retries == 0


@pytest.mark.parametrize("fault", ["429", "503", "malformed"])
def test_transient_faults_are_retried(server, fault):
    sampling = SamplingConfig(max_new_tokens=8)
    expected = make_backend(server.url).generate(PROMPTS, [1, 2], sampling)
    backend = make_backend(server.url)
    backend.connect()
    server.faults.extend([fault] * 3)
    assert [c.text for c in backend.generate(PROMPTS, [1, 2], sampling)] == [c.text for c in expected]
    assert backend.usage.retries >= 3


def test_slow_answers_past_the_timeout(server):
    assert server.slow_seconds == 0.2
    backend = make_backend(server.url, label_scoring="prefill", config={"timeout": 0.1, "max_retries": 1})
    server.faults.extend(["slow"] * 5)
    with pytest.raises(RequestFailedError, match="timed out"):
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=2))
    server.faults.clear()


def test_request_cache_resumes(server, tmp_path):
    config = {"cache_path": str(tmp_path / "tgi.sqlite")}
    first = make_backend(server.url, config=config).score(PROMPTS, CONTEXTS, LABELS)
    calls = server.calls.get("/", 0) + server.calls.get("/generate", 0)
    second = make_backend(server.url, label_scoring="prefill", config=config)
    assert second.score(PROMPTS, CONTEXTS, LABELS) == first
    assert server.calls.get("/", 0) + server.calls.get("/generate", 0) == calls
    assert second.usage.cache_hits == len(PROMPTS) * len(LABELS)
    assert second.usage.requests == 2  # the /info and /tokenize probes only


def test_pickles_as_its_settings(server):
    backend = make_backend(server.url)
    expected = backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.identity == backend.identity
    assert clone.score(PROMPTS[:1], CONTEXTS[:1], LABELS) == expected


def test_tokenize_when_the_server_can(server, engine):
    backend = make_backend(server.url)
    assert backend.tokenize(" positive") == engine.encode(" positive")
    with FakeTGIServer(engine, tokenize=False) as bare:
        backend = make_backend(bare.url)
        assert backend.tokenize(" positive") is None
        assert backend.max_context is None
        assert augment(backend)  # the augmenter copes without a tokenizer


def test_one_transport_no_huggingface_hub_client(server, monkeypatch):
    """Every request goes through the one httpx client: nothing reaches huggingface_hub's InferenceClient."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("AsyncInferenceClient used")

    monkeypatch.setattr(huggingface_hub, "AsyncInferenceClient", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # refused every request when they went through huggingface_hub
    backend = make_backend(server.url)
    assert backend.generate(PROMPTS[:1], [0], SamplingConfig(max_new_tokens=4))
    assert backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


# -- validate, then cache -------------------------------------------------------------------------------------


UNUSABLE_CASES = {
    "generation": ({}, {}),
    "prefill": ({"label_scoring": "prefill"}, {}),
    "top_n_tokens": ({"label_scoring": "top_n_tokens"}, {}),
    "tokenize": ({}, {}),
}


@pytest.mark.parametrize("what", sorted(UNUSABLE_CASES))
def test_unusable_answer_is_never_cached_and_a_rerun_retries_it(server, tmp_path, what):
    settings, _ = UNUSABLE_CASES[what]
    checks.unusable_answer_is_never_cached(make_backend, server, tmp_path, what, settings, probes=1)


def test_unusable_answer_found_in_the_cache_is_asked_again(server, tmp_path, caplog):
    cache_path = str(tmp_path / "requests.sqlite")
    expected = call(make_backend(server.url, config={"cache_path": cache_path}), "generation")
    with sqlite3.connect(cache_path) as connection:
        connection.execute("UPDATE answers SET answer = ?", (json.dumps(server.UNUSABLE["/generate"]),))
    rerun = make_backend(server.url, config={"cache_path": cache_path})
    with caplog.at_level(logging.WARNING):
        assert call(rerun, "generation") == expected
    assert "unusable answer" in caplog.text
    assert rerun.usage.cache_hits == 0


# -- secrets never leave --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["401", "400", "429", "503", "malformed"])
def test_a_server_that_repeats_the_key_never_gets_it_into_a_message_or_log(server, caplog, fault):
    server.echo_auth = True
    backend = make_backend(server.url, api_key=SECRET, label_scoring="prefill", config={"max_retries": 2})
    checks.repeated_key_is_never_shown(backend, server, caplog, fault, SECRET)


def test_an_answer_that_repeats_the_key_is_used_but_never_cached(server, tmp_path):
    server.api_key, server.leak_auth = SECRET, True
    cache_path = tmp_path / "requests.sqlite"
    backend = make_backend(server.url, api_key=SECRET, config={"cache_path": str(cache_path)})
    assert backend.generate(PROMPTS, [0, 1], SamplingConfig(max_new_tokens=4))
    assert len(stored_answers(cache_path)) == 0
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes()


def test_pickles_carry_the_variable_name_never_the_key(server, monkeypatch):
    checks.pickle_carries_the_variable_name(make_backend, server, monkeypatch, KEY_ENV, SECRET)


def test_rebuilt_from_its_identity(server):
    backend = make_backend(server.url, top_n_tokens=3)
    checks.rebuilt_from_identity(backend, server)


def test_bad_arguments():
    with pytest.raises(ValueError, match="label_scoring"):
        TGIBackend("http://127.0.0.1:1", label_scoring="echo")
    with pytest.raises(ValueError, match="top_n_tokens"):
        TGIBackend("http://127.0.0.1:1", top_n_tokens=0)
    with pytest.raises(ValueError, match="not both"):
        TGIBackend("http://127.0.0.1:1", api_key="k", api_key_env="K")
    with pytest.raises(ValueError, match="one seed per prompt"):
        TGIBackend("http://127.0.0.1:1", label_scoring="prefill").generate(["a", "b"], [0], SamplingConfig())
