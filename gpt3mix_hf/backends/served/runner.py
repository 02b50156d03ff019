"""Sending the requests of a served backend: a bound on those in flight, retries with exponential backoff and
jitter, the usage limits, and the request cache, which stores an answer only once it has been validated."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from transformers.utils import logging

from ...credentials import backend_secrets, secret_in
from .auth import Credentials
from .config import ServedConfig
from .errors import (
    AuthenticationError,
    RetriesExhaustedError,
    RetryableError,
    ServedBackendError,
    ServerUnreachableError,
    UsageLimitError,
)
from .request_cache import RequestCache
from .usage import UsageReport

logger = logging.get_logger(__name__)

T = TypeVar("T")


class _Aborted(Exception):
    """A request not sent because another one of the same batch already failed for good."""


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
    only inside one `run` call, so a backend can be used from several event loops (and pickled).

    Every answer goes through the caller's `parse` before it is used or stored: an answer that `parse` refuses
    (`BadResponseError`) is never cached, and one found in the cache that `parse` refuses (written by an older
    version) is asked for again. Every error that leaves `run` has the API key redacted from its message."""

    def __init__(self, config: ServedConfig, url: str, credentials: Credentials | None = None):
        self.config = config
        self.url = url
        self.credentials = credentials or Credentials()
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
        except Exception as error:
            # The one door every failure leaves by: whatever a server echoed back, the key stays in.
            self.credentials.redact_error(error)
            if isinstance(error, AuthenticationError) and not self.credentials.secrets() and error.args:
                error.args = (f"{error.args[0]} No key was sent: the backend was built without api_key= or "
                              "api_key_env= (or its variable is empty).", *error.args[1:])
            raise
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
        send: Callable[[], Awaitable[Any]],
        parse: Callable[[Any], T],
        count_tokens: Callable[[Any], tuple[int, int]] | None = None,
        describe: str = "request",
        abort_batch: bool = True,
    ) -> T:
        """`parse(answer)` for the answer to one request: from the cache when `key` is there, else from `send()`
        (retried as the config says), stored under `key` only once `parse` accepted it. `send` raises
        `RetryableError` for failures a later try may fix and a `ServedBackendError` for those it cannot;
        `parse` raises a `ServedBackendError` (usually `BadResponseError`) for an answer it cannot use. A final
        failure stops the batch (no new request is sent in this `run`) unless `abort_batch` is False (probes
        whose failure is an answer)."""
        cache = self.cache if key is not None else None
        if cache is not None:
            cached = cache.get(key)
            if cached is not None:
                try:
                    result = parse(cached)
                except ServedBackendError as error:
                    logger.warning(
                        f"The request cache held an unusable answer for {describe} ({self._reason(error)}); "
                        "asking the server again."
                    )
                else:
                    self.usage.cache_hits += 1
                    return result
        if self._semaphore is None:
            raise RuntimeError("RequestRunner.request must run inside RequestRunner.run.")
        async with self._semaphore:
            if self._abort is not None:
                raise _Aborted()
            try:
                answer = await self._send_with_retries(send, describe)
                # Paid for whether or not it is usable.
                if count_tokens is not None:
                    prompt_tokens, completion_tokens = count_tokens(answer)
                    self.usage.prompt_tokens += prompt_tokens
                    self.usage.completion_tokens += completion_tokens
                result = parse(answer)
            except Exception as error:
                if abort_batch:
                    self._abort = error
                raise
        if cache is not None:
            self._store(cache, key, answer, describe)
        return result

    def _store(self, cache: RequestCache, key: str, answer: Any, describe: str):
        text = key + json.dumps(answer, ensure_ascii=False)
        secrets = backend_secrets(self)  # its `credentials` and the Hub token
        found = secret_in(text, secrets)
        if found is not None:
            logger.warning(f"The request or answer of {describe} holds {found}: not stored in the request cache (the "
                           "augmenter counts a generation holding it as a failed attempt).")
            return
        cache.put(key, answer)

    def _reason(self, error: BaseException) -> str:
        return self.credentials.redact(str(error))[:300]

    async def _send_with_retries(self, send: Callable[[], Awaitable[Any]], describe: str) -> Any:
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
                reason = self.credentials.redact(error.reason)
                if attempt >= self.config.max_retries:
                    raise RetriesExhaustedError(
                        f"{describe} to {self.url} still failed after {attempt + 1} tries: {reason}. "
                        "The server may be overloaded or failing: raise ServedConfig.max_retries/timeout, "
                        "lower max_concurrency, or check the server's log."
                    ) from None
                delay = self._backoff(attempt, error.retry_after)
                attempt += 1
                logger.info(f"{describe} failed ({reason}); retry {attempt} in {delay:.2f} s.")
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
