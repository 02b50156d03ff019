"""What every served backend must do whatever its protocol, written once for test_openai_backend.py and
test_tgi_backend.py: each passes its own fake server and `make_backend`."""

from __future__ import annotations

import json
import logging
import pickle
import traceback

import pytest
from served_fixtures import stored_answers

from gpt3mix_hf.backends import AuthenticationError, Backend, BadResponseError, ServedBackendError, ServedConfig
from gpt3mix_hf.backends.base import SamplingConfig

PROMPTS = [
    "Movie reviews and their sentiment.\nMovie review: a gem . (Sentiment: positive)\nMovie review:",
    "Movie reviews and their sentiment.\nMovie review: so dull . (Sentiment: negative)\nMovie review:",
]
CONTEXTS = [" a moving film (Sentiment:", " two hours lost (Sentiment:"]
LABELS = [" negative", " positive"]
TEXTS = ["a gripping , funny film .", "dull and far too long .", "the best thing this year .", "awful ."]
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


def call(backend, what: str):
    """The request kind `what` names: `"generation"`, `"tokenize"`, or else label scoring."""
    if what == "generation":
        return [c.text for c in backend.generate(PROMPTS, [0, 1], SamplingConfig(max_new_tokens=6))]
    if what == "tokenize":
        return backend.tokenize(" a moving film")
    return backend.score(PROMPTS, CONTEXTS, LABELS)


def unusable_answer_is_never_cached(make_backend, server, tmp_path, what: str, settings: dict, probes: int):
    """A valid-JSON but useless answer raises, stays out of the cache, and a rerun on the same cache asks again
    (more requests than the `probes` a new backend sends first) and gets the right answer."""
    expected = call(make_backend(server.url, **settings), what)
    cache_path = str(tmp_path / "requests.sqlite")
    backend = make_backend(server.url, **settings, config={"cache_path": cache_path, "max_concurrency": 1})
    backend.connect()
    server.faults.append("unusable")
    with pytest.raises(BadResponseError):
        call(backend, what)
    assert not server.faults
    unusable = {json.dumps(body) for body in server.UNUSABLE.values()}
    assert not set(stored_answers(cache_path)) & unusable
    before = sum(server.calls.values())
    rerun = make_backend(server.url, **settings, config={"cache_path": cache_path})
    assert call(rerun, what) == expected
    assert sum(server.calls.values()) > before + probes
    assert not set(stored_answers(cache_path)) & unusable


def repeated_key_is_never_shown(backend, server, caplog, fault: str, secret: str):
    """A server that repeats the Authorization header in its errors (`server.echo_auth`): after `fault`, the key
    is in no message, traceback, log line or repr, and is redacted rather than missing."""
    if fault == "401":
        server.api_key = "another-key"
    else:
        backend.connect()
        server.faults.extend([fault] * 10)
    with caplog.at_level(logging.DEBUG, logger="gpt3mix_hf"), pytest.raises(ServedBackendError) as error:
        backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=4))
    server.faults.clear()
    shown = "".join(traceback.format_exception(error.value)) + repr(error.value) + caplog.text + repr(backend)
    assert secret not in shown
    assert "***" in str(error.value)  # the server did repeat it: redacted, not missing
    if fault == "401":
        assert isinstance(error.value, AuthenticationError) and backend.usage.retries == 0


def pickle_carries_the_variable_name(make_backend, server, monkeypatch, key_env: str, secret: str) -> bytes:
    """A backend given `api_key_env` pickles without the key and scores the same once unpickled; one given
    `api_key` pickles without it and says to use `api_key_env`. Returns the first pickle."""
    monkeypatch.setenv(key_env, secret)
    server.api_key = secret
    by_env = make_backend(server.url, api_key_env=key_env)
    expected = by_env.score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    data = pickle.dumps(by_env)
    assert secret.encode() not in data
    assert pickle.loads(data).score(PROMPTS[:1], CONTEXTS[:1], LABELS) == expected
    by_value = make_backend(server.url, api_key=secret)
    assert secret.encode() not in pickle.dumps(by_value)
    with pytest.raises(ServedBackendError, match="api_key_env="):
        pickle.loads(pickle.dumps(by_value)).score(PROMPTS[:1], CONTEXTS[:1], LABELS)
    return data


def rebuilt_from_identity(backend, server) -> Backend:
    """`Backend.from_identity` gives a backend of the same class and identity; without a URL it says to pass one.
    Returns the rebuilt backend."""
    identity = backend.identity
    rebuilt = Backend.from_identity(identity, base_url=server.url, config=ServedConfig(**FAST))
    assert type(rebuilt) is type(backend)
    assert rebuilt.identity == identity
    with pytest.raises(ValueError, match="base_url="):
        type(backend).from_identity(identity)
    return rebuilt
