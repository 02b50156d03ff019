"""One rule for secrets: what leaves the process (rows, failures, checkpoints, caches, every published file) is
scanned for the secrets in use, the served backend's API key and the Hub token."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ScriptedBackend, make_dataset
from datasets import Dataset

from gpt3mix_hf import GPT3MixAugmenter, OpenAIBackend, TaskSpec, TGIBackend, push_augmented_dataset
from gpt3mix_hf.backends.served.auth import Credentials, check_base_url
from gpt3mix_hf.credentials import check_folder_has_no_secrets, known_secrets

API_KEY = "sk-test-0123456789abcdefghij"
HUB_TOKEN = "hf_abcdefghijklmnopqrstuvwxyz012345"
SST2 = TaskSpec.from_preset("sst2")
TEXTS = ["a gripping film .", "dull and long .", "the best of the year .", "an embarrassment ."]


class LeakyBackend(ScriptedBackend):
    """Writes the secret it is told into every generation of its first call (every row's first attempt)."""

    def __init__(self, secret: str, api_key: str | None = None):
        super().__init__(parse_rate=1.0)
        self.secret = secret
        self.credentials = Credentials(api_key=api_key)

    def generate(self, prompts, seeds, sampling):
        completions = super().generate(prompts, seeds, sampling)
        if self.calls == 1:
            for completion in completions:
                completion.text = f" my key is {self.secret} (Sentiment: positive)"
        return completions


def _pool():
    return make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])


@pytest.mark.parametrize("where", ["api_key", "environment"])
def test_a_generation_holding_a_secret_is_a_failed_attempt_without_it(where, monkeypatch, tmp_path):
    if where == "environment":
        monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
        backend = LeakyBackend(HUB_TOKEN)
    else:
        backend = LeakyBackend(API_KEY, api_key=API_KEY)
    pool = _pool()
    augmenter = GPT3MixAugmenter(backend, pool, SST2, max_attempts=1)
    synthetic = augmenter.augment(pool, checkpoint_dir=tmp_path / "checkpoints")
    secret = HUB_TOKEN if where == "environment" else API_KEY
    assert len(synthetic) == 0 and augmenter.report.failed_rows == len(pool)
    failures = json.dumps(augmenter.report.failures)
    assert secret not in failures
    assert "the generation holds" in failures
    assert "***" in failures
    for path in (tmp_path / "checkpoints").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_the_next_attempt_replaces_a_leaking_generation():
    backend = LeakyBackend(API_KEY, api_key=API_KEY)
    pool = _pool()
    augmenter = GPT3MixAugmenter(backend, pool, SST2, max_attempts=2)
    synthetic = augmenter.augment(pool)
    assert len(synthetic) == len(pool)
    assert API_KEY not in json.dumps(synthetic.to_list())
    reasons = [attempt["error"] for row in synthetic["failed_attempts"] for attempt in row]
    assert reasons and all("the backend's API key" in reason for reason in reasons)


def test_a_users_row_holding_a_secret_stops_the_publish(tmp_path):
    rows = make_dataset(["fine", f"leaked {HUB_TOKEN} here", "ok"], [0, 1, 0], ["negative", "positive"])
    with pytest.raises(ValueError, match=r"split 'train': row 1, column 'text' holds your access token") as error:
        push_augmented_dataset(rows, "me/x", token=HUB_TOKEN, local_dir=tmp_path / "out")
    assert HUB_TOKEN not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_every_file_of_a_published_folder_is_read_parquet_included(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    folder = tmp_path / "repo"
    (folder / "data").mkdir(parents=True)
    Dataset.from_dict({"text": ["a", "b"], "notes": [[], ["x", API_KEY]]}).to_parquet(folder / "data/train.parquet")
    with pytest.raises(ValueError, match=r"data/train.parquet: row 1, column 'notes' holds \$OPENAI_API_KEY"):
        check_folder_has_no_secrets(folder)
    (folder / "data/train.parquet").unlink()
    np.save(folder / "weights.npy", np.frombuffer(f"....{API_KEY}....".encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"weights.npy contains \$OPENAI_API_KEY"):
        check_folder_has_no_secrets(folder)
    (folder / "weights.npy").unlink()
    check_folder_has_no_secrets(folder)


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:8000/v1?api_key={API_KEY}",
    "http://127.0.0.1:8000/v1?access_token=abc",
    f"http://127.0.0.1:8000/v1?model=x&k={HUB_TOKEN}",
    "http://127.0.0.1:8000/v1#key=abc",
])
def test_a_key_in_the_query_string_is_refused_like_user_key_at_host(url):
    for build in (lambda: check_base_url(url), lambda: OpenAIBackend(url), lambda: TGIBackend(url)):
        with pytest.raises(ValueError, match="carries a credential in its query string") as error:
            build()
        assert API_KEY not in str(error.value) and HUB_TOKEN not in str(error.value)
    assert check_base_url("http://127.0.0.1:8000/v1?model=x") == "http://127.0.0.1:8000/v1?model=x"


