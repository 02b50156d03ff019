"""A persistent cache of a served LM's answers, so an interrupted run resumes without paying twice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from transformers.utils import logging

from ...state import make_folder

logger = logging.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key_hash TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class RequestCache:
    """Answers of a served LM on disk (SQLite), keyed by the full request: protocol, served model, route,
    prompt, parameters and seed. Not by the URL, so a server restarted on another port answers from here.

    Every answer is committed as soon as it arrives: a run stopped by Ctrl-C, a crash or a dead server and
    started again with the same cache reads back everything already paid for, and since the augmenter seeds
    every request, it finishes with the same rows. Only successful, validated answers are stored. Several
    processes (`Dataset.map(num_proc=...)`) may share one file.

    Args:
        path (`str` or `Path`): the SQLite file; its folder is created.

    Example:

    >>> cache = RequestCache("outputs/requests.sqlite")
    >>> cache.put('{"prompt": "Hi"}', {"choices": [{"text": " there"}]})
    >>> cache.get('{"prompt": "Hi"}')
    {'choices': [{'text': ' there'}]}
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        make_folder(self.path.parent, "the folder of the request cache")
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder: cache_path must name a SQLite file (e.g. requests.sqlite).")
        self._lock = threading.Lock()
        # Used from the backend's event loop, which may run in a helper thread: guarded by the lock instead.
        self._connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            with self._use():
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute(_SCHEMA)
                self._connection.commit()
        except ValueError:
            self._connection.close()
            raise

    @contextlib.contextmanager
    def _use(self):
        """The connection, under the lock; a damaged file (found when it is opened, or at a later lookup: pages
        overwritten in the middle) raises a `ValueError` that says what to do. A locked one is not damaged."""
        with self._lock:
            try:
                yield self._connection
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as error:
                raise ValueError(
                    f"{self.path} is not a request cache ({error}): it is damaged or another kind of file. Pass "
                    "another cache_path, or delete this one (its answers are then asked for again)."
                ) from None

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict | None:
        with self._use() as connection:
            row = connection.execute(
                "SELECT request, answer FROM answers WHERE key_hash = ?", (self._hash(key),)
            ).fetchone()
        if row is None:
            return None
        if row[0] != key:  # a sha256 collision: never seen, but never answer the wrong request
            logger.warning("Request cache key collision: ignoring the stored answer.")
            return None
        return json.loads(row[1])

    def put(self, key: str, answer: dict):
        with self._use() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO answers (key_hash, request, answer, created) VALUES (?, ?, ?, ?)",
                (self._hash(key), key, json.dumps(answer), time.time()),
            )
            connection.commit()

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        with self._use() as connection:
            return connection.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def clear(self):
        with self._use() as connection:
            connection.execute("DELETE FROM answers")
            connection.commit()

    def close(self):
        with self._lock:
            self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):
        return {"path": str(self.path)}

    def __setstate__(self, state):
        self.__init__(state["path"])
