"""A text-generation-inference (TGI) server as a backend, through `huggingface_hub.InferenceClient`.

Coverage note: no TGI server can run on the machines this project is tested on (a Rust router, no Docker).
This backend is tested against an in-process server that speaks TGI's protocol, with answers built from
`huggingface_hub`'s `TextGenerationOutput` types, and a real LM behind it; real-TGI coverage is by protocol
only.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict

from transformers.utils import logging

from .base import Completion, SamplingConfig
from .http import (
    BadResponseError,
    JSONHTTPClient,
    RequestFailedError,
    RequestRunner,
    RetryableError,
    ServedBackend,
    ServedBackendError,
    ServedConfig,
    ServerUnreachableError,
    cache_key,
    classify_status,
    gather_in_order,
)
from .openai import top_k_label_logprobs

logger = logging.get_logger(__name__)

LABEL_SCORING_MODES = ("auto", "prefill", "top_n_tokens")
_TOP_N = re.compile(r"top_n_tokens.*?<=\s*(\d+)", re.IGNORECASE)


def _connect_errors() -> tuple[type[BaseException], ...]:
    """The transport's connection-refused errors (huggingface_hub moved from httpx to httpx2)."""
    errors: list[type[BaseException]] = [ConnectionError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).ConnectError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _lost_connection_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        try:
            imported = __import__(module)
            errors.extend([imported.RemoteProtocolError, imported.ReadError, imported.WriteError])
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


