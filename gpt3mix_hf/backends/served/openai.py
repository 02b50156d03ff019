"""An OpenAI-compatible `/v1/completions` server (vLLM, llama.cpp server, OpenAI) as a backend: the protocol only
(what to send, how to read the answer); requests, retries, the cache and the key are `ServedBackend`'s."""

from __future__ import annotations

import re

from transformers.utils import logging

from ...validation import check_arguments
from ..base import Completion, SamplingConfig
from .backend import ServedBackend
from .config import ServedConfig
from .errors import BadResponseError, RequestFailedError, RequestRefusedError, ServedBackendError
from .runner import gather_in_order

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
        api_key (`str`, *optional*): sent as a bearer token; never logged, cached, pickled or in `identity`.
        api_key_env (`str`, *optional*): the name of the environment variable holding the key, read in each
            process that uses the backend: use this one with `Dataset.map(num_proc=...)`.
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
    label_scoring_modes = LABEL_SCORING_MODES

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        tokenizer="auto",
        label_scoring: str = "auto",
        top_logprobs: int = 20,
        config: ServedConfig | None = None,
    ):
        check_arguments(OpenAIBackend.__init__, {"top_logprobs": top_logprobs})
        if not isinstance(top_logprobs, int) or top_logprobs < 1:
            raise ValueError(f"top_logprobs must be an integer >= 1, got {top_logprobs!r}.")
        root = base_url.rstrip("/") if isinstance(base_url, str) else base_url
        if isinstance(root, str) and root.endswith("/v1"):
            root = root[: -len("/v1")]
        super().__init__(root, model=model, api_key=api_key, api_key_env=api_key_env, label_scoring=label_scoring,
                         config=config)
        # Loaded once the cheap checks above passed.
        if isinstance(tokenizer, str) and tokenizer not in TOKENIZER_MODES:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.tokenizer = tokenizer
        self.top_logprobs = top_logprobs
        self._specials_add_nothing: bool | None = None

    def _settings(self) -> dict:
        return {**super()._settings(), "tokenizer": self.tokenizer, "top_logprobs": self.top_logprobs}

    def _identity_extra(self) -> dict:
        tokenizer = self.tokenizer if isinstance(self.tokenizer, str) else getattr(
            self.tokenizer, "name_or_path", type(self.tokenizer).__name__
        )
        return {"tokenizer": tokenizer, "top_logprobs": self.top_logprobs}

    @classmethod
    def _settings_from_identity(cls, identity: dict) -> dict:
        return {**super()._settings_from_identity(identity), "tokenizer": identity.get("tokenizer", "auto"),
                "top_logprobs": identity.get("top_logprobs", 20)}

    # -- the server ----------------------------------------------------------------------------------------

    async def _probe(self) -> dict:
        async with self._client() as client:
            served = await self._request(client, "GET", "/v1/models", None, _served_models, cached=False,
                                         describe="listing the served models", abort_batch=False)
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

    async def _server_tokenizes(self, client) -> bool:
        payload = {"model": self.model, "prompt": "a", "add_special_tokens": False}
        try:
            return await self._request(
                client, "POST", "/tokenize", payload,
                lambda answer: isinstance(answer, dict) and isinstance(answer.get("tokens"), list),
                cached=False, describe="a /tokenize probe", abort_batch=False,
            )
        except RequestRefusedError:  # only a refusal says there is no /tokenize (a failing server raises)
            return False

    async def _settle_scoring(self, client) -> tuple[str, int]:
        """Which scoring mode the server supports, and the `max_tokens` that echo needs (0 where allowed)."""
        if self.label_scoring == "top_logprobs":
            return "top_logprobs", 1
        last_error = None
        for max_tokens in (0, 1):
            payload = {"model": self.model, "prompt": "Hello world", "max_tokens": max_tokens, "echo": True,
                       "logprobs": 0, "temperature": 0}
            try:
                values = await self._request(client, "POST", "/v1/completions", payload, _echo_probe_values,
                                             cached=False, describe="an echo probe", abort_batch=False)
            except RequestRefusedError as error:  # a failing server raises: no verdict for the whole run from it
                last_error = error
                continue
            if values and any(value is not None for value in values):
                return "echo", max_tokens
            last_error = "the answer has no prompt log-probabilities"
            break
        last_error = self.credentials.redact(str(last_error))
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

    def _explain_rejection(self, error: RequestFailedError, payload: dict) -> Exception:
        message = str(error)
        if not _MAX_LOGPROBS.search(message):
            return error
        allowed = _ALLOWED.search(message)
        cap = f" (it allows {allowed.group(1)})" if allowed else ""
        wanted = max(int(payload.get("logprobs") or 0), 1)
        return ServedBackendError(
            f"{self.base_url} caps the log-probabilities per token below the {wanted} that soft labels "
            f"need{cap}. Restart vLLM with --max-logprobs {wanted} or more, or lower "
            f"top_logprobs (OpenAI allows 5). The server said: {message}"
        )

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

    async def _tokenize(self, client, text: str, special: bool) -> list[int]:
        memo = self._token_memo.get((text, special))
        if memo is None and special and self._specials_add_nothing:
            # The augmenter tokenised the prompt without special tokens to fit it to the context; where they
            # add nothing (learnt on the first prompt), that answer serves the scoring too: one round trip less.
            memo = self._token_memo.get((text, False))
        if memo is not None:
            return memo
        if not isinstance(self.tokenizer, str):
            ids = list(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        else:
            payload = {"model": self.model, "prompt": text, "add_special_tokens": special}
            ids = await self._request(client, "POST", "/tokenize", payload, self._read_tokens, describe="tokenizing")
        if special and self._specials_add_nothing is None and (text, False) in self._token_memo:
            self._specials_add_nothing = ids == self._token_memo[text, False]
        return self._remember_tokens((text, special), ids)

    def _read_tokens(self, answer) -> list[int]:
        ids = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise BadResponseError(f"{self.base_url}/tokenize answered without 'tokens': {str(answer)[:200]}")
        return ids

    # -- generation ------------------------------------------------------------------------------------------

    async def _completions(self, client, payload: dict, parse, describe: str):
        return await self._request(client, "POST", "/v1/completions", payload, parse, describe=describe,
                                   count_tokens=_count_tokens)

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
        return await self._completions(client, payload, self._read_generation, "a generation")

    def _read_generation(self, answer) -> Completion:
        choice = _choices(answer, 1, self.base_url)[0]
        text = choice.get("text")
        if not isinstance(text, str):
            raise BadResponseError(f"{self.base_url} answered a completion without text: {str(choice)[:200]}")
        if not text.strip():
            logger.info("The server returned an empty completion; the augmenter counts it as a failed attempt.")
        usage = answer.get("usage") or {}
        num_tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if not isinstance(num_tokens, int):
            logprobs = choice.get("logprobs")
            num_tokens = len(logprobs.get("tokens") or []) if isinstance(logprobs, dict) else 0
        return Completion(text=text.split("\n", 1)[0], num_tokens=num_tokens)

    # -- scoring ---------------------------------------------------------------------------------------------

    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""
        info = self._server
        if info["label_scoring"] == "top_logprobs":
            return await self._score_top_logprobs(client, prompt + context, continuations)
        if self._has_tokenizer():
            texts = [(prompt, True), (context, False), *[(c, False) for c in continuations]]
            pieces = await gather_in_order([self._tokenize(client, text, special) for text, special in texts])
            prefix, labels = pieces[0] + pieces[1], pieces[2:]
            sequences = [prefix + label for label in labels]
            spans = [(len(prefix), len(prefix) + len(label)) for label in labels]
        else:
            sequences = [prompt + context + c for c in continuations]
            spans = None
        payload = {"model": self.model, "prompt": sequences, "max_tokens": info["echo_max_tokens"], "echo": True,
                   "logprobs": 0, "temperature": 0}

        def read(answer) -> list[float]:
            scores = []
            for i, choice in enumerate(_choices(answer, len(sequences), self.base_url)):
                logprobs = choice.get("logprobs") or {}
                values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
                if not isinstance(values, list):
                    raise BadResponseError(
                        f"{self.base_url} answered an echo request without prompt log-probabilities: it cannot "
                        "score labels exactly. Use label_scoring='top_logprobs', or a server that supports echo "
                        "(vLLM)."
                    )
                if spans is not None:
                    start, stop = spans[i]
                else:
                    start, stop = _text_span(logprobs, len(prompt + context), len(sequences[i]), self.base_url)
                window = values[start:stop]
                if len(window) != stop - start or not all(isinstance(v, int | float) for v in window):
                    raise BadResponseError(
                        f"{self.base_url} returned {len(values)} prompt log-probabilities with gaps where the "
                        f"label tokens {start}..{stop} should be: cannot score labels. The answer: "
                        f"{str(choice)[:300]}"
                    )
                scores.append(float(sum(window)))
            return scores

        scores = await self._completions(client, payload, read, "label scoring")
        self.usage.rows_scored_exactly += 1
        return scores, 1.0

    async def _score_top_logprobs(self, client, prefix: str, continuations: list[str]) -> tuple[list[float], float]:
        payload = {"model": self.model, "prompt": prefix, "max_tokens": 1, "logprobs": self.top_logprobs,
                   "temperature": 0}

        def read(answer) -> dict[str, float]:
            choice = _choices(answer, 1, self.base_url)[0]
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
            return alternatives

        alternatives = await self._completions(client, payload, read, "label scoring (top logprobs)")
        return self._top_k_scores(alternatives, continuations)


def _served_models(listing) -> dict[str, dict]:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        raise BadResponseError(f"/v1/models answered without a 'data' list: {str(listing)[:200]}")
    return {entry.get("id"): entry for entry in data if isinstance(entry, dict)}


def _echo_probe_values(answer):
    try:
        return _choices(answer, 1, "")[0]["logprobs"]["token_logprobs"]
    except (BadResponseError, KeyError, TypeError):
        return None


def _choices(answer, expected: int, url: str) -> list[dict]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if (not isinstance(choices, list) or len(choices) != expected
            or not all(isinstance(choice, dict) for choice in choices)):
        raise BadResponseError(
            f"{url} answered {str(answer)[:300]}, not the {expected} choice(s) a completion answer must hold."
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
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
