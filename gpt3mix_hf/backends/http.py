"""Shared plumbing of the served backends (`openai.py`, `tgi.py`): many requests in flight under a bound,
retries with exponential backoff and jitter, clear errors for what retrying cannot fix, request and token
limits, the on-disk request cache, and a usage report."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from transformers.utils import logging

from .base import Backend, Completion, SamplingConfig, ScoringContext
from .request_cache import RequestCache

logger = logging.get_logger(__name__)

T = TypeVar("T")

# Statuses a later try can fix: rate limits, overload, server errors, gateways timing out.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ServedBackendError(RuntimeError):
    """A served LM could not do what was asked; the message says why and what to do."""


class ServerUnreachableError(ServedBackendError):
    """Nothing answers at the URL (connection refused, unknown host)."""


class AuthenticationError(ServedBackendError):
    """The server refused the credentials (401/403). Never retried; the message never contains the key."""


class RequestFailedError(ServedBackendError):
    """The server rejected a request (4xx other than 401/403/429), or kept failing after every retry."""


class BadResponseError(ServedBackendError):
    """The server answered something that is not what the protocol promises (malformed JSON, missing fields)."""


class UsageLimitError(ServedBackendError):
    """`max_requests` or `max_total_tokens` would be exceeded: the run stops before paying more."""


class _Aborted(Exception):
    """A request not sent because another one of the same batch already failed for good."""


class RetryableError(Exception):
    """Raised by a request function for a failure that a later try may fix (timeouts, 429, 5xx, bad JSON)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class ServedConfig:
    """How a served backend talks to its server.

    Args:
        max_concurrency (`int`): requests in flight at once.
        timeout (`float`): seconds one request may take before it counts as failed (and is retried).
        max_retries (`int`): tries after the first one for timeouts, 429, 5xx and malformed replies.
        connect_retries (`int`): tries after the first one when the connection is refused. Kept small: a
            server that is not there does not come back in seconds, and a retry storm helps nobody.
        backoff_base (`float`): the first retry waits up to this many seconds; each further one doubles it.
        backoff_max (`float`): the longest wait between two tries (also caps a server's `Retry-After`).
        max_requests (`int`, *optional*): stop with `UsageLimitError` before sending more requests than this
            (cache hits are free and do not count).
        max_total_tokens (`int`, *optional*): stop before the prompt + completion tokens paid for exceed this.
        cache_path (`str`, *optional*): a SQLite file of answered requests (see `RequestCache`): an interrupted
            run started again pays nothing twice and gets the same rows.
        progress (`bool`): show a tqdm bar per batch of requests.

    Example:

    >>> config = ServedConfig(max_concurrency=16, timeout=60, max_total_tokens=2_000_000,
    ...                       cache_path="outputs/requests.sqlite")
    >>> backend = OpenAIBackend("http://127.0.0.1:8000/v1", config=config)
    """

    max_concurrency: int = field(default=8, metadata={"help": "Requests in flight at once."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds before a request counts as failed."})
    max_retries: int = field(default=6, metadata={"help": "Retries on timeouts, 429, 5xx and malformed replies."})
    connect_retries: int = field(default=2, metadata={"help": "Retries when the connection is refused."})
    backoff_base: float = field(default=0.5, metadata={"help": "First retry waits up to this many seconds."})
    backoff_max: float = field(default=30.0, metadata={"help": "Longest wait between two tries."})
    max_requests: int | None = field(default=None, metadata={"help": "Most requests sent (cache hits free)."})
    max_total_tokens: int | None = field(default=None, metadata={"help": "Most prompt + completion tokens."})
    cache_path: str | None = field(default=None, metadata={"help": "SQLite request cache (resumable runs)."})
    progress: bool = field(default=False, metadata={"help": "Show a progress bar per batch of requests."})

    def __post_init__(self):
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}.")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}.")
        for name in ("max_retries", "connect_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise ValueError(
                f"Need 0 <= backoff_base <= backoff_max, got backoff_base={self.backoff_base}, "
                f"backoff_max={self.backoff_max}."
            )
        for name in ("max_requests", "max_total_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None (no limit), got {value}.")