class TGIBackend(ServedBackend):
    """Samples from and scores with a text-generation-inference server (`POST /generate`).

    Requests go through `huggingface_hub.AsyncInferenceClient(base_url=...).text_generation(details=True, ...)`,
    up to `config.max_concurrency` at once, each generation with its row's seed. Soft labels are exact where
    the server returns prompt log-probabilities (`decoder_input_details=True`; TGI >= 3 needs
    `--enable-prefill-logprobs`): each label continuation is sent after the prompt and the generated text, and
    the log-probabilities of its tokens in the prefill are summed. Otherwise the labels come from the
    `top_n_tokens` alternatives at the label position (capped by TGI's `--max-top-n-tokens`, 5 by default),
    with `Completion.label_mass` recording the probability they covered.

    Text is sent as one string (TGI takes no token ids): a label whose first token merges with the text before
    it is scored on the merged token. `tokenize` uses TGI's `/tokenize` where the server has it; without it,
    `tokenize` and `max_context` are None and prompts are not shortened to fit the model's context.

    Args:
        base_url (`str`): the server, e.g. `http://127.0.0.1:8080`.
        api_key (`str`, *optional*): sent as a bearer token; never logged, never in `identity`.
        model (`str`, *optional*): a name for provenance; default the `model_id` from the server's `/info`.
        label_scoring (`str`): `"auto"` (probe once), `"prefill"` or `"top_n_tokens"`.
        top_n_tokens (`int`): alternatives asked for in `"top_n_tokens"` mode.
        config (`ServedConfig`, *optional*): concurrency, retries, limits, request cache.

    Example:

    >>> backend = TGIBackend("http://127.0.0.1:8080", config=ServedConfig(cache_path="outputs/tgi.sqlite"))
    >>> augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), seed=0)
    >>> synthetic = augmenter.augment()
    """

    kind = "tgi"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        label_scoring: str = "auto",
        top_n_tokens: int = 5,
        config: ServedConfig | None = None,
    ):
        if label_scoring not in LABEL_SCORING_MODES:
            raise ValueError(f"label_scoring must be one of {LABEL_SCORING_MODES}, got {label_scoring!r}.")
        if top_n_tokens < 1:
            raise ValueError(f"top_n_tokens must be >= 1, got {top_n_tokens}.")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.label_scoring = label_scoring
        self.top_n_tokens = top_n_tokens
        self.config = config or ServedConfig()
        self.runner = RequestRunner(self.config, self.base_url)
        self._server: dict | None = None
        self._token_memo: dict[str, list[int]] = {}

    def __getstate__(self):
        return {"base_url": self.base_url, "api_key": self.api_key, "model": self.model,
                "label_scoring": self.label_scoring, "top_n_tokens": self.top_n_tokens, "config": self.config}

    def __setstate__(self, state):
        base_url = state.pop("base_url")
        self.__init__(base_url, **state)

    def __repr__(self):
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _client(self):
        from huggingface_hub import AsyncInferenceClient

        return AsyncInferenceClient(base_url=self.base_url, api_key=self.api_key, timeout=self.config.timeout)

    # -- the server -------------------------------------------------------------------------------------------

    async def _probe(self) -> dict:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with JSONHTTPClient(self.base_url, self.config.timeout, headers) as http:
            try:
                info = await self.runner.request(
                    None, lambda: http.request("GET", "/info", describe="reading /info"), abort_batch=False
                )
            except RequestFailedError:  # not every TGI-compatible endpoint has /info
                info = {}
            try:
                tokens = await self.runner.request(
                    None, lambda: http.request("POST", "/tokenize", {"inputs": "a"}, describe="a /tokenize probe"),
                    abort_batch=False,
                )
                tokenizes = isinstance(tokens, list)
            except RequestFailedError:
                tokenizes = False
        if self.model is None:
            self.model = info.get("model_id") or self.base_url
        server = {"max_context": info.get("max_total_tokens") if tokenizes else None, "tokenize": tokenizes,
                  "label_scoring": self.label_scoring}
        if self.label_scoring == "auto":
            async with self._client() as client:
                parameters = {"max_new_tokens": 1, "details": True, "decoder_input_details": True}
                answer = await self.runner.request(
                    None, lambda: self._send(client, "Hello world", parameters), abort_batch=False
                )
            prefill = answer.details.prefill if answer.details is not None else []
            values = [_field(token, "logprob") for token in prefill or []]
            if any(value is not None and not math.isnan(value) for value in values):
                server["label_scoring"] = "prefill"
            else:
                server["label_scoring"] = "top_n_tokens"
                logger.warning(
                    f"{self.base_url} returns no prompt log-probabilities (TGI >= 3: launch it with "
                    f"--enable-prefill-logprobs); soft labels will come from the top {self.top_n_tokens} "
                    "alternatives at the label position (approximate, see the label_mass column)."
                )
        return server

    @property
    def identity(self) -> dict:
        server = self.connect()
        return {"backend": self.kind, "model": self.model, "label_scoring": server["label_scoring"],
                "top_n_tokens": self.top_n_tokens}

    @property
    def max_context(self) -> int | None:
        return self.connect()["max_context"]

    def tokenize(self, text: str) -> list[int] | None:
        if not self.connect()["tokenize"]:
            return None
        if text not in self._token_memo:
            if len(self._token_memo) > 4096:
                self._token_memo.clear()
            self._token_memo[text] = self.runner.run(lambda: self._tokenize(text))
        return self._token_memo[text]

    async def _tokenize(self, text: str) -> list[int]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with JSONHTTPClient(self.base_url, self.config.timeout, headers) as http:
            payload = {"inputs": text}
            answer = await self.runner.request(
                cache_key(self.kind, self.model, "/tokenize", payload),
                lambda: http.request("POST", "/tokenize", payload, describe="tokenizing"),
                describe="tokenizing",
            )
        if not isinstance(answer, list) or not all(isinstance(t, dict) and "id" in t for t in answer):
            raise BadResponseError(f"{self.base_url}/tokenize answered {str(answer)[:200]}, not a list of tokens.")
        return [token["id"] for token in answer]

    # -- requests ---------------------------------------------------------------------------------------------

    async def _send(self, client, inputs: str, parameters: dict):
        """One `text_generation` call with every failure mapped to the shared errors (no retries here)."""
        from huggingface_hub import TextGenerationOutput
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

        try:
            answer = await client.text_generation(inputs, **parameters)
        except OfflineModeIsEnabled:
            raise ServedBackendError(
                "HF_HUB_OFFLINE=1 makes huggingface_hub refuse every request, a local TGI server's included: "
                "unset it for the TGI backend."
            ) from None
        except InferenceTimeoutError:
            raise RetryableError("timed out") from None
        except _connect_errors() as error:
            raise ServerUnreachableError(
                f"Could not connect to {self.base_url} ({error.__class__.__name__}). Is the TGI server running "
                "and listening there? Check the URL, host and port."
            ) from None
        except _lost_connection_errors() as error:
            raise RetryableError(f"connection lost ({error.__class__.__name__})") from None
        except HfHubHTTPError as error:
            raise self._http_error(error) from None
        except Exception as error:
            cause = error.__cause__
            if isinstance(cause, HfHubHTTPError):  # TGI's typed errors (validation, overloaded...)
                raise self._http_error(cause, str(error)) from None
            if isinstance(error, ValueError):  # the body was not JSON
                raise RetryableError(f"malformed answer ({error})") from None
            raise
        if not isinstance(answer, TextGenerationOutput) or answer.details is None:
            raise BadResponseError(
                f"{self.base_url} answered without `details`: it does not speak TGI's protocol. Got: "
                f"{str(answer)[:200]}"
            )
        return answer

    def _http_error(self, error, message: str | None = None) -> Exception:
        response = error.response
        body = message or response.text
        exception = classify_status(response.status_code, body, response.headers, self.base_url, "TGI request")
        cap = _TOP_N.search(body or "")
        if cap is not None and isinstance(exception, RequestFailedError):
            return ServedBackendError(
                f"{self.base_url} allows at most {cap.group(1)} top tokens but top_n_tokens={self.top_n_tokens}: "
                f"launch TGI with --max-top-n-tokens {self.top_n_tokens} or more, or lower top_n_tokens. "
                f"The server said: {body}"
            )
        return exception

    async def _generate_call(self, client, inputs: str, parameters: dict):
        """A cached, retried `text_generation` call; the answer is a `TextGenerationOutput`."""
        from huggingface_hub import TextGenerationOutput

        async def send():
            return _plain(asdict(await self._send(client, inputs, parameters)))

        key = cache_key(self.kind, self.model, "/generate", {"inputs": inputs, "parameters": parameters})
        answer = await self.runner.request(key, send, _count_tokens, "a TGI request")
        return TextGenerationOutput.parse_obj_as_instance(answer)

    # -- generation -------------------------------------------------------------------------------------------

    async def _generate_one(self, client, prompt: str, seed: int, sampling: SamplingConfig) -> Completion:
        parameters = {"max_new_tokens": sampling.max_new_tokens, "details": True, "stop": ["\n"], "seed": seed,
                      "do_sample": sampling.temperature > 0}
        if sampling.temperature > 0:  # TGI rejects temperature 0 and top_p 1: greedy is do_sample=False
            parameters["temperature"] = sampling.temperature
            if sampling.top_p < 1:
                parameters["top_p"] = sampling.top_p
        answer = await self._generate_call(client, prompt, parameters)
        text = answer.generated_text
        if not text.strip():
            logger.info("The server returned an empty completion; the augmenter counts it as a failed attempt.")
        return Completion(text=text.split("\n", 1)[0], num_tokens=answer.details.generated_tokens)

    # -- scoring ----------------------------------------------------------------------------------------------

    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""
        if self._connected()["label_scoring"] == "top_n_tokens":
            parameters = {"max_new_tokens": 1, "details": True, "do_sample": False, "top_n_tokens": self.top_n_tokens}
            answer = await self._generate_call(client, prompt + context, parameters)
            top = answer.details.top_tokens
            if not top or not top[0]:
                raise BadResponseError(
                    f"{self.base_url} answered without top_tokens (asked for top_n_tokens={self.top_n_tokens}): "
                    "soft labels cannot be computed. Use label_mode='hard' or a TGI version with top_n_tokens."
                )
            # huggingface_hub parses the nested list[list[token]] as plain dicts: read both forms.
            alternatives = {_field(t, "text"): _field(t, "logprob") for t in top[0]}
            logprobs, mass, missing = top_k_label_logprobs(alternatives, continuations)
            self.usage.rows_scored_top_k += 1
            self.usage.top_k_label_mass_sum += mass
            self.usage.rows_missing_labels += int(missing > 0)
            return logprobs, mass
        parameters = {"max_new_tokens": 1, "details": True, "decoder_input_details": True, "do_sample": False}
        answers = await gather_in_order(
            [self._generate_call(client, prompt + context + label, parameters) for label in continuations]
        )
        scores = [_label_logprob(answer.details.prefill, label, self.base_url)
                  for answer, label in zip(answers, continuations, strict=True)]
        self.usage.rows_scored_exactly += 1
        return scores, 1.0