def test_the_request_cache_keeps_no_answer_holding_the_hub_token(monkeypatch, tmp_path):
    from gpt3mix_hf.backends.served.config import ServedConfig
    from gpt3mix_hf.backends.served.request_cache import RequestCache
    from gpt3mix_hf.backends.served.runner import RequestRunner

    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    runner = RequestRunner(ServedConfig(), "http://127.0.0.1:1", Credentials())
    cache = RequestCache(tmp_path / "cache.sqlite")
    runner._store(cache, "k1", {"text": f"hello {HUB_TOKEN}"}, "a request")
    runner._store(cache, "k2", {"text": "hello"}, "a request")
    assert "k1" not in cache and "k2" in cache
    assert HUB_TOKEN.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_known_secrets_include_a_backends_key():
    from gpt3mix_hf.credentials import backend_secrets

    assert API_KEY in backend_secrets(LeakyBackend(API_KEY, api_key=API_KEY)).values()
    assert API_KEY not in known_secrets().values()


def test_a_401_after_sending_no_key_says_so(tiny_lm_dir):
    from served_fixtures import CannedTransformersBackend, FakeOpenAIServer, TinyLMEngine

    from gpt3mix_hf import SamplingConfig, ServedConfig
    from gpt3mix_hf.backends import AuthenticationError

    engine = TinyLMEngine(CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1))
    with FakeOpenAIServer(engine) as server:
        server.api_key = API_KEY
        backend = OpenAIBackend(server.url, config=ServedConfig(max_retries=0, connect_retries=0))
        with pytest.raises(AuthenticationError, match="No key was sent"):
            backend.generate(["Hi"], [0], SamplingConfig(max_new_tokens=2))


def test_a_published_file_with_a_key_in_a_urls_query_string_is_refused(tmp_path):
    from gpt3mix_hf.credentials import check_no_secrets

    with pytest.raises(ValueError, match="config.server is a URL with credentials in it"):
        check_no_secrets({"server": "http://127.0.0.1:8000/v1?api_key=abc123"})
    check_no_secrets({"server": "http://127.0.0.1:8000/v1?model=gpt2"})
    (tmp_path / "README.md").write_text("Served at http://host/v1?access_token=abc123 .")
    with pytest.raises(ValueError, match="README.md contains a URL with a credential in its query string"):
        check_folder_has_no_secrets(tmp_path, published=("README.md",))


def test_a_key_cut_short_in_a_servers_message_is_redacted_too():
    # Error messages keep the first characters of a server's answer: the cut can fall inside the key.
    key = "sk-A1b2C3d4A1b2C3d4A1b2C3d4A1b2C3d4A1b2C3d4"
    credentials = Credentials(api_key=key)
    message = f"401: invalid header 'Authorization: Bearer {key}'"[:70]
    assert key[:22] in message
    redacted = credentials.redact(message)
    assert key[:8] not in redacted and redacted.startswith("401: invalid header 'Authorization: Bearer ")
    assert key[:8] not in credentials.redact(f"x {key} y {key[:30]}")
