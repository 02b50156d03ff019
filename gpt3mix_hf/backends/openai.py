"""An OpenAI-compatible `/v1/completions` server (vLLM, llama.cpp server, OpenAI) as a backend."""

from __future__ import annotations

import math
import re

from transformers.utils import logging

from .base import Completion, SamplingConfig
from .http import (
    BadResponseError,
    JSONHTTPClient,
    RequestFailedError,
    RequestRunner,
    ServedBackend,
    ServedBackendError,
    ServedConfig,
    cache_key,
)

logger = logging.get_logger(__name__)

LABEL_SCORING_MODES = ("auto", "echo", "top_logprobs")
TOKENIZER_MODES = ("auto", "server", "none")
# vLLM: "Requested sample logprobs of 30, which is greater than max allowed: 20"; OpenAI-style: "logprobs must
# be less than or equal to 5".
_MAX_LOGPROBS = re.compile(
    r"(max[_ -]?logprobs|greater than max allowed|logprobs.*(less than or equal|<=|at most))", re.IGNORECASE
)
_ALLOWED = re.compile(r"(?:max allowed:?|less than or equal to|<=|at most)\s*(\d+)", re.IGNORECASE)


class OpenAIBackend(ServedBackend):
    """Samples from and scores with a model behind an OpenAI-compatible `/v1/completions` endpoint.

    Each prompt is one request with its own `seed`, so a row's generation depends on its seed alone, never on
    how many requests are in flight; up to `config.max_concurrency` run at once. Soft labels are exact where
    the server scores prompt tokens (vLLM: `echo` with `max_tokens=0`): every label continuation is sent after
    the prompt and the generated text, all labels of a row in one request, and the log-probabilities of its
    tokens are summed. With token ids (from `tokenizer`, or vLLM's `/tokenize`), prompt, context and label are
    tokenised apart exactly as `TransformersBackend` does, so both give the same soft labels.

    Servers that cannot score prompt tokens (OpenAI itself) fall back to the top-k alternatives at the label
    position (`label_scoring="top_logprobs"`): the variants of each label word that differ in case or leading
    space are merged, `Completion.label_mass` records the probability the labels covered, a label outside the
    top k gets the largest probability it could have, and `usage.summary()` says how many rows were scored so.

    Args:
        base_url (`str`): the server, e.g. `http://127.0.0.1:8000/v1` (with or without `/v1`).
        model (`str`, *optional*): the served model name; default the only one the server serves.
        api_key (`str`, *optional*): sent as a bearer token; never logged, never in `identity`.
        tokenizer (`str` or `PreTrainedTokenizerBase`, *optional*): `"auto"` (the server's `/tokenize` where it
            has one, else none), `"server"`, `"none"` (send text), a tokenizer, or a path/Hub id to load one.
        label_scoring (`str`): `"auto"` (probe the server once), `"echo"` or `"top_logprobs"`.
        top_logprobs (`int`): alternatives asked for in `"top_logprobs"` mode (vLLM: at most its
            `--max-logprobs`, 20 by default; OpenAI: at most 5).
        config (`ServedConfig`, *optional*): concurrency, retries, limits, request cache.

    Example:

    >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", model="smollm2",
    ...                         config=ServedConfig(max_concurrency=8, cache_path="outputs/requests.sqlite"))
    >>> augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), seed=0)
    >>> synthetic = augmenter.augment()
    >>> print(backend.usage.summary())
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        tokenizer="auto",
        label_scoring: str = "auto",
        top_logprobs: int = 20,
        config: ServedConfig | None = None,
    ):
        if label_scoring not in LABEL_SCORING_MODES:
            raise ValueError(f"label_scoring must be one of {LABEL_SCORING_MODES}, got {label_scoring!r}.")
        if top_logprobs < 1:
            raise ValueError(f"top_logprobs must be >= 1, got {top_logprobs}.")
        if isinstance(tokenizer, str) and tokenizer not in TOKENIZER_MODES:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.base_url = root
        self.model = model
        self.api_key = api_key
        self.tokenizer = tokenizer
        self.label_scoring = label_scoring
        self.top_logprobs = top_logprobs
        self.config = config or ServedConfig()
        self.runner = RequestRunner(self.config, self.base_url)
        self._server: dict | None = None
        self._token_memo: dict[tuple[str, bool], list[int]] = {}

    # -- pickling (Dataset.map workers, the datasets fingerprint) ----------------------------------------

    def __getstate__(self):
        return {
            "base_url": self.base_url,
            "model": self.model,
            "api_key": self.api_key,
            "tokenizer": self.tokenizer,
            "label_scoring": self.label_scoring,
            "top_logprobs": self.top_logprobs,
            "config": self.config,
        }

    def __setstate__(self, state):
        base_url = state.pop("base_url")
        self.__init__(base_url, **state)

    def __repr__(self):
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"

    # -- the server ----------------------------------------------------------------------------------------

    def _client(self) -> JSONHTTPClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return JSONHTTPClient(self.base_url, self.config.timeout, headers)

    async def _probe(self) -> dict:
        async with self._client() as client:
            listing = await self._probe_request(client, "GET", "/v1/models", None, "listing the served models")
            served = {entry.get("id"): entry for entry in (listing or {}).get("data", []) if isinstance(entry, dict)}
            if self.model is None:
                if len(served) != 1:
                    raise ServedBackendError(
                        f"{self.base_url} serves {sorted(served)}: pass model=<one of them>."
                    )
                self.model = next(iter(served))
            elif self.model not in served:
                raise ServedBackendError(
                    f"{self.base_url} does not serve a model named {self.model!r}; it serves {sorted(served)}. "
                    "Pass one of those as model= (vLLM: the --served-model-name)."
                )
            info = {"max_context": served[self.model].get("max_model_len"), "tokenize": False}
            if self.tokenizer in ("auto", "server"):
                info["tokenize"] = await self._server_tokenizes(client)
                if self.tokenizer == "server" and not info["tokenize"]:
                    raise ServedBackendError(
                        f"{self.base_url} has no /tokenize endpoint (vLLM has one): pass tokenizer=<the model's "
                        "tokenizer or its path> or tokenizer='none'."
                    )
            info["label_scoring"], info["echo_max_tokens"] = await self._settle_scoring(client)
            return info

    async def _probe_request(self, client, method: str, route: str, payload: dict | None, describe: str = "a probe"):
        """Retried like any request (a 429 at start should not end a run), never cached."""
        return await self.runner.request(
            None, lambda: client.request(method, route, payload, describe=describe), describe=describe,
            abort_batch=False,
        )

    async def _server_tokenizes(self, client: JSONHTTPClient) -> bool:
        try:
            answer = await self._probe_request(
                client, "POST", "/tokenize", {"model": self.model, "prompt": "a", "add_special_tokens": False}
            )
        except RequestFailedError:
            return False
        return isinstance(answer, dict) and isinstance(answer.get("tokens"), list)

    async def _settle_scoring(self, client: JSONHTTPClient) -> tuple[str, int]:
        """Which scoring mode the server supports, and the `max_tokens` that echo needs (0 where allowed)."""
        if self.label_scoring == "top_logprobs":
            return "top_logprobs", 1
        last_error = None
        for max_tokens in (0, 1):
            payload = {"model": self.model, "prompt": "Hello world", "max_tokens": max_tokens, "echo": True,
                       "logprobs": 0, "temperature": 0}
            try:
                answer = await self._probe_request(client, "POST", "/v1/completions", payload, "an echo probe")
            except RequestFailedError as error:
                self._raise_if_logprobs_capped(error, 0)
                last_error = error
                continue
            try:
                values = _choices(answer, 1)[0]["logprobs"]["token_logprobs"]
            except (BadResponseError, KeyError, TypeError):
                values = None
            if values and any(value is not None for value in values):
                return "echo", max_tokens
            last_error = f"the answer has no prompt log-probabilities ({str(answer)[:200]})"
            break
        if self.label_scoring == "echo":
            raise ServedBackendError(
                f"{self.base_url} cannot score prompt tokens (echo with logprobs): {last_error}. Use "
                "label_scoring='top_logprobs' (approximate soft labels) or a server that can (vLLM)."
            )
        logger.warning(
            f"{self.base_url} cannot score prompt tokens ({last_error}); soft labels will come from the top "
            f"{self.top_logprobs} alternatives at the label position (approximate, see the label_mass column)."
        )
        return "top_logprobs", 1

    def _raise_if_logprobs_capped(self, error: RequestFailedError, wanted: int):
        message = str(error)
        if _MAX_LOGPROBS.search(message):
            allowed = _ALLOWED.search(message)
            cap = f" (it allows {allowed.group(1)})" if allowed else ""
            raise ServedBackendError(
                f"{self.base_url} caps the log-probabilities per token below the {wanted} that soft labels "
                f"need{cap}. Restart vLLM with --max-logprobs {max(wanted, 1)} or more, or lower "
                f"top_logprobs (OpenAI allows 5). The server said: {message}"
            ) from None

    @property
    def identity(self) -> dict:
        info = self._connected()
        tokenizer = self.tokenizer if isinstance(self.tokenizer, str) else getattr(
            self.tokenizer, "name_or_path", type(self.tokenizer).__name__
        )
        return {"backend": self.kind, "model": self.model, "label_scoring": info["label_scoring"],
                "tokenizer": tokenizer, "top_logprobs": self.top_logprobs}

    @property
    def max_context(self) -> int | None:
        # Without a tokenizer the prompt's length cannot be measured: report no limit rather than one that
        # cannot be checked (the server rejects a prompt that is too long, with its own message).
        if not self._has_tokenizer():
            return None
        return self._connected()["max_context"]

    def _has_tokenizer(self) -> bool:
        if not isinstance(self.tokenizer, str):
            return True
        return self.tokenizer != "none" and self._connected()["tokenize"]

    def tokenize(self, text: str) -> list[int] | None:
        if not self._has_tokenizer():
            return None

        async def run():
            async with self._client() as client:
                return await self._tokenize(client, text, False)

        return self.runner.run(run)

    async def _tokenize(self, client: JSONHTTPClient, text: str, special: bool) -> list[int]:
        memo = self._token_memo.get((text, special))
        if memo is not None:
            return memo
        if not isinstance(self.tokenizer, str):
            ids = list(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        else:
            payload = {"model": self.model, "prompt": text, "add_special_tokens": special}
            answer = await self.runner.request(
                cache_key(self.kind, self.model, "/tokenize", payload),
                lambda: client.request("POST", "/tokenize", payload, describe="tokenizing"),
                describe="tokenizing",
            )
            ids = answer.get("tokens") if isinstance(answer, dict) else None
            if not isinstance(ids, list):
                raise BadResponseError(f"{self.base_url}/tokenize answered without 'tokens': {str(answer)[:200]}")
        if len(self._token_memo) > 4096:  # prompts are seen once or twice: keep the memo small
            self._token_memo.clear()
        self._token_memo[text, special] = ids
        return ids

    # -- generation ------------------------------------------------------------------------------------------

    async def _completions(self, client: JSONHTTPClient, payload: dict, describe: str) -> dict:
        async def send():
            try:
                return await client.request("POST", "/v1/completions", payload, describe=describe)
            except RequestFailedError as error:
                self._raise_if_logprobs_capped(error, int(payload.get("logprobs") or 0))
                raise

        return await self.runner.request(
            cache_key(self.kind, self.model, "/v1/completions", payload), send, _count_tokens, describe
        )

    async def _generate_one(self, client, prompt: str, seed: int, sampling: SamplingConfig) -> Completion:
        payload = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p if sampling.temperature > 0 else 1.0,
            "seed": seed,
            "stop": ["\n"],
            "n": 1,
        }
        answer = await self._completions(client, payload, "a generation")
        choice = _choices(answer, 1)[0]
        text = choice.get("text")
        if not isinstance(text, str):
            raise BadResponseError(f"{self.base_url} answered a completion without text: {str(choice)[:200]}")
        if not text.strip():
            logger.info("The server returned an empty completion; the augmenter counts it as a failed attempt.")
        usage = answer.get("usage") or {}
        num_tokens = usage.get("completion_tokens")
        if not isinstance(num_tokens, int):
            num_tokens = len(choice.get("logprobs", {}).get("tokens") or []) if choice.get("logprobs") else 0
        return Completion(text=text.split("\n", 1)[0], num_tokens=num_tokens)

    # -- scoring ---------------------------------------------------------------------------------------------

    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""
        info = self._server
        if info["label_scoring"] == "top_logprobs":
            return await self._score_top_logprobs(client, prompt + context, continuations)
        if self._has_tokenizer():
            prefix = await self._tokenize(client, prompt, True) + await self._tokenize(client, context, False)
            labels = [await self._tokenize(client, c, False) for c in continuations]
            sequences = [prefix + label for label in labels]
            spans = [(len(prefix), len(prefix) + len(label)) for label in labels]
        else:
            sequences = [prompt + context + c for c in continuations]
            spans = None
        payload = {"model": self.model, "prompt": sequences, "max_tokens": info["echo_max_tokens"], "echo": True,
                   "logprobs": 0, "temperature": 0}
        answer = await self._completions(client, payload, "label scoring")
        scores = []
        for i, choice in enumerate(_choices(answer, len(sequences))):
            logprobs = choice.get("logprobs") or {}
            values = logprobs.get("token_logprobs")
            if not isinstance(values, list):
                raise BadResponseError(
                    f"{self.base_url} answered an echo request without prompt log-probabilities: it cannot score "
                    "labels exactly. Use label_scoring='top_logprobs', or a server that supports echo (vLLM)."
                )
            if spans is not None:
                start, stop = spans[i]
            else:
                start, stop = _text_span(logprobs, len(prompt + context), len(sequences[i]), self.base_url)
            window = values[start:stop]
            if len(window) != stop - start or any(value is None for value in window):
                raise BadResponseError(
                    f"{self.base_url} returned {len(values)} prompt log-probabilities with gaps where the label "
                    f"tokens {start}..{stop} should be: cannot score labels. The answer: {str(choice)[:300]}"
                )
            scores.append(float(sum(window)))
        self.usage.rows_scored_exactly += 1
        return scores, 1.0

    async def _score_top_logprobs(self, client, prefix: str, continuations: list[str]) -> tuple[list[float], float]:
        payload = {"model": self.model, "prompt": prefix, "max_tokens": 1, "logprobs": self.top_logprobs,
                   "temperature": 0}
        answer = await self._completions(client, payload, "label scoring (top logprobs)")
        choice = _choices(answer, 1)[0]
        try:
            alternatives = choice["logprobs"]["top_logprobs"][0]
        except (KeyError, IndexError, TypeError):
            alternatives = None
        if not isinstance(alternatives, dict) or not alternatives:
            raise BadResponseError(
                f"{self.base_url} answered without top log-probabilities at the label position (asked for "
                f"logprobs={self.top_logprobs}): soft labels cannot be computed. Use label_mode='hard', or a "
                "server that returns logprobs."
            )
        logprobs, mass, missing = top_k_label_logprobs(alternatives, continuations)
        self.usage.rows_scored_top_k += 1
        self.usage.top_k_label_mass_sum += mass
        self.usage.rows_missing_labels += int(missing > 0)
        return logprobs, mass


def top_k_label_logprobs(alternatives: dict[str, float], continuations: list[str]) -> tuple[list[float], float, int]:
    """Label log-probabilities from the top-k alternatives at the label's first token.

    A token counts for a label when, without case and surrounding spaces, it is the label word or a prefix of
    it that no other label word shares; all such variants (" Positive", "positive", " pos"...) are summed. A
    label with no variant in the top k gets the largest probability it could have: the smallest of the top k's,
    and at most the mass the top k left over, shared among the missing labels.

    Returns the log-probabilities, the mass the labels' variants covered, and how many labels were missing.
    """
    words = [c.strip().lower() for c in continuations]
    found = [0.0] * len(words)
    for token, logprob in alternatives.items():
        if logprob is None:
            continue
        piece = token.strip().lower()
        if not piece:
            continue
        owners = [i for i, word in enumerate(words) if word.startswith(piece)]
        if len(owners) == 1:
            found[owners[0]] += math.exp(logprob)
    covered = sum(found)
    missing = [i for i, p in enumerate(found) if p == 0.0]
    if missing:
        probabilities = [math.exp(v) for v in alternatives.values() if v is not None]
        leftover = max(0.0, 1.0 - sum(probabilities))
        bound = min(min(probabilities), leftover / len(missing)) if probabilities else 0.0
        for i in missing:
            found[i] = bound
    logprobs = [math.log(p) if p > 0 else -math.inf for p in found]
    return logprobs, covered, len(missing)


def _choices(answer: dict, expected: int) -> list[dict]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or len(choices) != expected:
        raise BadResponseError(
            f"Expected {expected} choices in the completion answer, got: {str(answer)[:300]}"
        )
    return sorted(choices, key=lambda choice: choice.get("index", 0))


def _text_span(logprobs: dict, start_char: int, stop_char: int, url: str) -> tuple[int, int]:
    """Token positions covering characters [start_char, stop_char) of an echoed text prompt."""
    offsets = logprobs.get("text_offset")
    if not isinstance(offsets, list):
        raise BadResponseError(
            f"{url} gave no text_offset with its echoed tokens: pass tokenizer=<the model's tokenizer> so labels "
            "are scored on token ids."
        )
    start = next((i for i, offset in enumerate(offsets) if offset >= start_char), len(offsets))
    if start < len(offsets) and offsets[start] != start_char:
        logger.warning("A label's first token merges with the text before it: its score is approximate.")
    stop = next((i for i, offset in enumerate(offsets) if offset >= stop_char), len(offsets))
    return start, stop


def _count_tokens(answer: dict) -> tuple[int, int]:
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
