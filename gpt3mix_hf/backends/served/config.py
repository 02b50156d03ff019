"""`ServedConfig`: how a served backend talks to its server (concurrency, retries, limits, request cache)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...validation import check_fields


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

    max_concurrency: int = field(default=8, metadata={"help": "openai/tgi: requests in flight at once."})
    timeout: float = field(
        default=120.0, metadata={"help": "openai/tgi: seconds before a request counts as failed (and is retried)."}
    )
    max_retries: int = field(
        default=6, metadata={"help": "openai/tgi: retries on timeouts, 429, 5xx and malformed replies."}
    )
    connect_retries: int = field(
        default=2, metadata={"help": "openai/tgi: retries when the connection is refused."}
    )
    backoff_base: float = field(
        default=0.5, metadata={"help": "openai/tgi: the first retry waits up to this many seconds."}
    )
    backoff_max: float = field(default=30.0, metadata={"help": "openai/tgi: the longest wait between two tries."})
    max_requests: int | None = field(
        default=None, metadata={"help": "openai/tgi: stop before sending more requests (cache hits are free)."}
    )
    max_total_tokens: int | None = field(
        default=None, metadata={"help": "openai/tgi: stop before the prompt + completion tokens paid for pass this."}
    )
    cache_path: str | None = field(
        default=None,
        metadata={"help": "openai/tgi: a SQLite file of answered requests, so that a rerun pays nothing twice."},
    )
    progress: bool = field(default=False, metadata={"help": "openai/tgi: a progress bar per batch of requests."})

    def __post_init__(self):
        check_fields(self)
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}.")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {self.timeout}.")
        for name in ("max_retries", "connect_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not (math.isfinite(self.backoff_max) and 0 <= self.backoff_base <= self.backoff_max):
            raise ValueError(
                f"Need 0 <= backoff_base <= backoff_max (finite), got backoff_base={self.backoff_base}, "
                f"backoff_max={self.backoff_max}."
            )
        for name in ("max_requests", "max_total_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None (no limit), got {value}.")
