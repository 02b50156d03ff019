"""OpenAIBackend against an in-process server that speaks vLLM's /v1/completions with a real (tiny) LM behind it:
exact soft labels, the top-k fallback, concurrency, faults and bad input. The real vLLM is in
test_vllm_integration.py."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import pickle
import sqlite3
import time

import pytest
import served_checks as checks
from conftest import make_dataset
from served_checks import CONTEXTS, FAST, LABELS, PROMPTS, TEXTS, call
from served_fixtures import CannedTransformersBackend, FakeOpenAIServer, TinyLMEngine, free_port, stored_answers

from gpt3mix_hf.augmenter import GPT3MixAugmenter
from gpt3mix_hf.backends import (
    AuthenticationError,
    Backend,
    BadResponseError,
    RequestFailedError,
    RetriesExhaustedError,
    ServedBackendError,
    ServedConfig,
    ServerUnreachableError,
    UsageLimitError,
)
from gpt3mix_hf.backends.base import SamplingConfig
from gpt3mix_hf.backends.local.transformers import TransformersBackend
from gpt3mix_hf.backends.served.openai import OpenAIBackend
from gpt3mix_hf.backends.served.request_cache import RequestCache
from gpt3mix_hf.backends.served.tgi import TGIBackend
from gpt3mix_hf.labels import top_k_label_logprobs
from gpt3mix_hf.prompt import PromptTemplate
from gpt3mix_hf.spec import TaskSpec

SECRET = "sk-test-Secret-0123456789abcdef"
KEY_ENV = "GPT3MIX_TEST_OPENAI_KEY"


@pytest.fixture(scope="module")
def local(tiny_lm_dir) -> TransformersBackend:
    return CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1, dtype="float32")


@pytest.fixture(scope="module")
def engine(local) -> TinyLMEngine:
    return TinyLMEngine(local)


@pytest.fixture
def server(engine):
    with FakeOpenAIServer(engine) as server:
        yield server


def make_backend(url: str, **kwargs) -> OpenAIBackend:
    config = ServedConfig(**{**FAST, **kwargs.pop("config", {})})
    return OpenAIBackend(url, config=config, **kwargs)


def augment(backend, dataset, **kwargs):
    augmenter = GPT3MixAugmenter(backend, dataset, TaskSpec.from_preset("sst2"), seed=3, ratio=2,
                                 sampling=SamplingConfig(max_new_tokens=12), max_attempts=2, **kwargs)
    return augmenter.augment(load_from_cache_file=False).to_list()


@pytest.mark.parametrize("tokenizer", ["auto", "none"])
def test_soft_labels_match_local_backend(server, local, tokenizer):
    backend = make_backend(server.url, tokenizer=tokenizer)
    served = backend.score(PROMPTS, CONTEXTS, LABELS)
    expected = local.score(PROMPTS, CONTEXTS, LABELS)
    for row_served, row_expected in zip(served, expected, strict=True):
        assert row_served == pytest.approx(row_expected, abs=1e-4)
    assert backend.identity["label_scoring"] == "echo"
    assert backend.usage.rows_scored_exactly == len(PROMPTS)


def test_augmenter_rows_equal_local_rows(server, local, toy_sentiment):
    """Same seeds, same model: the served backend gives the augmenter the rows the local backend gives it."""
    served = augment(make_backend(server.url), toy_sentiment)
    expected = augment(local, toy_sentiment)
    assert len(served) > 0
    assert [row["text"] for row in served] == [row["text"] for row in expected]
    assert [row["source_ids"] for row in served] == [row["source_ids"] for row in expected]
    for a, b in zip(served, expected, strict=True):
        assert a["soft_labels"] == pytest.approx(b["soft_labels"], abs=1e-4)
        assert a["label_mass"] == 1.0


def test_results_do_not_depend_on_concurrency(server, toy_sentiment):
    one = augment(make_backend(server.url, config={"max_concurrency": 1}), toy_sentiment)
    many = augment(make_backend(server.url, config={"max_concurrency": 8}), toy_sentiment)
    assert one == many
    assert len(one) > 0


def test_top_logprobs_fallback_records_label_mass(engine, toy_sentiment, caplog):
    with FakeOpenAIServer(engine, echo=False) as server:
        backend = make_backend(server.url, top_logprobs=20)
        with caplog.at_level(logging.WARNING):
            assert backend.identity["label_scoring"] == "top_logprobs"
        assert "cannot score prompt tokens" in caplog.text
        rows = augment(backend, toy_sentiment, keep_prompt=True)
        # Scored again outside generation (as another example order or the task prior is), each row's mass comes
        # with its scores.
        template, sst2 = PromptTemplate(), TaskSpec.from_preset("sst2")
        contexts = [template.scoring_parts(sst2, ["negative", "positive"], row["text"])[0] for row in rows]
        continuations = template.scoring_parts(sst2, ["negative", "positive"], "")[1]
        prompts = [row["prompt"] for row in rows]
        rescored = backend.score_with_mass(prompts, contexts, continuations)
        assert [logprobs for logprobs, _ in rescored] == backend.score(prompts, contexts, continuations)
    assert rows, "the fallback must still produce rows"
    for row, context, (_, mass) in zip(rows, contexts, rescored, strict=True):
        # The mass the label words' variants cover among the LM's own top 20 at the label position.
        top = engine.top_next(engine.encode(row["prompt"] + context), 20)
        expected = sum(math.exp(v) for i, v in top
                       if engine.piece(i).strip() and sum(w.startswith(engine.piece(i).strip().lower())
                                                          for w in ("negative", "positive")) == 1)
        assert row["label_mass"] == pytest.approx(expected, abs=1e-5)
        assert row["label_mass"] < 1.0
        assert mass == pytest.approx(expected, abs=1e-5)
        assert sum(row["soft_labels"]) == pytest.approx(1.0, abs=1e-5)
    assert backend.usage.rows_scored_top_k >= len(rows)
    assert "approximate" in backend.usage.summary()


def test_top_k_merges_case_and_space_variants():
    alternatives = {" Positive": math.log(0.2), "positive": math.log(0.1), " negative": math.log(0.3),
                    " neg": math.log(0.05), " the": math.log(0.25)}
    logprobs, mass, missing = top_k_label_logprobs(alternatives, [" negative", " positive"])
    assert math.exp(logprobs[0]) == pytest.approx(0.35)
    assert math.exp(logprobs[1]) == pytest.approx(0.3)
    assert mass == pytest.approx(0.65)
    assert missing == 0


def test_top_k_missing_label_gets_its_bound_not_zero():
    alternatives = {" negative": math.log(0.6), " the": math.log(0.3)}
    logprobs, mass, missing = top_k_label_logprobs(alternatives, [" negative", " positive"])
    assert missing == 1
    assert mass == pytest.approx(0.6)
    assert math.exp(logprobs[1]) == pytest.approx(0.1)  # min(smallest top-k prob 0.3, leftover 0.1)


def test_refused_connection_is_a_quick_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = make_backend(url)
    start = time.monotonic()
    with pytest.raises(ServerUnreachableError, match=url.removesuffix("/v1")):
        backend.generate(["Hi"], [0], SamplingConfig())
    assert time.monotonic() - start < 5


def test_server_gone_mid_run_is_retried_a_bounded_number_of_times(engine):
    server = FakeOpenAIServer(engine)
    backend = make_backend(server.url, config={"connect_retries": 2})
    backend.connect()
    before = backend.usage.requests
    server.close()
    with pytest.raises(ServerUnreachableError, match="Is the server running"):
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=4))
    assert backend.usage.requests - before == 3  # one try and two retries, no storm


def test_unknown_model_lists_the_served_ones(server):
    with pytest.raises(ServedBackendError, match=r"serves \['tiny'\]"):
        make_backend(server.url, model="llama-70b").connect()


def test_max_logprobs_too_low_names_the_flag(engine):
    with FakeOpenAIServer(engine, echo=False, max_logprobs=5) as server:
        backend = make_backend(server.url, top_logprobs=20)
        with pytest.raises(ServedBackendError, match="--max-logprobs 20"):
            backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


def test_missing_logprobs_is_a_clear_error(engine):
    with FakeOpenAIServer(engine, drop_logprobs=True) as server:
        backend = make_backend(server.url, label_scoring="echo")
        with pytest.raises(ServedBackendError, match="cannot score prompt tokens"):
            backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


def test_missing_logprobs_in_scoring_answer(server):
    backend = make_backend(server.url)
    backend.connect()  # probe while logprobs are there
    original = server.drop_logprobs
    server.drop_logprobs = True
    try:
        with pytest.raises(BadResponseError, match="without prompt log-probabilities"):
            backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    finally:
        server.drop_logprobs = original


def test_empty_completions_become_failed_attempts(engine, toy_sentiment):
    with FakeOpenAIServer(engine, empty_text=True) as server:
        augmenter = GPT3MixAugmenter(make_backend(server.url), toy_sentiment, TaskSpec.from_preset("sst2"), seed=0,
                                     max_attempts=2)
        rows = augmenter.augment(load_from_cache_file=False)
    assert len(rows) == 0
    assert augmenter.report.failed_rows == len(toy_sentiment)
    assert all(attempt["error"] == "empty generation" for failure in augmenter.report.failures
               for attempt in failure["failed_attempts"])


def test_401_fails_at_once_without_the_key(server, caplog):
    server.api_key = "right-key"
    backend = make_backend(server.url, api_key="sk-secret-123")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as error:
        backend.connect()
    assert "sk-secret-123" not in str(error.value)
    assert "sk-secret-123" not in repr(backend)
    assert "sk-secret-123" not in caplog.text
    assert backend.usage.retries == 0


def test_key_is_sent_and_kept_out_of_identity(server):
    server.api_key = "right-key"
    backend = make_backend(server.url, api_key="right-key")
    assert "right-key" not in str(backend.identity)
    assert backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


@pytest.fixture(scope="module")
def clean_rows(engine, toy_sentiment_module):
    with FakeOpenAIServer(engine) as server:
        return augment(make_backend(server.url), toy_sentiment_module)


@pytest.fixture(scope="module")
def toy_sentiment_module():
    return make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])


@pytest.mark.parametrize("fault", ["429", "500", "503", "malformed", "drop"])
def test_transient_faults_are_retried_and_change_nothing(server, toy_sentiment_module, clean_rows, fault):
    backend = make_backend(server.url)
    backend.connect()
    server.faults.extend([fault] * 4)
    faulty = augment(backend, toy_sentiment_module)
    assert faulty == clean_rows
    assert clean_rows
    assert backend.usage.retries >= 4
    assert not server.faults


def test_429_storm_beyond_the_retries_fails_clearly(server):
    backend = make_backend(server.url, config={"max_retries": 3})
    backend.connect()
    before = backend.usage.requests
    server.faults.extend(["429"] * 50)
    with pytest.raises(RequestFailedError, match="still failed after 4 tries: HTTP 429"):
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=4))
    assert backend.usage.requests - before == 4


def test_a_server_failing_during_the_probes_is_an_error_not_a_verdict(server):
    # 503s while the server warms up must not settle approximate scoring (or no tokenizer) for the whole run.
    backend = make_backend(server.url, config={"max_retries": 1})
    server.faults.extend(["503"] * 10)
    with pytest.raises(RetriesExhaustedError, match="still failed after 2 tries: HTTP 503"):
        backend.connect()
    server.faults.clear()
    backend.connect()
    assert backend.identity["label_scoring"] == "echo" and backend._server["tokenize"]


def test_slow_answers_past_the_timeout_are_retried(server):
    assert server.slow_seconds == 0.2
    reference = make_backend(server.url)
    expected = reference.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    backend = make_backend(server.url, config={"timeout": 0.1})
    # Settled at the default timeout: what is timed here are the requests, not the probes (a probe that keeps
    # timing out is an error, on a loaded machine too).
    backend._server, backend.model = dict(reference._server), reference.model
    server.faults.extend(["slow", "slow"])
    assert backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS) == expected
    assert backend.usage.retries >= 2
    server.faults.extend(["slow"] * 10)
    backend = make_backend(server.url, config={"timeout": 0.1, "max_retries": 1})
    backend._server = {"max_context": 512, "tokenize": True, "label_scoring": "echo", "echo_max_tokens": 0}
    with pytest.raises(RequestFailedError, match="timed out"):
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=4))
    server.faults.clear()


def test_request_limit_stops_before_paying_more(server):
    backend = make_backend(server.url, config={"max_requests": 5})
    backend.connect()  # 3 requests
    with pytest.raises(UsageLimitError, match="max_requests=5"):
        backend.generate(["a", "b", "c"], [0, 1, 2], SamplingConfig(max_new_tokens=4))
    assert backend.usage.requests == 5


def test_token_limit(server):
    backend = make_backend(server.url, config={"max_total_tokens": 5, "max_concurrency": 1})
    with pytest.raises(UsageLimitError, match="max_total_tokens=5"):
        backend.generate(PROMPTS * 3, list(range(6)), SamplingConfig(max_new_tokens=4))
    assert backend.usage.prompt_tokens + backend.usage.completion_tokens >= 5
    assert backend.usage.requests < 6


def test_usage_report_counts(server):
    backend = make_backend(server.url)
    backend.connect()
    assert backend.usage.requests == 3  # /v1/models, /tokenize and the echo probe
    backend.generate(PROMPTS, [0, 1], SamplingConfig(max_new_tokens=4))
    usage = backend.usage
    assert usage.requests == 5
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.seconds > 0
    assert "5 requests sent" in usage.summary()


def test_pickles_as_its_settings(server):
    backend = make_backend(server.url, api_key=None)
    expected = backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.identity == backend.identity
    assert clone.score(PROMPTS[:1], CONTEXTS[:1], LABELS) == expected


def test_works_inside_a_running_event_loop(server):
    backend = make_backend(server.url)

    async def main():
        return backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)

    assert len(asyncio.run(main())[0]) == 2


def test_tokenize_and_context(server, local):
    backend = make_backend(server.url)
    assert backend.tokenize(" positive") == local.tokenize(" positive")
    assert backend.max_context == 512
    assert make_backend(server.url, tokenizer="none").tokenize("x") is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="label_scoring"):
        OpenAIBackend("http://127.0.0.1:1/v1", label_scoring="guess")
    with pytest.raises(ValueError, match="max_concurrency"):
        ServedConfig(max_concurrency=0)


# -- validate, then cache -------------------------------------------------------------------------------------


# Where the unusable answer lands: a generation, an echo scoring request (text prompts, so /tokenize is not
# asked first), a top-logprobs scoring request, a /tokenize request.
UNUSABLE_CASES = {
    "generation": {},
    "echo": {"tokenizer": "none"},
    "top_logprobs": {"label_scoring": "top_logprobs"},
    "tokenize": {},
}


@pytest.mark.parametrize("what", sorted(UNUSABLE_CASES))
def test_unusable_answer_is_never_cached_and_a_rerun_retries_it(server, tmp_path, what):
    checks.unusable_answer_is_never_cached(make_backend, server, tmp_path, what, UNUSABLE_CASES[what], probes=2)


@pytest.mark.parametrize("what", ["generation", "echo", "tokenize"])
def test_unusable_answer_found_in_the_cache_is_asked_again(server, tmp_path, what, caplog):
    """A cache written before answers were validated may hold bad ones: they are asked for again, not used."""
    settings = UNUSABLE_CASES[what]
    cache_path = str(tmp_path / "requests.sqlite")
    expected = call(make_backend(server.url, **settings, config={"cache_path": cache_path}), what)
    route = "/tokenize" if what == "tokenize" else "/v1/completions"
    with sqlite3.connect(cache_path) as connection:
        connection.execute("UPDATE answers SET answer = ?", (json.dumps(server.UNUSABLE[route]),))
    rerun = make_backend(server.url, **settings, config={"cache_path": cache_path})
    with caplog.at_level(logging.WARNING):
        assert call(rerun, what) == expected
    assert "unusable answer" in caplog.text
    assert rerun.usage.cache_hits == 0
    assert json.dumps(server.UNUSABLE[route]) not in stored_answers(cache_path)


# -- secrets never leave --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["401", "400", "429", "500", "malformed"])
def test_a_server_that_repeats_the_key_never_gets_it_into_a_message_or_log(server, caplog, fault):
    server.echo_auth = True
    backend = make_backend(server.url, api_key=SECRET, config={"max_retries": 2})
    checks.repeated_key_is_never_shown(backend, server, caplog, fault, SECRET)


def test_the_key_from_the_environment_is_redacted_too(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.echo_auth, server.api_key = True, "another-key"
    with pytest.raises(AuthenticationError) as error:
        make_backend(server.url, api_key_env=KEY_ENV).connect()
    assert SECRET not in str(error.value) and "***" in str(error.value)


def test_an_answer_that_repeats_the_key_is_used_but_never_cached(server, tmp_path):
    server.api_key, server.leak_auth = SECRET, True
    cache_path = tmp_path / "requests.sqlite"
    backend = make_backend(server.url, api_key=SECRET, config={"cache_path": str(cache_path)})
    assert len(backend.score(PROMPTS, CONTEXTS, LABELS)) == len(PROMPTS)
    assert len(RequestCache(cache_path)) == 0
    for path in tmp_path.iterdir():  # the SQLite file and its write-ahead log
        assert SECRET.encode() not in path.read_bytes()


def test_pickles_carry_the_variable_name_never_the_key(server, monkeypatch, toy_sentiment):
    data = checks.pickle_carries_the_variable_name(make_backend, server, monkeypatch, KEY_ENV, SECRET)
    by_value = make_backend(server.url, api_key=SECRET)
    augmenter = GPT3MixAugmenter(by_value, toy_sentiment, TaskSpec.from_preset("sst2"), seed=0)
    assert SECRET.encode() not in pickle.dumps(augmenter)
    # The variable is read where the key is used: a process without it says so, naming the variable only.
    clone = pickle.loads(data)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ServedBackendError, match=KEY_ENV):
        clone.score(PROMPTS[:1], CONTEXTS[:1], LABELS)


def test_map_workers_read_the_key_from_their_environment(server, monkeypatch, toy_sentiment):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.api_key = SECRET
    make = lambda: GPT3MixAugmenter(make_backend(server.url, api_key_env=KEY_ENV), toy_sentiment,  # noqa: E731
                                    TaskSpec.from_preset("sst2"), seed=3, sampling=SamplingConfig(max_new_tokens=8))
    one = make().augment(load_from_cache_file=False, batch_size=2).to_list()
    two = make().augment(load_from_cache_file=False, batch_size=2, num_proc=2).to_list()
    assert two == one and one


def test_key_arguments_are_checked(monkeypatch):
    url = "http://127.0.0.1:1/v1"
    with pytest.raises(ValueError, match="not both"):
        OpenAIBackend(url, api_key="k", api_key_env="K")
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=f"export {KEY_ENV}="):
        OpenAIBackend(url, api_key_env=KEY_ENV)
    with pytest.raises(ValueError, match="carries credentials"):
        OpenAIBackend(f"http://user:{SECRET}@127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="http://"):
        OpenAIBackend("127.0.0.1:8000")
    with pytest.raises(TypeError, match="ServedConfig"):
        OpenAIBackend(url, config={"max_concurrency": 2})


def test_one_seed_per_prompt(server):
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        make_backend(server.url).generate(PROMPTS, [0], SamplingConfig())


def test_rebuilt_from_its_identity(server):
    backend = make_backend(server.url, top_logprobs=7)
    rebuilt = checks.rebuilt_from_identity(backend, server)
    assert rebuilt.score(PROMPTS[:1], CONTEXTS[:1], LABELS) == backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    with pytest.raises(ValueError, match="'tgi'"):
        TGIBackend.from_identity(backend.identity, base_url=server.url)
    with pytest.raises(ValueError, match="known kinds"):
        Backend.from_identity({"backend": "llama-magic"})


def test_scoring_reuses_the_prompt_tokens_of_the_context_check(server, local):
    """The augmenter tokenises each prompt to fit it to the context; where special tokens add nothing (learnt on
    the first prompt), scoring reuses that answer instead of asking again."""
    backend = make_backend(server.url)
    for prompt in PROMPTS:
        backend.tokenize(prompt)
    first = backend.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    before = server.calls["/tokenize"]
    second = backend.score(PROMPTS[1:], CONTEXTS[1:], LABELS)
    assert server.calls["/tokenize"] - before == 1  # the context only: prompt and labels are known
    for served, expected in zip(first + second, local.score(PROMPTS, CONTEXTS, LABELS), strict=True):
        assert served == pytest.approx(expected, abs=1e-4)
