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
    elif isinstance(value, str) and URL_PASSWORD.search(value):
        raise ValueError(
            f"{where} is a URL with a password in it: it must not be written to a published file. Give the "
            "server's URL without credentials and the key through the environment."
        )


def known_secrets(token: str | None = None) -> dict[str, str]:
    """The secrets this process holds, by where they came from: the upload token, the one `hf auth login` saved,
    and the environment variables named like a token or key."""
    secrets = {"your access token": token, "the saved Hugging Face token": get_token()}
    secrets.update({f"${name}": value for name, value in os.environ.items() if _SECRET_ENV.search(name.upper())})
    return {where: value for where, value in secrets.items() if value and len(value) >= _MIN_SECRET_LENGTH}


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
    return None


def check_folder_has_no_secrets(folder: str | Path, token: str | None = None, published: tuple[str, ...] = ()) -> None:
    """Refuse a folder whose text files hold a secret of this process (`known_secrets`), or whose `published`
    files (the card, the provenance file) hold anything shaped like a token or a URL password. The dry run and
    the upload both call it, so `local_dir=` refuses exactly what the upload would."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in _TEXT_SUFFIXES:
            continue
        found = find_secret(path.read_text(encoding="utf-8", errors="ignore"), token, path.name in published)
        if found:
            raise ValueError(
                f"{path.relative_to(folder)} contains {found}: nothing was written or uploaded. Remove it from the "
                "model config, tokenizer files, card arguments or dataset rows."
            )