@dataclass
class UsageReport:
    """What a served backend has cost so far: every request sent (probes included), every answer read from the
    cache, and how the soft labels were scored (exactly, or from the top-k alternatives).

    Example:

    >>> synthetic = augmenter.augment()
    >>> print(backend.usage.summary())
    412 requests sent (3 failed tries, 3 retries), 0 answered from the cache, 81234 prompt + 9120 completion ...
    """

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    retries: int = 0
    seconds: float = 0.0
    rows_scored_exactly: int = 0
    rows_scored_top_k: int = 0
    top_k_label_mass_sum: float = 0.0
    rows_missing_labels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests sent ({self.failures} failed tries, {self.retries} retries), "
            f"{self.cache_hits} answered from the cache, {self.prompt_tokens} prompt + {self.completion_tokens} "
            f"completion tokens, {self.seconds:.1f} s."
        ]
        if self.rows_scored_top_k:
            mean_mass = self.top_k_label_mass_sum / self.rows_scored_top_k
            lines.append(
                f"Soft labels of {self.rows_scored_top_k} rows are approximate: the server cannot score prompt "
                f"tokens, so they come from the top-k alternatives at the label position (mean label mass "
                f"covered {mean_mass:.3f}; {self.rows_missing_labels} rows had a label outside the top k, "
                "given its largest possible probability). See the label_mass column."
            )
        return "\n".join(lines)


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine that `factory` makes to completion, also from inside a running event loop
    (Jupyter): there it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    result: dict[str, Any] = {}

    def target():
        try:
            result["value"] = asyncio.run(factory())
        except BaseException as error:  # re-raised in the caller's thread
            result["error"] = error

    thread = threading.Thread(target=target, name="gpt3mix-served")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def cache_key(kind: str, model: str, route: str, payload: dict) -> str:
    """What identifies an answer: the protocol, the served model, the route and the full request
    (prompt, parameters, seed). Not the URL: the same model served elsewhere answers the same."""
    return json.dumps({"kind": kind, "model": model, "route": route, "payload": payload}, sort_keys=True)


