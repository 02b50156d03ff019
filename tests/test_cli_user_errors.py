"""The command line answers each user error of issue 19's classes in one line, with exit status 2, before any
model is loaded or row generated."""

from __future__ import annotations

import json

import pytest

from gpt3mix_hf.cli.main import main

API_KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    rows = [("a gripping film .", "positive"), ("dull and long .", "negative"), ("the best .", "positive"),
            ("an embarrassment .", "negative")]
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    return folder


def run(capsys, argv) -> str:
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "examples/s" not in line and "%|" not in line]
    assert status == 2, err
    assert len(lines) == 1, err
    return lines[0]


def test_wrong_kinds_of_flag_values(capsys, data, tmp_path):
    out = str(tmp_path / "out")
    for flags, message in (
        (["--max_new_tokens", "2.5"], "max_new_tokens"),
        (["--ratio", "nan"], "not a finite number"),
        (["--backend", "vllm"], "invalid choice"),
        (["--calibrate", "maybe"], "calibrate"),
    ):
        line = run(capsys, ["augment", "--dataset", str(data), "--output_dir", out, *flags])
        assert message in line, line


def test_a_key_in_the_base_url_is_refused_without_echoing_it(capsys, data, tmp_path):
    line = run(capsys, ["augment", "--dataset", str(data), "--output_dir", str(tmp_path / "out"), "--backend",
                        "openai", "--base_url", f"http://127.0.0.1:9/v1?api_key={API_KEY}"])
    assert "query string" in line and API_KEY not in line


def test_an_api_key_env_that_is_not_set_is_named(capsys, data, tmp_path, monkeypatch):
    monkeypatch.delenv("MY_SERVER_KEY", raising=False)
    line = run(capsys, ["augment", "--dataset", str(data), "--output_dir", str(tmp_path / "out"), "--backend",
                        "openai", "--base_url", "http://127.0.0.1:9/v1", "--api_key_env", "MY_SERVER_KEY"])
    assert "MY_SERVER_KEY is not set" in line


def test_mixed_label_kinds_and_empty_texts_get_data_advice(capsys, data, tmp_path):
    path = data / "train.jsonl"
    path.write_text(path.read_text() + json.dumps({"text": "x", "label": 1}) + "\n")
    line = run(capsys, ["augment", "--dataset", str(data), "--output_dir", str(tmp_path / "out")])
    assert "mixes kinds of values" in line
    rows = [{"text": "  ", "label": "negative"}, {"text": "b", "label": "positive"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    line = run(capsys, ["augment", "--dataset", str(data), "--output_dir", str(tmp_path / "out")])
    assert "without a visible text" in line and "remove those rows" in line and "filter" not in line


def test_a_config_of_the_wrong_kinds(capsys, data, tmp_path):
    path = tmp_path / "gpt3mix_config.json"
    path.write_text(json.dumps({"format": "gpt3mix_config", "format_version": "2", "augmenter": {}}))
    line = run(capsys, ["augment", "--config", str(path), "--output_dir", str(tmp_path / "out")])
    assert str(path) in line and "format_version '2'" in line


def test_push_private_no(capsys, tmp_path):
    line = run(capsys, ["push-dataset", "--repo_id", "me/x", "--dataset_dir", str(tmp_path), "--private", "maybe"])
    assert "private" in line


def test_sample_flags_are_checked_before_the_data_is_read(capsys, tmp_path):
    line = run(capsys, ["augment", "--dataset", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out"),
                        "--sample_fraction", "2"])
    assert "--sample_fraction must be in (0, 1]" in line
