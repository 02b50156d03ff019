"""`JSONHTTPClient`: the one HTTP transport of the served backends (httpx), every failure mapped to their errors."""

from __future__ import annotations

import functools
import ssl
from typing import Any

from .errors import RetryableError, ServerUnreachableError, classify_status


class JSONHTTPClient:
    """A thin `httpx.AsyncClient` wrapper: JSON in, JSON out, and every transport failure mapped to the served
    backends' errors (refused connection, timeout, dropped connection, HTTP status, malformed JSON).

    Args:
        base_url (`str`): the server's root; routes are appended to it.
        timeout (`float`): seconds per request.
        headers (`dict`, *optional*): sent with every request (the `Authorization` header).
    """

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
            timeout=timeout,
            headers=headers or {},
            limits=httpx.Limits(max_keepalive_connections=64),
            verify=_ssl_context(),
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


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process: building it loads the CA bundle (0.1-0.2 s),
    and a client is made per batch of requests (and per `tokenize` call)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