class RequestRunner:
    """Sends requests with a bound on those in flight, retries what can be retried, reads and fills the
    request cache, enforces the limits and counts usage. One runner per backend; the `asyncio` objects live
    only inside one `run` call, so a backend can be used from several event loops (and pickled)."""

    def __init__(self, config: ServedConfig, url: str):
        self.config = config
        self.url = url
        self.usage = UsageReport()
        self._cache: RequestCache | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._abort: BaseException | None = None
        self._random = random.Random()

    @property
    def cache(self) -> RequestCache | None:
        if self._cache is None and self.config.cache_path is not None:
            self._cache = RequestCache(self.config.cache_path)
        return self._cache

    def close(self):
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        start = time.perf_counter()

        async def bounded():
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
            self._abort = None
            try:
                return await factory()
            finally:
                self._semaphore = None

        try:
            return run_sync(bounded)
        finally:
            self.usage.seconds += time.perf_counter() - start

    def _check_limits(self):
        limit = self.config.max_requests
        if limit is not None and self.usage.requests >= limit:
            raise UsageLimitError(
                f"max_requests={limit} reached: {self.usage.requests} requests sent. Raise the limit (or set it "
                "to None) and run again; answered requests are reused from the cache where one is set."
            )
        limit = self.config.max_total_tokens
        spent = self.usage.prompt_tokens + self.usage.completion_tokens
        if limit is not None and spent >= limit:
            raise UsageLimitError(
                f"max_total_tokens={limit} reached: {spent} tokens paid for. Raise the limit and run again; "
                "answered requests are reused from the cache where one is set."
            )

    async def request(
        self,
        key: str | None,
        send: Callable[[], Awaitable[dict]],
        count_tokens: Callable[[dict], tuple[int, int]] | None = None,
        describe: str = "request",
        abort_batch: bool = True,
    ) -> dict:
        """The answer to one request: from the cache when `key` is there, else from `send()` (retried as the
        config says), stored under `key` once it succeeded. `send` raises `RetryableError` for failures a later
        try may fix and a `ServedBackendError` for those it cannot. A final failure stops the batch (no new
        request is sent in this `run`) unless `abort_batch` is False (probes whose failure is an answer)."""
        cache = self.cache if key is not None else None
        if cache is not None:
            cached = cache.get(key)
            if cached is not None:
                self.usage.cache_hits += 1
                return cached
        if self._semaphore is None:
            raise RuntimeError("RequestRunner.request must run inside RequestRunner.run.")
        async with self._semaphore:
            if self._abort is not None:
                raise _Aborted()
            try:
                answer = await self._send_with_retries(send, describe)
            except Exception as error:
                if abort_batch:
                    self._abort = error
                raise
        if count_tokens is not None:
            prompt_tokens, completion_tokens = count_tokens(answer)
            self.usage.prompt_tokens += prompt_tokens
            self.usage.completion_tokens += completion_tokens
        if cache is not None:
            cache.put(key, answer)
        return answer

    async def _send_with_retries(self, send: Callable[[], Awaitable[dict]], describe: str) -> dict:
        attempt = 0
        refused = 0
        while True:
            self._check_limits()
            self.usage.requests += 1
            try:
                return await send()
            except ServerUnreachableError:
                self.usage.failures += 1
                if refused >= self.config.connect_retries:
                    raise
                refused += 1
                delay = self._backoff(refused - 1, None)
            except RetryableError as error:
                self.usage.failures += 1
                if attempt >= self.config.max_retries:
                    raise RequestFailedError(
                        f"{describe} to {self.url} still failed after {attempt + 1} tries: {error.reason}. "
                        "The server may be overloaded or failing: raise ServedConfig.max_retries/timeout, "
                        "lower max_concurrency, or check the server's log."
                    ) from None
                delay = self._backoff(attempt, error.retry_after)
                attempt += 1
                logger.info(f"{describe} failed ({error.reason}); retry {attempt} in {delay:.2f} s.")
            except ServedBackendError:
                self.usage.failures += 1
                raise
            self.usage.retries += 1
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform in [0, base * 2^attempt], capped; at least what the server asked for."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.backoff_max))
        return delay


async def gather_in_order(coroutines: list, progress: bool = False, desc: str = "Served requests") -> list:
    """Run every coroutine; results in input order. After a failure no new request is sent, but those in
    flight finish (and reach the cache: they are paid for); then the first failure is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc)
        for task in tasks:
            task.add_done_callback(lambda _: bar.update())
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if bar is not None:
            bar.close()
    failures = [result for result in results if isinstance(result, BaseException)]
    real = [failure for failure in failures if not isinstance(failure, _Aborted)]
    if real or failures:
        raise (real or failures)[0]
    return results


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_message(body: str) -> str:
    """The server's own words from an error body (OpenAI/vLLM `{"error": {"message"}}`, TGI `{"error"}`)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message", payload.get("detail")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:1000]
    return body.strip()[:500]


def classify_status(status: int, body: str, headers, url: str, describe: str) -> Exception:
    """The exception for a non-2xx answer: retryable or final, with the server's message."""
    message = _error_message(body)
    if status in (401, 403):
        return AuthenticationError(
            f"{url} refused the credentials (HTTP {status}): {message[:200]}. Check the API key "
            "(`api_key=` or the environment variable you passed it from) and that it may use this model."
        )
    if status in RETRYABLE_STATUSES:
        return RetryableError(f"HTTP {status}: {message[:200]}", _retry_after(headers))
    return RequestFailedError(f"{describe} to {url} was rejected (HTTP {status}): {message}")


