"""Files named in every error: empty, blank, undecodable or half-deleted inputs and state are one line that names
the path and what to do (and, on the command line, exit status 2)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ScriptedBackend, make_dataset

from gpt3mix_hf import GPT3MixAugmenter, GPT3MixConfig, TaskSpec
from gpt3mix_hf.backends.served.request_cache import RequestCache
from gpt3mix_hf.cli.main import main
from gpt3mix_hf.data import DataSourceArguments, load_benchmark, load_data_file, load_split
from gpt3mix_hf.state import load_rows, read_json, save_rows, write_json

TEXTS = ["a gripping film .", "dull and long .", "the best of the year .", "an embarrassment ."]


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty or holds only blank lines"),
    (b"\n\n   \n\t\n", "is empty or holds only blank lines"),
    (b'{"text": "caf\xe9", "label": "positive"}\n', r"is not UTF-8 text \(line 1\)"),
    (b'{"text": "a", "label": \n', r"could not be read as JSON Lines"),
])
def test_a_bad_data_file_is_named(tmp_path, content, message):
    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{path}.*{message}|{message}") as error:
        load_data_file(path)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match=message):
        load_split(DataSourceArguments(dataset=str(tmp_path)), "train")
    (tmp_path / "sst2").mkdir()
    shutil.copy(path, tmp_path / "sst2" / "train.jsonl")
    with pytest.raises(ValueError, match=message):
        load_benchmark("sst2", "train", data_dir=tmp_path)


def test_the_cli_answers_a_blank_train_file_in_one_line(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text("\n \n")
    status = main(["augment", "--dataset", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    line = _one_line(capsys.readouterr().err)
    assert status == 2 and str(tmp_path / "train.jsonl") in line and "blank lines" in line


def test_a_config_file_that_is_not_utf8_is_named(tmp_path, capsys):
    path = tmp_path / "gpt3mix_config.json"
    path.write_bytes(b'{"format": "gpt3mix_config", "augmenter": {"k": 2, "text": "\xff\xfe"}}')
    with pytest.raises(ValueError, match=rf"{path} is not UTF-8 text"):
        GPT3MixConfig.from_pretrained(path)
    status = main(["augment", "--config", str(path), "--output_dir", str(tmp_path / "out")])
    line = _one_line(capsys.readouterr().err)
    assert status == 2 and f"{path} is not UTF-8" in line


def test_state_files_name_themselves(tmp_path):
    (tmp_path / "state.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="state.json is not UTF-8 text"):
        read_json(tmp_path / "state.json")
    (tmp_path / "blocker").write_text("a file")
    with pytest.raises(ValueError, match=r"blocker is a file, not a folder"):
        write_json(tmp_path / "blocker" / "run.json", {})


def _augmenter():
    pool = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    return GPT3MixAugmenter(ScriptedBackend(parse_rate=1.0), pool, TaskSpec.from_preset("sst2")), pool


def test_a_shard_whose_rows_were_deleted_is_named_with_the_fix(tmp_path):
    augmenter, pool = _augmenter()
    checkpoints = tmp_path / "checkpoints"
    first = augmenter.augment(pool, checkpoint_dir=checkpoints, shard_size=2)
    shard = sorted(checkpoints.glob("shard-*"))[0]
    shutil.rmtree(shard / "data")
    with pytest.raises((ValueError, FileNotFoundError), match=rf"No saved rows at {shard}/data: delete the folder"):
        augmenter.augment(pool, checkpoint_dir=checkpoints, shard_size=2)
    with pytest.raises((ValueError, FileNotFoundError), match=f"delete the folder {shard}"):
        load_rows(shard)
    shutil.rmtree(shard)
    assert augmenter.augment(pool, checkpoint_dir=checkpoints, shard_size=2)["text"] == first["text"]
    save_rows(tmp_path / "again", first, {"rows": [0, 1]})
    (tmp_path / "again" / "data" / "state.json").unlink()
    with pytest.raises(ValueError, match="is not a whole saved dataset"):
        load_rows(tmp_path / "again")


def test_a_checkpoint_dir_that_is_a_file_is_refused_before_the_work(tmp_path):
    augmenter, pool = _augmenter()
    (tmp_path / "checkpoints").write_text("not a folder")
    backend = augmenter.backend
    with pytest.raises(ValueError, match=r"checkpoints is a file, not a folder: checkpoint_dir must be a folder"):
        augmenter.augment(pool, checkpoint_dir=tmp_path / "checkpoints")
    assert backend.calls == 0


def test_the_cli_refuses_an_output_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": "a"}) + "\n" for t in TEXTS))
    (tmp_path / "out").write_text("a file")
    status = main(["augment", "--dataset", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    line = _one_line(capsys.readouterr().err)
    assert status == 2 and f"{tmp_path / 'out'} is a file" in line


def test_the_cli_names_a_half_deleted_augment_output(tmp_path, capsys):
    augmenter, pool = _augmenter()
    pool.save_to_disk(tmp_path / "aug" / "real")
    (tmp_path / "aug" / "synthetic").mkdir()
    capsys.readouterr()
    status = main(["train", "--augmented_dir", str(tmp_path / "aug"), "--output_dir", str(tmp_path / "model")])
    line = _one_line(capsys.readouterr().err)
    assert status == 2 and f"{tmp_path / 'aug' / 'synthetic'} is not a whole saved dataset" in line


def test_a_request_cache_that_is_not_sqlite_is_named(tmp_path):
    (tmp_path / "cache.sqlite").write_text("this is not a database, " * 100)
    with pytest.raises(ValueError, match=r"cache.sqlite is not a request cache"):
        RequestCache(tmp_path / "cache.sqlite")
    (tmp_path / "folder.sqlite").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        RequestCache(tmp_path / "folder.sqlite")
    # Pages overwritten in the middle of a cache open fine and fail at a lookup: the same message, not a
    # sqlite3 error (which the CLI would print as a traceback).
    path = tmp_path / "damaged.sqlite"
    with RequestCache(path) as cache:
        for number in range(2000):
            cache.put(f'{{"prompt": "{number}"}}', {"choices": [{"text": "x" * 200}]})
        cache._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(bytes(range(256)) * 32)
    with RequestCache(path) as cache, pytest.raises(ValueError, match=r"damaged.sqlite is not a request cache"):
        for number in range(2000):
            cache.get(f'{{"prompt": "{number}"}}')


def test_a_trainer_output_dir_that_is_a_file_is_refused_when_it_is_built(tmp_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from gpt3mix_hf import GPT3MixTrainer, GPT3MixTrainingArguments
    from gpt3mix_hf.models import resolve_classifier

    tokenizer = AutoTokenizer.from_pretrained(resolve_classifier("minilm"))
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=2))
    (tmp_path / "out").write_text("a file")
    args = GPT3MixTrainingArguments(str(tmp_path / "out"), report_to="none", use_cpu=True, eval_strategy="no",
                                    early_stopping_patience=None)
    rows = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    with pytest.raises(ValueError, match=r"out is a file, not a folder: args.output_dir must be a folder"):
        GPT3MixTrainer(model, args, train_dataset=rows, processing_class=tokenizer)


def test_the_experiment_refuses_an_output_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "results").write_text("a file")
    status = main(["experiment", "--dataset", "sst2", "--output_dir", str(tmp_path / "results")])
    line = _one_line("\n".join(line for line in capsys.readouterr().err.splitlines() if "examples/s" not in line))
    assert status == 2 and "results is a file, not a folder: output_dir" in line