def _field(token, name: str):
    return token[name] if isinstance(token, dict) else getattr(token, name)


def _label_logprob(prefill, label: str, url: str) -> float:
    """The summed log-probability of the prefill tokens that spell `label` at the end of the input."""
    covered, total = "", 0.0
    for token in reversed(prefill or []):
        if len(covered) >= len(label):
            break
        logprob, text = _field(token, "logprob"), _field(token, "text")
        if logprob is None or math.isnan(logprob):
            raise BadResponseError(
                f"{url} returned prompt tokens without log-probabilities (TGI >= 3: launch it with "
                "--enable-prefill-logprobs), or the label is the whole input: cannot score labels exactly."
            )
        covered = text + covered
        total += logprob
    if len(covered) < len(label):
        raise BadResponseError(
            f"{url} returned {len(prefill or [])} prompt tokens, too few to cover the label {label!r}: launch TGI "
            "with --enable-prefill-logprobs, or use label_scoring='top_n_tokens'."
        )
    if covered != label:
        logger.debug(f"The label {label!r} shares a token with the text before it ({covered!r}): approximate.")
    return total


def _plain(value):
    """A dataclass dump as JSON-safe data: NaN (TGI's first prefill token) becomes None."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _count_tokens(answer: dict) -> tuple[int, int]:
    details = answer.get("details") or {}
    return len(details.get("prefill") or []), int(details.get("generated_tokens") or 0)