class JSONHTTPClient:
    """A thin `httpx.AsyncClient` wrapper that maps every failure to the errors above."""

    def __init__(self, base_url: str, timeout: float, headers: dict[str, str] | None = None):
        try:
            import httpx
        except ImportError as error:
            raise ImportError(
                "The served backends need httpx: pip install 'gpt3mix_hf[served]' (or pip install httpx)."
            ) from error
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=timeout, headers=headers or {}, limits=httpx.Limits(max_keepalive_connections=64)
        )

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self._client.aclose()

    async def request(self, method: str, route: str, payload: dict | None = None, describe: str = "request") -> Any:
        httpx = self._httpx
        url = f"{self.base_url}{route}"
        try:
            response = await self._client.request(method, url, json=payload)
        except httpx.ConnectError as error:
            raise ServerUnreachableError(
                f"Could not connect to {self.base_url} ({error.__class__.__name__}: {error}). Is the server "
                "running and listening there? Check the URL, host and port."
            ) from None
        except httpx.TimeoutException as error:
            raise RetryableError(f"timed out ({error.__class__.__name__})") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
            # The server closed the connection mid-answer: it crashed or is restarting.
            raise RetryableError(f"connection lost ({error.__class__.__name__})") from None
        if response.status_code >= 400:
            raise classify_status(response.status_code, response.text, response.headers, self.base_url, describe)
        try:
            return response.json()
        except ValueError:
            raise RetryableError(f"malformed JSON in the answer: {response.text[:100]!r}") from None


class ServedBackend(Backend):
    """What the served backends share: a `RequestRunner` (bounded concurrency, retries, limits, the request
    cache), a server probed once, one request per prompt (each with its own seed, so the rows do not depend
    on the concurrency) and one label-scoring request per row that parsed."""

    runner: RequestRunner
    config: ServedConfig
    _server: dict | None

    @property
    def usage(self) -> UsageReport:
        """Requests, cache hits, tokens, failures, retries and seconds so far."""
        return self.runner.usage

    def connect(self) -> dict:
        """Connect (once): check what the server serves and settle the scoring mode. Runs on first use anyway;
        call it to fail early on a wrong URL, model name or server setting."""
        return dict(self._connected())

    def _connected(self) -> dict:
        if self._server is None:
            self._server = self.runner.run(self._probe)
        return self._server

    @abstractmethod
    def _client(self):
        """An async context manager for the requests of one batch."""

    @abstractmethod
    async def _probe(self) -> dict:
        """What the server serves and how labels can be scored on it."""

    @abstractmethod
    async def _generate_one(self, client, prompt: str, seed: int, sampling: SamplingConfig) -> Completion:
        """One sampled line after `prompt`."""

    @abstractmethod
    async def _score_one(self, client, prompt: str, context: str, continuations: list[str]):
        """(label log-probabilities, label mass) for one row."""

    def generate(self, prompts: list[str], seeds: list[int], sampling: SamplingConfig) -> list[Completion]:
        return self.generate_and_score(prompts, seeds, sampling, lambda text: None, None)

    def generate_and_score(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
    ) -> list[Completion]:
        if len(prompts) != len(seeds):
            raise ValueError(f"Got {len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt.")
        self._connected()

        async def row(client, prompt, seed):
            completion = await self._generate_one(client, prompt, seed, sampling)
            if continuations is not None:
                context = scoring_context(completion.text)
                if context is not None:
                    completion.label_logprobs, completion.label_mass = await self._score_one(
                        client, prompt, context, continuations
                    )
            return completion

        async def run():
            async with self._client() as client:
                rows = [row(client, p, s) for p, s in zip(prompts, seeds, strict=True)]
                return await gather_in_order(rows, self.config.progress)

        return self.runner.run(run)

    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        self._connected()

        async def run():
            async with self._client() as client:
                rows = [self._score_one(client, p, c, continuations) for p, c in zip(prompts, contexts, strict=True)]
                return await gather_in_order(rows, self.config.progress)

        return [logprobs for logprobs, _ in self.runner.run(run)]
