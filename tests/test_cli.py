import json

import pytest
from datasets import load_from_disk

from gpt3mix_hf.cli import main


def test_usage_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("augment", "experiment", "push-dataset", "push-model"):
        assert command in out


def test_unknown_command(capsys):
    assert main(["agument"]) == 2
    assert "unknown command 'agument'" in capsys.readouterr().err


def test_augment_help_lists_flags(capsys):
    with pytest.raises(SystemExit):
        main(["augment", "--help"])
    out = capsys.readouterr().out
    assert "--sample_fraction" in out and "--label_mode" in out and "--config" in out


def test_augment_writes_data_summary_and_provenance_and_regenerates(tiny_lm_dir, data_dir, tmp_path, capsys):
    flags = ["--dataset", "trec6", "--data_dir", str(data_dir), "--sample_per_class", "1", "--model",
             str(tiny_lm_dir), "--max_new_tokens", "4", "--max_attempts", "1", "--ratio", "2", "--no_progress"]
    assert main(["augment", *flags, "--output_dir", str(tmp_path / "first")]) == 0
    out = capsys.readouterr().out
    assert "rows written: 0 of 12 (12 rows failed every attempt)" in out
    assert "tokens generated:" in out and "samples per second:" in out
    real = load_from_disk(tmp_path / "first" / "real")
    assert len(real) == 6 and real.features["label"].names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    failures = (tmp_path / "first" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 12 and json.loads(failures[0])["failed_attempts"]
    config = json.loads((tmp_path / "first" / "gpt3mix_config.json").read_text())
    assert config["augmenter"]["spec"]["text_type"] == "question"
    assert config["data"]["sample_per_class"] == 1

    again = ["augment", "--config", str(tmp_path / "first" / "gpt3mix_config.json"), "--data_dir", str(data_dir),
             "--output_dir", str(tmp_path / "again"), "--no_progress"]
    assert main(again) == 0
    assert (tmp_path / "again" / "failures.jsonl").read_text().splitlines() == failures
