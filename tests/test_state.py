"""Atomic JSON state files and finished-when-meta-exists row folders."""

import json
import stat

import pytest
from datasets import Dataset

from gpt3mix_hf import state
from gpt3mix_hf.state import json_round_trip, load_rows, read_json, save_rows, write_json


def test_write_json_is_whole_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = write_json(tmp_path / "sub" / "run.json", {"accuracy": 0.5, "names": ["é"]})
    assert read_json(path) == {"accuracy": 0.5, "names": ["é"]}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
    # A write stopped before it took the old file's place (a full disk, a kill) leaves the old file whole.
    def stopped(*args):
        raise OSError("No space left on device")

    monkeypatch.setattr(state.os, "replace", stopped)
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"accuracy": 0.9, "names": ["a much longer value than before"] * 10})
    monkeypatch.undo()
    assert read_json(path) == {"accuracy": 0.5, "names": ["é"]}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_a_state_file_gets_the_mode_a_plain_write_gives(tmp_path):
    # The temporary file a write starts from is 0o600 (mkstemp): renamed as it was, a provenance or a run record
    # was unreadable to everyone but its writer.
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    written = write_json(tmp_path / "run.json", {})
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    # A file written again keeps its own mode, as a plain write leaves it.
    written.chmod(0o600)  # not what a plain write gives under any usual umask
    assert stat.S_IMODE(write_json(written, {"a": 1}).stat().st_mode) == 0o600


def test_cut_off_file_names_itself_and_the_fix(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"a": [1, 2, 3]})[:-4])
    with pytest.raises(ValueError, match=r"manifest.json is not valid JSON.*Delete it"):
        read_json(path)


def test_rows_folder_is_unfinished_until_meta_is_written(tmp_path):
    rows = Dataset.from_dict({"text": ["a", "b"]})
    assert load_rows(tmp_path / "cache") is None
    save_rows(tmp_path / "cache", rows, {"n": 2})
    loaded, meta = load_rows(tmp_path / "cache")
    assert loaded["text"] == ["a", "b"] and meta == {"n": 2}
    (tmp_path / "cache" / "meta.json").unlink()
    assert load_rows(tmp_path / "cache") is None


def test_a_folder_of_zero_rows_loads_back(tmp_path):
    empty = Dataset.from_dict({"text": []})
    save_rows(tmp_path / "cache", empty, {"n": 0})
    loaded, meta = load_rows(tmp_path / "cache")
    assert len(loaded) == 0 and loaded.column_names == ["text"] and meta == {"n": 0}


def test_json_round_trip_is_what_read_json_gives_back(tmp_path):
    key = {"levels": (0.1, 0.5), "path": tmp_path, "nested": [{"k": (1,)}]}
    write_json(tmp_path / "key.json", key)
    assert json_round_trip(key) == read_json(tmp_path / "key.json")
    assert json_round_trip(key) != key
