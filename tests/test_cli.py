"""`gpt3mix` commands end to end: augment through a served LM (rows written, provenance, regeneration through
the same server), train on the result, the experiment on a user's dataset, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from served_fixtures import ROOT, CannedTransformersBackend, FakeOpenAIServer, FakeTGIServer, TinyLMEngine
from test_experiment import build_tiny_classifier, write_reviews

from gpt3mix_hf.backends.local.machine import resolve_dtype
from gpt3mix_hf.cli.main import CommandParser, main

REVIEW_FLAGS = ["--text_column", "review", "--label_column", "stars", "--text_type", "product review",
                "--label_type", "sentiment", "--verbalizer", "bad=negative", "good=positive"]
API_KEY = "sk-cli-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def engine(tiny_lm_dir):
    return TinyLMEngine(CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1, dtype="float32"))


@pytest.fixture(scope="module")
def server(engine):
    with FakeOpenAIServer(engine) as server:
        server.api_key = API_KEY
        yield server


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    return write_reviews(tmp_path_factory.mktemp("data") / "reviews")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> str:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="module")
def augmented(server, reviews, tmp_path_factory):
    """`gpt3mix augment` through the (fake, real-model) OpenAI-compatible server, the key from the environment."""
    output_dir = tmp_path_factory.mktemp("augmented") / "first"
    flags = ["augment", "--dataset", str(reviews), *REVIEW_FLAGS, "--sample_per_class", "3", "--ratio", "2",
             "--backend", "openai", "--base_url", f"{server.url}/v1", "--model", "tiny", "--max_concurrency", "2",
             "--cache_path", str(output_dir.parent / "requests.sqlite"), "--max_new_tokens", "8",
             "--disable_tqdm", "--output_dir", str(output_dir)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", API_KEY)
        assert main(flags) == 0
    return output_dir


def test_usage_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("augment", "train", "experiment", "push-dataset", "push-model", "report"):
        assert command in out


def test_unknown_command(capsys):
    assert main(["agument"]) == 2
    assert "unknown command 'agument'" in capsys.readouterr().err
    assert main(["push"]) == 2
    err = capsys.readouterr().err
    assert "push-dataset" in err and "push-model" in err


def test_the_cli_flags_are_the_augmenter_config():
    from dataclasses import fields

    from gpt3mix_hf.cli.augment import arguments
    from gpt3mix_hf.config import AugmenterConfig

    assert AugmenterConfig in arguments("augment")
    # Every setting is a flag whose help is the field's own, and its parsed default is Python's default.
    parser = CommandParser(arguments("augment"))
    parsed = parser.parse_args_into_dataclasses(["--output_dir", "unused"])
    settings = next(value for value in parsed if isinstance(value, AugmenterConfig))
    assert settings == AugmenterConfig()
    flags = {action.dest: action for action in parser._actions}
    for item in fields(AugmenterConfig):
        assert flags[item.name].help == item.metadata["help"], item.name


def test_augment_without_a_dataset_says_which_flag_is_missing(tmp_path, capsys):
    line = one_error_line(capsys, ["augment", "--output_dir", str(tmp_path / "out")])
    assert "--dataset" in line and "No dataset given" in line


def test_augment_help_lists_flags(capsys):
    with pytest.raises(SystemExit):
        main(["augment", "--help"])
    out = capsys.readouterr().out
    for flag in ("--sample_fraction", "--label_mode", "--config", "--backend", "--base_url", "--max_concurrency",
                 "--cache_path", "--dtype", "--dataset_config", "--revision", "--verbalizer", "--temperature"):
        assert flag in out
    assert "--api_key " not in out
    # A required flag's help ends with its text, not with a "(default: None)" it never uses.
    assert "failures are saved. (default" not in " ".join(out.split())
    assert "failures are saved." in " ".join(out.split())


@pytest.mark.parametrize(("command", "flags"), [
    ("experiment", ("--pooling", "--validation_set", "--num_train_epochs")),
    ("train", ("--pooling", "--classifier_head")),
])
def test_classifier_flags_in_help(capsys, command, flags):
    # argparse formats help strings with %: a stray "%" in one breaks --help for the whole command.
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out


def test_augment_through_a_served_lm_writes_rows(augmented, server, capsys):
    synthetic = load_from_disk(augmented / "synthetic")
    assert len(synthetic) > 0
    assert synthetic.features["label"].names == ["bad", "good"]
    assert np.allclose([sum(row) for row in synthetic["soft_labels"]], 1.0, atol=1e-4)
    real = load_from_disk(augmented / "real")
    assert len(real) == 6 and real.column_names == ["review", "stars"]
    text = (augmented / "gpt3mix_config.json").read_text()
    config = json.loads(text)
    assert config["backend"]["backend"] == "openai" and config["backend"]["model"] == "tiny"
    assert server.url not in text  # the model is recorded, not where it was served
    assert config["task"]["spec"]["verbalizer"] == {"bad": "negative", "good": "positive"}
    assert API_KEY not in text
    # The quality report is kept with the provenance, and `gpt3mix report` computes it again from the folder
    # (the user's own column names read from the provenance).
    quality = config["report"]["quality"]
    assert quality["rows"] == len(synthetic) and quality["real_label_fractions"] == [0.5, 0.5]
    capsys.readouterr()
    assert main(["report", str(augmented), "--json", "true"]) == 0
    assert json.loads(capsys.readouterr().out) == quality


def test_augment_with_debiased_labels(augmented, server, reviews, tmp_path, capsys, monkeypatch):
    output_dir = tmp_path / "debiased"
    flags = ["augment", "--dataset", str(reviews), *REVIEW_FLAGS, "--sample_per_class", "3", "--ratio", "2",
             "--backend", "openai", "--base_url", f"{server.url}/v1", "--model", "tiny", "--max_concurrency", "2",
             "--max_new_tokens", "8", "--disable_tqdm", "--output_dir", str(output_dir),
             "--label_mode", "debiased", "--debias_orders", "2", "--debias_prior_rows", "4"]
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    assert main(flags) == 0
    rows = load_from_disk(output_dir / "synthetic")
    soft = load_from_disk(augmented / "synthetic")
    # The same generations as the soft run of the same flags; only the label columns differ.
    assert rows["text"] == soft["text"] and len(rows) > 0
    assert np.allclose(rows["uncalibrated_soft_labels"], soft["soft_labels"], atol=1e-6)
    by_hand = np.asarray(rows["order_averaged_soft_labels"]) / np.asarray(rows["debias_prior"])
    assert np.allclose(rows["soft_labels"], by_hand / by_hand.sum(axis=1, keepdims=True), atol=1e-5)
    config = json.loads((output_dir / "gpt3mix_config.json").read_text())["augmenter"]
    assert (config["label_mode"], config["debias_orders"], config["debias_prior_rows"]) == ("debiased", 2, 4)
    with pytest.raises(SystemExit):
        main(["augment", "--help"])
    assert "--debias_orders" in capsys.readouterr().out


def test_augment_through_tgi(engine, reviews, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", API_KEY)
    with FakeTGIServer(engine) as tgi:
        tgi.api_key = API_KEY
        assert main(["augment", "--dataset", str(reviews), *REVIEW_FLAGS, "--sample_per_class", "2", "--backend",
                     "tgi", "--base_url", tgi.url, "--max_new_tokens", "8", "--disable_tqdm",
                     "--output_dir", str(tmp_path / "tgi")]) == 0
    assert len(load_from_disk(tmp_path / "tgi" / "synthetic")) > 0
    config = json.loads((tmp_path / "tgi" / "gpt3mix_config.json").read_text())
    assert config["backend"]["backend"] == "tgi"


def test_config_regenerates_through_the_served_lm(augmented, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    again = tmp_path / "again"
    regenerate = ["augment", "--config", str(augmented / "gpt3mix_config.json"), "--disable_tqdm",
                  "--output_dir", str(again)]
    line = one_error_line(capsys, regenerate)
    assert "'openai' server model 'tiny'" in line and "--base_url" in line
    assert main([*regenerate, "--base_url", f"{server.url}/v1"]) == 0
    first, second = load_from_disk(augmented / "synthetic"), load_from_disk(again / "synthetic")
    assert second["text"] == first["text"] and np.allclose(second["soft_labels"], first["soft_labels"])
    assert json.loads((again / "gpt3mix_config.json").read_text())["backend"]["backend"] == "openai"


def test_train_on_the_augmented_rows_writes_model_and_card(augmented, reviews, tiny_classifier, tmp_path, capsys):
    output_dir = tmp_path / "model"
    assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--eval_dataset",
                 str(reviews), "--eval_split", "test", "--output_dir", str(output_dir), "--num_train_epochs", "2",
                 "--per_device_train_batch_size", "4", "--report_to", "none", "--disable_tqdm", "true"]) == 0
    out = capsys.readouterr().out
    synthetic = len(load_from_disk(augmented / "synthetic"))
    assert f"trained on 6 real + {synthetic} synthetic rows" in out and f"the test split of {reviews}: accuracy" in out
    for name in ("config.json", "model.safetensors", "README.md", "eval_results.json", "gpt3mix_config.json"):
        assert (output_dir / name).exists(), name
    assert json.loads((output_dir / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}
    assert "gpt3mix" in (output_dir / "README.md").read_text().lower()


def test_the_card_of_gpt3mix_train_then_push_model_tells_what_was_done(augmented, reviews, tiny_classifier, tmp_path,
                                                                       capsys):
    from huggingface_hub import ModelCard

    output_dir = tmp_path / "model"
    assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--eval_dataset",
                 str(reviews), "--eval_split", "test", "--output_dir", str(output_dir), "--num_train_epochs", "1",
                 "--learning_rate", "3e-5", "--per_device_train_batch_size", "4", "--report_to", "none",
                 "--disable_tqdm", "true"]) == 0
    preview = tmp_path / "preview"
    assert main(["push-model", "--repo_id", "me/tiny", "--model_dir", str(output_dir), "--dry_run",
                 "--local_dir", str(preview)]) == 0
    for card_path in (output_dir / "README.md", preview / "README.md"):
        card = ModelCard.load(card_path, ignore_metadata_errors=False)
        assert "Soft cross-entropy" in card.text and "Cross-entropy on the hard" not in card.text
        assert "- learning_rate: 3e-05" in card.text
        # The evaluation was on reviews' test split, not on the training file; a local folder has no Hub id, so
        # no model-index entry credits the scores to a dataset.
        assert "on the `test` split of `reviews`" in card.text
        assert card.data.eval_results is None
        assert str(tmp_path) not in card.content


def test_train_stopped_half_way_resumes_to_the_same_model(augmented, reviews, tiny_classifier, tmp_path, capsys,
                                                          monkeypatch, caplog):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from gpt3mix_hf.cli import train

    def command(output_dir, *extra):
        # Early stopping with patience 2: the tiny classifier's validation accuracy stops improving within the
        # run, so what the stopped run had counted must be restored for the resumed run to stop where the whole
        # one did.
        return ["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--eval_dataset",
                str(reviews), "--eval_split", "test", "--output_dir", str(output_dir), "--num_train_epochs", "8",
                "--early_stopping_patience", "2", "--per_device_train_batch_size", "4", "--report_to", "none",
                "--disable_tqdm", "true", *extra]

    def evaluated_epochs(folder):
        state = json.loads((folder / "trainer_state.json").read_text())
        return [entry["epoch"] for entry in state["log_history"] if "eval_accuracy" in entry]

    assert main(command(tmp_path / "whole")) == 0
    whole_epochs = evaluated_epochs(tmp_path / "whole")
    assert 2 < len(whole_epochs) < 8, "early stopping must end the run after the cut and before the last epoch"

    class StopAfterTheSecondEpoch(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.epoch == 2:
                raise KeyboardInterrupt  # as if the run were killed once epoch 2's checkpoint is on disk

    made = train.classifier_trainer

    def stopping_trainer(*args, **kwargs):
        trainer = made(*args, **kwargs)
        trainer.add_callback(StopAfterTheSecondEpoch())
        return trainer

    monkeypatch.setattr(train, "classifier_trainer", stopping_trainer)
    stopped = tmp_path / "stopped"
    assert main(command(stopped)) == 130  # "interrupted"
    monkeypatch.setattr(train, "classifier_trainer", made)
    assert not (stopped / "model.safetensors").exists()
    [saved] = [path for path in stopped.glob("checkpoint-*") if json.loads(
        (path / "trainer_state.json").read_text())["epoch"] == 2]
    before_the_cut = json.loads((saved / "trainer_state.json").read_text())["log_history"]
    # Changed training arguments, other rows or a checkpoint without a record are refused, naming the difference.
    capsys.readouterr()
    line = one_error_line(capsys, command(stopped, "--learning_rate", "1e-3", "--seed", "7"))
    assert "comes from another training" in line and "--learning_rate, --seed" in line
    assert "rows" in one_error_line(capsys, command(stopped, "--real_only"))
    line = one_error_line(capsys, command(tmp_path / "elsewhere", "--real_only", "--resume_from_checkpoint",
                                          str(saved)))
    assert "differs in: rows" in line
    assert "not a checkpoint folder" in one_error_line(capsys, command(tmp_path / "elsewhere",
                                                                       "--resume_from_checkpoint", str(tmp_path)))
    # A checkpoint without the record (another tool's, an older version's) is not resumed, nor is one that holds
    # the model only (no optimizer state to go on from).
    import shutil

    shutil.copytree(saved, tmp_path / "bare" / saved.name)
    assert "has no _gpt3mix_train_inputs.json" in one_error_line(capsys, command(tmp_path / "bare"))
    shutil.copy(stopped / "_gpt3mix_train_inputs.json", tmp_path / "bare")
    (tmp_path / "bare" / saved.name / "optimizer.pt").unlink()
    assert "holds the model only" in one_error_line(capsys, command(tmp_path / "bare"))
    # A record of another version, with an argument this one lacks, names it.
    older = {"training_arguments": {"old_flag": 1, "seed": 1}}
    assert train._differences(older, {"training_arguments": {"seed": 1}}) == ["--old_flag"]
    # A checkpoint cut off while it was saved is skipped.
    partial = stopped / "checkpoint-999"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut")
    with caplog.at_level("WARNING"):
        assert main(command(stopped)) == 0
    messages = [record.getMessage() for record in caplog.records]
    assert any("checkpoint-999 is incomplete" in message for message in messages)
    assert any(f"Resuming from {saved}" in message for message in messages)
    assert evaluated_epochs(stopped) == whole_epochs
    # Epochs 1-2 were not trained again: their logs (with their run times) are those of the stopped run.
    state = json.loads((stopped / "trainer_state.json").read_text())
    assert state["log_history"][:len(before_the_cut)] == before_the_cut
    whole, resumed = (load_file(folder / "model.safetensors") for folder in (tmp_path / "whole", stopped))
    assert whole.keys() == resumed.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=0, msg=key)


def test_the_served_backends_settings_are_flags(server, reviews, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    flags = ["augment", "--dataset", str(reviews), *REVIEW_FLAGS, "--sample_per_class", "3", "--backend", "openai",
             "--base_url", f"{server.url}/v1", "--model", "tiny", "--max_new_tokens", "8", "--disable_tqdm",
             "--output_dir", str(tmp_path / "out")]
    # A token budget smaller than one request's prompt: the run stops before it pays for more.
    line = one_error_line(capsys, [*flags, "--max_total_tokens", "5"])
    assert "max_total_tokens" in line
    assert not (tmp_path / "out" / "gpt3mix_config.json").exists()
    line = one_error_line(capsys, ["augment", "--timeout", "5", "--max_requests", "3", "--output_dir", str(tmp_path)])
    assert "--timeout, --max_requests are for a served LM" in line
    assert "timeout must be a finite number" in one_error_line(capsys, [*flags, "--timeout", "0"])


def test_push_dataset_with_real_rows_of_other_column_names(augmented, tmp_path, capsys):
    # The real rows keep the user's columns (review, stars); the provenance file says which they are.
    preview = tmp_path / "preview"
    assert main(["push-dataset", "--repo_id", "me/reviews", "--dataset_dir", str(augmented), "--with_real",
                 "--dry_run", "--local_dir", str(preview)]) == 0
    from datasets import load_dataset

    published = load_dataset(str(preview), split="train")
    assert published["is_synthetic"].count(False) == len(load_from_disk(augmented / "real"))
    assert published["is_synthetic"].count(True) == len(load_from_disk(augmented / "synthetic"))


def test_a_folder_whose_augment_stopped_while_saving_is_refused(augmented, server, tmp_path, capsys, monkeypatch):
    import shutil

    from gpt3mix_hf.cli import augment

    folder = tmp_path / "cut"
    shutil.copytree(augmented, folder)
    # A run into the same folder that stops after the rows are saved, before its config: the earlier run's
    # config must not be left to describe the new rows.
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(augment, "write_text", stop)
    assert main(["augment", "--config", str(augmented / "gpt3mix_config.json"), "--base_url", f"{server.url}/v1",
                 "--disable_tqdm", "--output_dir", str(folder)]) == 130
    assert (folder / "synthetic").is_dir() and not (folder / "gpt3mix_config.json").exists()
    capsys.readouterr()
    line = one_error_line(capsys, ["train", "--augmented_dir", str(folder), "--output_dir", str(tmp_path / "m")])
    assert "has no gpt3mix_config.json" in line and "run the same gpt3mix augment again" in line
    line = one_error_line(capsys, ["push-dataset", "--repo_id", "me/x", "--dataset_dir", str(folder / "synthetic"),
                                   "--dry_run"])
    assert "has no gpt3mix_config.json" in line and "--config" in line


def test_train_names_the_fixes(augmented, reviews, tiny_classifier, tmp_path, capsys, caplog):
    assert "--output_dir is required" in one_error_line(capsys, ["train", "--augmented_dir", str(augmented)])
    line = one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--model", tiny_classifier,
                                   "--eval_dataset", str(reviews / "test.jsonl"), "--output_dir", str(tmp_path)])
    assert "--eval_split train" in line
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--hub_token" not in capsys.readouterr().out
    line = one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--hub_token", "x",
                                   "--output_dir", str(tmp_path)])
    assert "hf auth login" in line and "HF_TOKEN" in line
    # Validating on the rows the model trains on says nothing: refused when every row is one.
    real = load_from_disk(augmented / "real")
    names = real.features["stars"].names
    held = tmp_path / "real.jsonl"
    held.write_text("".join(json.dumps({**row, "stars": names[row["stars"]]}) + "\n" for row in real.to_list()))
    line = one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--model", tiny_classifier,
                                   "--eval_dataset", str(held), "--eval_split", "train", "--output_dir",
                                   str(tmp_path / "m")])
    assert "Every row of the --eval_dataset split is one of the real rows the model trains on" in line
    with held.open("a") as handle:  # two held-out rows: the training rows are left out, with a warning
        handle.write(json.dumps({"review": "a brand new kettle", "stars": "good"}) + "\n")
        handle.write(json.dumps({"review": "it broke at once", "stars": "bad"}) + "\n")
    with caplog.at_level("WARNING"):
        assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--eval_dataset",
                     str(held), "--eval_split", "train", "--output_dir", str(tmp_path / "m"), "--num_train_epochs",
                     "1", "--report_to", "none", "--disable_tqdm", "true"]) == 0
    assert any(f"{len(real)} of the {len(real) + 2} evaluation rows are real training rows" in record.getMessage()
               for record in caplog.records)


def test_a_secret_typed_as_a_flag_is_never_repeated(capsys, tmp_path):
    out = ["--output_dir", str(tmp_path / "out")]
    for flags in (["--hub-token", "hf_SECRET123"], ["--api-key", "hf_SECRET123"], ["--HF_TOKEN=hf_SECRET123"],
                  ["--api_k", "hf_SECRET123"]):
        line = one_error_line(capsys, ["augment", *flags, *out])
        assert "is not a flag" in line and "hf_SECRET123" not in line, flags
    # No abbreviations (--api-key would have been --api_key_env's), and unknown flags are named without values.
    line = one_error_line(capsys, ["augment", "--max_conc", "4", "--no_such_flag", "hf_SECRET123", *out])
    assert "unknown flags: --max_conc, --no_such_flag" in line and "hf_SECRET123" not in line


def test_train_passes_a_hub_eval_datasets_config_and_revision(augmented, tmp_path, capsys, monkeypatch):
    # The Hub is unreachable here: the flags are checked where they reach the loader.
    from gpt3mix_hf.cli import train

    seen = []

    def load_split(source, split, names=None):
        seen.append((source.dataset, source.dataset_config, source.revision, split))
        raise FileNotFoundError("offline")

    monkeypatch.setattr(train, "load_split", load_split)
    one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--eval_dataset", "nyu-mll/glue",
                            "--eval_dataset_config", "cola", "--eval_revision", "abc123", "--output_dir",
                            str(tmp_path)])
    assert seen == [("nyu-mll/glue", "cola", "abc123", "validation")]


def test_train_without_an_eval_set_turns_early_stopping_off(augmented, tiny_classifier, tmp_path, capsys):
    output_dir = tmp_path / "model"
    assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--output_dir",
                 str(output_dir), "--num_train_epochs", "1", "--report_to", "none", "--disable_tqdm", "true"]) == 0
    assert (output_dir / "model.safetensors").exists() and not (output_dir / "eval_results.json").exists()
    # Early stopping is on by default (patience 20, evaluated each epoch): read what the run saved. No callback
    # kept state for it, no evaluation was logged, the whole --num_train_epochs ran, and the saved arguments say so.
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert "TrainerControl" in state["stateful_callbacks"]
    assert "EarlyStoppingCallback" not in state["stateful_callbacks"]
    assert not [entry for entry in state["log_history"] if any(key.startswith("eval_") for key in entry)]
    assert state["epoch"] == 1 and state["global_step"] == state["max_steps"] and state["best_metric"] is None
    saved = torch.load(output_dir / "training_args.bin", weights_only=False)
    assert saved.early_stopping_patience is None and saved.eval_strategy == "no" and not saved.load_best_model_at_end
    assert "augmented with [GPT3Mix]" in (output_dir / "README.md").read_text()
    # A NoAug model used none of the synthetic rows: its card does not say it was augmented.
    assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--output_dir",
                 str(tmp_path / "noaug"), "--real_only", "--num_train_epochs", "1", "--report_to", "none",
                 "--disable_tqdm", "true"]) == 0
    card = (tmp_path / "noaug" / "README.md").read_text()
    assert "augmented with" not in card and not (tmp_path / "noaug" / "gpt3mix_config.json").exists()
    # --eval_strategy no asks for no evaluations: early stopping is off with it, not an error.
    assert main(["train", "--augmented_dir", str(augmented), "--model", tiny_classifier, "--output_dir",
                 str(tmp_path / "no-eval"), "--eval_strategy", "no", "--num_train_epochs", "1", "--report_to",
                 "none", "--disable_tqdm", "true"]) == 0
    capsys.readouterr()
    line = one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--eval_strategy", "no",
                                   "--early_stopping_patience", "5", "--output_dir", str(tmp_path / "x")])
    assert "needs evaluations" in line and "0 on a command line" in line
    odd = write_reviews(tmp_path / "odd", test_labels=("bad", "great"))
    capsys.readouterr()
    line = one_error_line(capsys, ["train", "--augmented_dir", str(augmented), "--model", tiny_classifier,
                                   "--eval_dataset", str(odd), "--eval_split", "test", "--output_dir", str(tmp_path)])
    assert "'great'" in line and "train's labels" in line


@pytest.mark.slow  # a whole sweep, classifiers trained for real: tens of seconds on 2 cores
def test_experiment_on_a_users_dataset(reviews, tiny_classifier, tiny_lm_dir, tmp_path, capsys):
    output_dir = tmp_path / "sweep"
    assert main(["experiment", "--dataset", str(reviews), *REVIEW_FLAGS, "--methods", "noaug", "gpt3mix-soft",
                 "--levels", "0.25", "--data_seeds", "1", "--repeats", "2", "--classifier", tiny_classifier,
                 "--lm", str(tiny_lm_dir), "--max_new_tokens", "4", "--num_train_epochs", "1",
                 "--output_dir", str(output_dir), "--disable_tqdm"]) == 0
    out = capsys.readouterr().out
    assert "4 runs in" in out and "| NoAug |" in out and "| GPT3Mix soft |" in out
    assert (output_dir / "reviews_table.md").exists() and (output_dir / "reviews_plot.png").exists()


def one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_user_errors_are_one_line_with_status_2(tmp_path, reviews, capsys):
    out = ["--output_dir", str(tmp_path / "out"), "--disable_tqdm"]
    no_label = tmp_path / "no-label.jsonl"
    no_label.write_text('{"text": "fine"}\n{"text": "bad"}\n')
    line = one_error_line(capsys, ["augment", "--dataset", str(no_label), *out])
    assert "no column 'label'" in line and "--label_column" in line
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "is empty" in one_error_line(capsys, ["augment", "--dataset", str(empty), *out])
    assert "No file or folder" in one_error_line(capsys, ["augment", "--dataset", str(tmp_path / "nope.jsonl"), *out])
    line = one_error_line(capsys, ["augment", "--dataset", str(reviews), *REVIEW_FLAGS[:4], "--model",
                                   str(tmp_path / "no-model"), *out])
    assert "No model folder" in line
    assert "not a finite number" in one_error_line(capsys, ["augment", "--ratio", "inf", *out])
    assert "not a finite number" in one_error_line(capsys, ["augment", "--temperature", "nan", *out])
    assert "invalid choice" in one_error_line(capsys, ["augment", "--selection", "random", *out])
    assert "needs --base_url" in one_error_line(capsys, ["augment", "--backend", "openai", *out])
    assert "for a served LM" in one_error_line(capsys, ["augment", "--cache_path", "x.sqlite", *out])
    line = one_error_line(capsys, ["augment", "--dataset", str(reviews), *REVIEW_FLAGS[:4], "--split", "dev", *out])
    assert "no 'dev' split" in line
    # With --config the file decides: a flag that would be ignored is refused, one left at its default is not.
    line = one_error_line(capsys, ["augment", "--config", str(tmp_path / "gpt3mix_config.json"), "--ratio", "3", *out])
    assert "--ratio would be ignored" in line
    line = one_error_line(capsys, ["augment", "--config", str(tmp_path / "gpt3mix_config.json"), "--k", "2", *out])
    assert "would be ignored" not in line
    line = one_error_line(capsys, ["augment", "--config", str(tmp_path / "gpt3mix_config.json"), "--model", "m",
                                   "--dtype", "float32", *out])
    assert "--model, --dtype would be ignored" in line and "regenerate(config, backend=" in line
    sweep = ["--output_dir", str(tmp_path / "sweep")]
    assert "required: --output_dir" in one_error_line(capsys, ["experiment", "--dataset", "sst2"])
    assert "must be >= 1" in one_error_line(capsys, ["experiment", "--data_seeds", "0", *sweep])
    assert "invalid choice: 'mixup'" in one_error_line(capsys, ["experiment", "--methods", "noaug", "mixup", *sweep])
    (tmp_path / "no-train").mkdir()
    (tmp_path / "no-train" / "test.jsonl").write_text('{"text": "a", "label": "x"}\n')
    assert "no 'train' split" in one_error_line(
        capsys, ["experiment", "--dataset", str(tmp_path / "no-train"), "--disable_tqdm", *sweep])
    odd = write_reviews(tmp_path / "odd", test_labels=("bad", "great"))
    line = one_error_line(capsys, ["experiment", "--dataset", str(odd), "--text_column", "review", "--label_column",
                                   "stars", *sweep, "--disable_tqdm"])
    assert "'great'" in line
    assert "no real/ folder" in one_error_line(capsys, ["train", "--augmented_dir", str(tmp_path), *out[:2]])


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--base_url"):
        main(["augment", "--backend", "tgi", "--output_dir", str(tmp_path), "--debug"])


def test_the_console_entry_point_exits_2_with_one_line(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "gpt3mix_hf.cli", "augment", "--ratio", "inf", "--output_dir", str(tmp_path)],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gpt3mix augment: error: argument --ratio: inf is not a finite number: give a finite value "
        "(see gpt3mix augment --help)"
    ]


def test_augment_with_a_local_lm_and_its_regeneration(tiny_lm_dir, data_dir, tmp_path, capsys):
    flags = ["--dataset", "trec6", "--data_dir", str(data_dir), "--sample_per_class", "1", "--model",
             str(tiny_lm_dir), "--max_new_tokens", "4", "--max_attempts", "1", "--ratio", "2", "--disable_tqdm"]
    assert main(["augment", *flags, "--output_dir", str(tmp_path / "first")]) == 0
    out = capsys.readouterr().out
    # A random tiny LM writes no parseable line: every row fails, and is reported (the served test writes rows).
    assert "rows written: 0 of 12 (12 rows failed every attempt)" in out
    real = load_from_disk(tmp_path / "first" / "real")
    assert len(real) == 6 and real.features["label"].names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    failures = (tmp_path / "first" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 12 and json.loads(failures[0])["failed_attempts"]
    config = json.loads((tmp_path / "first" / "gpt3mix_config.json").read_text())
    assert config["task"]["spec"]["text_type"] == "question" and config["data"]["sample_per_class"] == 1
    # --dtype auto (the default) is recorded as what it resolved to here, so the regeneration uses the same.
    assert config["backend"]["dtype"] == str(resolve_dtype("auto", "cpu")).removeprefix("torch.")
    again = ["augment", "--config", str(tmp_path / "first" / "gpt3mix_config.json"), "--data_dir", str(data_dir),
             "--output_dir", str(tmp_path / "again"), "--disable_tqdm"]
    assert main(again) == 0
    assert (tmp_path / "again" / "failures.jsonl").read_text().splitlines() == failures
    # The recorded batching, unless a flag gives another (float32 rows do not depend on it).
    assert json.loads((tmp_path / "again" / "gpt3mix_config.json").read_text())["run"] == config["run"]
    assert main([*again[:-3], "--output_dir", str(tmp_path / "batched"), "--map_batch_size", "3",
                 "--generation_batch_size", "2", "--disable_tqdm"]) == 0
    batched = json.loads((tmp_path / "batched" / "gpt3mix_config.json").read_text())["run"]
    assert (batched["map_batch_size"], batched["generation_batch_size"]) == (3, 2)
    assert (tmp_path / "batched" / "failures.jsonl").read_text().splitlines() == failures


def test_a_benchmark_eval_split_is_credited_as_the_hubs_split():
    from gpt3mix_hf.cli.train import TrainArguments, _eval_source

    cola = _eval_source(TrainArguments(augmented_dir="unused", eval_dataset="cola", eval_split="test"))
    # CoLA's test rows here are the Hub's validation split: its test labels are hidden.
    assert (cola["eval_dataset_id"], cola["eval_split"]) == ("nyu-mll/glue", "validation")
    sst2 = _eval_source(TrainArguments(augmented_dir="unused", eval_dataset="sst2", eval_split="test"))
    assert (sst2["eval_dataset_id"], sst2["eval_split"]) == ("SetFit/sst2", "test")
