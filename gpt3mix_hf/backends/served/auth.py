"""The API key of a served backend, and keeping it in: out of messages, logs, the request cache and pickles."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlsplit

from ...credentials import TOKEN_SHAPE
from .errors import ServedBackendError

REDACTED = "***"
# A query parameter that carries a credential (?api_key=..., ?access_token=..., ?sig=...).
_SECRET_PARAMETER = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


class Credentials:
    """An API key given as a value (`api_key=`, kept in this process only) or as the name of an environment
    variable (`api_key_env=`, read where the key is used). A pickled backend (`Dataset.map(num_proc=...)`
    workers, the `datasets` fingerprint) carries the variable's name, never the key: a worker reads the key from
    its own environment.

    Args:
        api_key (`str`, *optional*): the key itself.
        api_key_env (`str`, *optional*): the name of the environment variable that holds the key.
    """

    def __init__(self, api_key: str | None = None, api_key_env: str | None = None):
        if api_key is not None and api_key_env is not None:
            raise ValueError(
                "Pass the API key either as api_key= or as api_key_env=<name of the environment variable>, not "
                "both. api_key_env is the one that works with Dataset.map(num_proc=...)."
            )
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string (or None for a server without authentication).")
        if api_key_env is not None:
            if not isinstance(api_key_env, str) or not api_key_env.strip():
                raise ValueError(f"api_key_env must name an environment variable, got {api_key_env!r}.")
            if not os.environ.get(api_key_env):
                raise ValueError(
                    f"api_key_env={api_key_env!r}, but no such environment variable is set (or it is empty) in "
                    f"this process. Set it (export {api_key_env}=...) before building the backend."
                )
        self._api_key = api_key
        self.api_key_env = api_key_env
        # Set in a copy unpickled from a backend that was given api_key=: the key stayed behind.
        self.left_behind = False

    @property
    def holds_key(self) -> bool:
        """Whether the key itself was given (`api_key=`), which stays in this process."""
        return self._api_key is not None

    @property
    def key(self) -> str | None:
        """The key to send, or None for a server without authentication."""
        if self._api_key is not None:
            return self._api_key
        if self.api_key_env is not None:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ServedBackendError(
                    f"The environment variable {self.api_key_env!r} (api_key_env) is not set in this process: set "
                    "it in every process that uses the backend (Dataset.map workers inherit the parent's)."
                )
            return value
        if self.left_behind:
            raise ServedBackendError(
                "This backend was built with api_key=<the key>, which is never pickled (Dataset.map(num_proc=...) "
                "workers, saved augmenters): put the key in an environment variable and build the backend with "
                "api_key_env='<its name>' instead, so each process reads it from its own environment."
            )
        return None

    def headers(self) -> dict[str, str]:
        key = self.key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def secrets(self) -> list[str]:
        """Every secret this process knows for the backend, longest first (never raises)."""
        found = []
        if self._api_key:
            found.append(self._api_key)
        if self.api_key_env is not None and os.environ.get(self.api_key_env):
            found.append(os.environ[self.api_key_env])
        return sorted(set(found), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, REDACTED)
            if len(secret) >= 16:
                # A server's message cut short (errors keep its first characters) can end inside the key: its
                # first 8 characters, and whatever follows them, go too.
                text = re.sub(re.escape(secret[:8]) + r"\S*", REDACTED, text)
        return text

    def redact_error(self, error: BaseException) -> BaseException:
        """`error` with every secret removed from its message and from those of the errors chained to it (in
        place: types and attributes stay)."""
        secrets = self.secrets()
        seen: set[int] = set()
        current: BaseException | None = error
        while secrets and current is not None and id(current) not in seen:
            seen.add(id(current))
            current.args = tuple(self.redact(arg) if isinstance(arg, str) else arg for arg in current.args)
            if isinstance(getattr(current, "reason", None), str):
                current.reason = self.redact(current.reason)
            current = current.__cause__ or current.__context__
        return error

    def __getstate__(self):
        return {"api_key_env": self.api_key_env, "left_behind": self.left_behind or self._api_key is not None}

    def __setstate__(self, state):
        self._api_key = None
        self.api_key_env = state["api_key_env"]
        self.left_behind = state["left_behind"]

    def __repr__(self):
        given = "api_key=***" if self._api_key else f"api_key_env={self.api_key_env!r}"
        return f"Credentials({given})"


def check_base_url(base_url: str) -> str:
    """`base_url` without a trailing slash; refused when it carries credentials (they would travel in every
    message, log line and pickle that names the server)."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"base_url must be the server's URL, e.g. 'http://127.0.0.1:8000/v1', got {base_url!r}.")
    parts = urlsplit(base_url.strip())
    # Credentials are looked for first: the messages below show the URL.
    if parts.username or parts.password:
        raise ValueError(
            "base_url carries credentials (user:token@host): pass the token as api_key_env=<name of the "
            "environment variable holding it> and give the URL without them."
        )
    for name, value in parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment):
        if _SECRET_PARAMETER.search(name) or TOKEN_SHAPE.search(value) or TOKEN_SHAPE.search(name):
            raise ValueError(
                f"base_url carries a credential in its query string (the parameter {name!r}): pass the key as "
                "api_key_env=<name of the environment variable holding it> and give the URL without it."
            )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = TOKEN_SHAPE.sub("***", base_url)  # a key pasted in the wrong place is not repeated
        raise ValueError(f"base_url must start with http:// or https:// and name a host, got {shown!r}.")
    return base_url.strip().rstrip("/")
