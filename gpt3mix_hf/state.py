"""State on disk that survives a run killed at any moment.

Every JSON state file (shard manifests, run records, provenance, cache metadata) is written to a temporary
name and renamed, so it is whole or absent; one found cut off anyway (a copy, a full disk) is reported with
what to do rather than as a `JSONDecodeError`. A folder of saved rows is finished when its `meta.json`
exists: that file is written last.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

from datasets import Dataset, load_from_disk

META_NAME = "meta.json"


def check_folder_path(folder: str | Path, what: str = "the folder") -> Path:
    """`folder` as a `Path`, refused with a `ValueError` that names it when it, or a folder above it, is a file
    (where `mkdir` would fail with a bare `FileExistsError` or `NotADirectoryError`)."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                where = "" if part == folder else f" (it is above {folder})"
                raise ValueError(
                    f"{part} is a file, not a folder{where}: {what} must be a folder. Pass another path, or move the "
                    "file away."
                )
            break
    return folder


def make_folder(folder: str | Path, what: str = "the folder") -> Path:
    """`mkdir -p folder`, with `check_folder_path`'s message when a file is in the way."""
    folder = check_folder_path(folder, what)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def load_saved_rows(folder: str | Path, fix: str) -> Dataset:
    """`load_from_disk(folder)`, or an error that names the folder and `fix` when it is missing or damaged (a file
    of it deleted or cut off)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No saved rows at {folder}: {fix}.")
    try:
        return load_from_disk(str(folder))
    except Exception as error:  # noqa: BLE001 - datasets fails in many ways on a half-deleted folder
        reason = " ".join(str(error).split())[:160]
        raise ValueError(f"{folder} is not a whole saved dataset ({type(error).__name__}: {reason}): {fix}.") \
            from None


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (a temporary file in the same folder, then a rename): a run stopped
    half-way leaves the old file or the new one, never half of one."""
    path = Path(path)
    make_folder(path.parent, f"the folder of {path.name}")
    staging = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # With the mode `open()` gives: 0o666 less the umask for a new file (`mkstemp`'s 0o600 left a provenance or a
    # run record unreadable to the rest of a team), the mode of the file it replaces otherwise.
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(staging, stat.S_IMODE(path.stat().st_mode))
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, record: Any) -> Path:
    """Write `record` as JSON to `path` atomically (`write_text`)."""
    return write_text(path, json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")


def json_round_trip(value: Any) -> Any:
    """`value` as `read_json` reads it back after `write_json` (tuples become lists, other objects strings), so
    that a key made in memory compares equal to one loaded from a state file.

    Example:

    >>> json_round_trip({"levels": (0.1, 0.5)})
    {'levels': [0.1, 0.5]}
    """
    return json.loads(json.dumps(value, default=str))


def read_json(path: str | Path) -> Any:
    """Read a JSON state file; a cut-off or corrupted one raises a `ValueError` that names it and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {error.start} cannot be decoded): the file is damaged or is not the "
            "JSON file it should be. Delete it to redo the step that wrote it, or restore it from a copy."
        ) from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder where a JSON file was expected: move it away.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}): the file is cut off or was edited. "
            "Delete it to redo the step that wrote it."
        ) from None


def save_rows(folder: str | Path, dataset: Dataset, meta: dict) -> Path:
    """Save `dataset` under `folder/data`, then `folder/meta.json` last: a folder without it is unfinished."""
    folder = make_folder(folder, "a folder of saved rows")
    (folder / META_NAME).unlink(missing_ok=True)
    shutil.rmtree(folder / "data", ignore_errors=True)
    # datasets (5.2) writes no shard for 0 rows and then cannot load the folder back: one shard always.
    dataset.save_to_disk(str(folder / "data"), num_shards=1 if len(dataset) == 0 else None)
    write_json(folder / META_NAME, meta)
    return folder


def load_rows(folder: str | Path) -> tuple[Dataset, dict] | None:
    """The rows and metadata `save_rows` wrote, or `None` when the folder is absent or unfinished."""
    folder = Path(folder)
    if not (folder / META_NAME).exists():
        return None
    rows = load_saved_rows(folder / "data", f"delete the folder {folder} to make its rows again")
    return rows, read_json(folder / META_NAME)
