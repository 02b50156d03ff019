"""The errors of the served backends, and how an HTTP status maps to them (retry, or stop and say why)."""

from __future__ import annotations

import json

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


class RequestRefusedError(RequestFailedError):
    """The server answered the request with a refusal (a 4xx other than 401/403/429): it cannot or will not
    answer it, which is what a probe of an optional feature (echo scoring, `/tokenize`, `/info`) learns from."""


class RetriesExhaustedError(RequestFailedError):
    """A request kept failing with retryable errors (timeouts, 429, 5xx) after every retry: the server is not
    refusing it, it is failing."""


class BadResponseError(ServedBackendError):
    """The server answered something that is not what the protocol promises (malformed JSON, missing fields).
    Such an answer is never stored in the request cache."""


class UsageLimitError(ServedBackendError):
    """`max_requests` or `max_total_tokens` would be exceeded: the run stops before paying more."""


class RetryableError(Exception):
    """Raised by a request function for a failure that a later try may fix (timeouts, 429, 5xx, bad JSON)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after(headers) -> float | None:
    """The seconds a server's `Retry-After` header asks for, if it sent a number."""
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_message(body: str) -> str:
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
    """The exception for a non-2xx answer: retryable or final, with the server's message. The caller redacts
    secrets from it (a 401 body may repeat the key it was sent)."""
    message = error_message(body)
    if status in (401, 403):
        return AuthenticationError(
            f"{url} refused the credentials (HTTP {status}): {message[:200]}. Check the API key "
            "(`api_key=` or the environment variable named by `api_key_env=`) and that it may use this model."
        )
    if status in RETRYABLE_STATUSES:
        return RetryableError(f"HTTP {status}: {message[:200]}", retry_after(headers))
    return RequestRefusedError(f"{describe} to {url} was rejected (HTTP {status}): {message}")
