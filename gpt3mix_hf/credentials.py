"""What counts as a secret, and the checks that keep one out of every published file (a provenance file, a card,
a repository folder). The checks refuse rather than rewrite: a file that would carry a secret is not written, and
the error names where the secret was found, never its value."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import get_token

# A key that names a secret, a Hugging Face or OpenAI token anywhere in a string, a URL with a password.
SECRET_KEY = re.compile(r"(^|[_-])(token|api[_-]?key|secret|password|authorization)$", re.IGNORECASE)
TOKEN_SHAPE = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})")
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@", re.IGNORECASE)
# A URL whose query string or fragment carries a credential (?api_key=..., &access_token=..., #token=...).
URL_QUERY_SECRET = re.compile(
    r"\b[a-z][a-z0-9+.-]*://\S*[?&#][^=&#\s]*(key|token|secret|passw|auth|sig|credential)[^=&#\s]*=[^&#\s]+",
    re.IGNORECASE,
)
# Environment variables whose values are secrets (HF_TOKEN, OPENAI_API_KEY, ...); values this short are not checked.
_SECRET_ENV = re.compile(r"(TOKEN|API_KEY|SECRET|PASSWORD)$")
_MIN_SECRET_LENGTH = 8
_TEXT_SUFFIXES = (".md", ".json", ".txt", ".yaml", ".yml", ".jinja", "")


def check_no_secrets(value: Any, where: str = "config") -> None:
    """Raise if `value` holds something that looks like a credential (a key named like `token` with a value, a
    string holding an `hf_...` / `sk-...` token, a URL with a password): provenance is published, credentials
    must not be."""
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_KEY.search(str(key)) and item not in (None, "", False):
                raise ValueError(
                    f"{where}.{key} looks like a credential: it must not be written to a published file. "
                    "Backends must keep secrets out of `identity` (read them from the environment instead)."
                )
            check_no_secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_no_secrets(item, f"{where}[{i}]")
    elif isinstance(value, str) and TOKEN_SHAPE.search(value):
        raise ValueError(f"{where} looks like an access token: it must not be written to a published file.")
    elif isinstance(value, str) and (URL_PASSWORD.search(value) or URL_QUERY_SECRET.search(value)):
        raise ValueError(
            f"{where} is a URL with credentials in it (a password, or a key in its query string): it must not be "
            "written to a published file. Give the server's URL without credentials and the key through the "
            "environment."
        )


def known_secrets(token: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The secrets this process holds, by where they came from: the upload token, the one `hf auth login` saved,
    the environment variables named like a token or key, and `extra` (e.g. a served backend's API key)."""
    secrets = {"your access token": token, "the saved Hugging Face token": get_token()}
    secrets.update({f"${name}": value for name, value in os.environ.items() if _SECRET_ENV.search(name.upper())})
    secrets.update(extra or {})
    return {where: value for where, value in secrets.items() if value and len(value) >= _MIN_SECRET_LENGTH}


def backend_secrets(backend: Any) -> dict[str, str]:
    """`known_secrets` plus the API key of a served `backend` (given as `api_key=` or through `api_key_env=`)."""
    credentials = getattr(backend, "credentials", None)
    keys = credentials.secrets() if credentials is not None else []
    return known_secrets(extra={f"the backend's API key ({i + 1})" if i else "the backend's API key": key
                                for i, key in enumerate(keys)})


def secret_in(text: str, secrets: dict[str, str]) -> str | None:
    """Where the first of `secrets` (`known_secrets`) found in `text` came from, or None. Never the secret."""
    for where, value in secrets.items():
        if value in text:
            return where
    return None


def redact_secrets(text: str, secrets: dict[str, str]) -> str:
    """`text` with every one of `secrets` replaced by `***`, longest first."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def find_secret(text: str, token: str | None = None, shapes: bool = True) -> str | None:
    """Where the first secret found in `text` came from (`known_secrets`), or, with `shapes`, a description of
    a token-shaped string or URL password in it; None when `text` holds none. Never the secret itself."""
    for where, value in known_secrets(token).items():
        if value in text:
            return where
    if shapes and TOKEN_SHAPE.search(text):
        return "a string shaped like an access token"
    if shapes and URL_PASSWORD.search(text):
        return "a URL with a password"
    if shapes and URL_QUERY_SECRET.search(text):
        return "a URL with a credential in its query string"
    return None


def check_folder_has_no_secrets(folder: str | Path, token: str | None = None, published: tuple[str, ...] = ()) -> None:
    """Refuse a folder any of whose files holds a secret of this process (`known_secrets`), or whose `published`
    files (the card, the provenance file) hold anything shaped like a token or a URL password. Every file is
    read: text and binary files as bytes, parquet shards row by row (they are compressed), so that a refusal names
    the row and the column. The dry run and the upload both call it, so `local_dir=` refuses exactly what the
    upload would."""
    folder = Path(folder)
    secrets = known_secrets(token)
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(folder)
        if path.suffix == ".parquet":
            _check_parquet(path, name, secrets)
            continue
        data = path.read_bytes()
        found = next((where for where, value in secrets.items() if value.encode() in data), None)
        if found is None and path.name in published and path.suffix in _TEXT_SUFFIXES:
            found = find_secret(data.decode("utf-8", errors="ignore"), token, shapes=True)
        if found:
            raise ValueError(
                f"{name} contains {found}: nothing was written or uploaded. Remove it from the model config, "
                "tokenizer files, card arguments or dataset rows."
            )


def _check_parquet(path: Path, name: Path, secrets: dict[str, str]) -> None:
    """Refuse a parquet shard with a secret in any cell, naming the row (in the shard) and the column."""
    import pyarrow.parquet as pq

    if secrets:
        _check_batches(pq.ParquetFile(path).iter_batches(batch_size=1024), str(name), secrets)


def check_dataset_has_no_secrets(dataset: Any, where: str, token: str | None = None) -> None:
    """Refuse a `datasets.Dataset` with a secret of this process (`known_secrets`) in any cell, naming the row and
    the column: a user's row is published as it is, never rewritten."""
    secrets = known_secrets(token)
    if secrets and len(dataset):
        table = dataset.with_format("arrow")[:]
        _check_batches(table.to_batches(max_chunksize=1024), where, secrets)


def _check_batches(batches, where: str, secrets: dict[str, str]) -> None:
    offset = 0
    for batch in batches:
        for column, values in zip(batch.schema.names, batch.columns, strict=True):
            for row, value in enumerate(values.to_pylist()):
                if value is None:
                    continue
                found = secret_in(value if isinstance(value, str) else repr(value), secrets)
                if found:
                    raise ValueError(
                        f"{where}: row {offset + row}, column {column!r} holds {found}: nothing was written or "
                        "uploaded. Remove the secret from that row, or drop the row (dataset.filter(...)), before "
                        "publishing."
                    )
        offset += batch.num_rows
