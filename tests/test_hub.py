"""Publishing: the upload path with huggingface_hub.HfApi patched at its boundary (the Hub cannot be reached here),
everything else for real on local folders."""

import dataclasses
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import ScriptedBackend
from datasets import ClassLabel, DatasetDict, load_dataset
from huggingface_hub import DatasetCard, HfApi, ModelCard
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

from gpt3mix_hf import GPT3MixAugmenter, GPT3MixConfig, GPT3MixTrainingArguments, TaskSpec, cli
from gpt3mix_hf.hub.push import check_repo_id, push_augmented_dataset, push_classifier
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.provenance import CONFIG_NAME

TOKEN = "hf_" + "TestTokenNeverPublished" + "x" * 12


class FakeHub:
    """Records what HfApi would have been asked, and a copy of every file of each uploaded folder."""

    def __init__(self, existing_private: bool | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.uploads: list[dict[str, bytes]] = []
        self.existing_private = existing_private

    def install(self, monkeypatch):
        hub = self

        def create_repo(api, repo_id, **kwargs):
            hub.calls.append(("create_repo", {"repo_id": repo_id, "token": api.token, **kwargs}))
            if hub.existing_private is None:  # a new repository, made as asked
                hub.existing_private = bool(kwargs.get("private"))
            return f"https://huggingface.co/{repo_id}"

        def repo_info(api, repo_id, **kwargs):
            hub.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
            return SimpleNamespace(private=hub.existing_private)

        def update_repo_settings(api, repo_id, **kwargs):
            hub.calls.append(("update_repo_settings", {"repo_id": repo_id, **kwargs}))

        def upload_folder(api, *, folder_path, **kwargs):
            hub.calls.append(("upload_folder", kwargs))
            folder = Path(folder_path)
            hub.uploads.append(
                {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            )
            return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc")

        for name, method in [("create_repo", create_repo), ("repo_info", repo_info),
                             ("update_repo_settings", update_repo_settings), ("upload_folder", upload_folder)]:
            monkeypatch.setattr(HfApi, name, method)
        return self

    def call(self, name):
        found = [kwargs for called, kwargs in self.calls if called == name]
        assert len(found) == 1, f"{name} called {len(found)} times: {self.calls}"
        return found[0]

    def names(self):
        return [name for name, _ in self.calls]


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return FakeHub().install(monkeypatch)


@pytest.fixture
def augmented(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, TaskSpec.from_preset("sst2"), ratio=4, seed=2)
    synthetic = augmenter.augment(batch_size=4)
    config = GPT3MixConfig.from_augmenter(augmenter, toy_sentiment, data={"dataset": "sst2", "sample_per_class": 3})
    return synthetic, config


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- datasets ---------------------------------------------------------------------------------------------------


def test_push_dataset_creates_the_repo_and_uploads_the_exact_folder(hub, augmented, tmp_path):
    synthetic, config = augmented
    commit = push_augmented_dataset(
        synthetic, "me/sst2-gpt3mix", provenance=config, private=True, commit_message="First GPT3Mix rows",
        license="mit",
    )
    assert commit.commit_url.startswith("https://huggingface.co/me/sst2-gpt3mix")

    created = hub.call("create_repo")
    assert created["repo_id"] == "me/sst2-gpt3mix" and created["repo_type"] == "dataset"
    assert created["private"] is True and created["exist_ok"] is True
    assert created["token"] == TOKEN
    upload = hub.call("upload_folder")
    assert upload["repo_id"] == "me/sst2-gpt3mix" and upload["repo_type"] == "dataset"
    assert upload["commit_message"] == "First GPT3Mix rows"
    assert upload["delete_patterns"] == ["data/*.parquet", CONFIG_NAME]
    assert hub.names() == ["create_repo", "repo_info", "upload_folder"]

    (uploaded,) = hub.uploads
    assert set(uploaded) == {"README.md", CONFIG_NAME, "data/train-00000-of-00001.parquet"}
    # The upload is exactly what local_dir shows.
    preview = push_augmented_dataset(synthetic, "me/sst2-gpt3mix", provenance=config, local_dir=tmp_path / "repo",
                                     license="mit")
    assert _files(preview) == uploaded
    assert json.loads(uploaded[CONFIG_NAME]) == json.loads(json.dumps(config.to_dict()))


def test_local_dir_gives_back_the_same_rows_and_features(augmented, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)  # looking needs no token
    synthetic, config = augmented
    folder = push_augmented_dataset(synthetic, "me/sst2-gpt3mix", provenance=config, local_dir=tmp_path / "repo")
    loaded = load_dataset(str(folder), split="train")
    assert loaded.features == synthetic.features
    assert loaded.features["label"].names == ["negative", "positive"]
    assert loaded.to_list() == synthetic.to_list()
    assert np.allclose(np.sum(loaded["soft_labels"], axis=1), 1.0, atol=1e-5)
    card = DatasetCard.load(folder / "README.md", ignore_metadata_errors=False)
    assert "gpt3mix" in card.data.tags


def test_large_datasets_are_sharded_and_reload_in_order(augmented, tmp_path):
    synthetic, config = augmented
    folder = push_augmented_dataset(synthetic, "me/x", provenance=config, local_dir=tmp_path / "repo",
                                    max_shard_size="2KB")
    shards = sorted(p.name for p in (folder / "data").iterdir())
    assert len(shards) > 1
    assert all(name.endswith(f"-of-{len(shards):05d}.parquet") for name in shards)
    assert load_dataset(str(folder), split="train").to_list() == synthetic.to_list()
    # Writing again with fewer shards leaves no stale shard behind (it would be loaded twice).
    push_augmented_dataset(synthetic, "me/x", provenance=config, local_dir=folder)
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert load_dataset(str(folder), split="train").num_rows == len(synthetic)
    # Other rows, without provenance: the earlier split and provenance file do not stay beside them.
    push_augmented_dataset(DatasetDict({"real": synthetic.select(range(2))}), "me/x", local_dir=folder)
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["real-00000-of-00001.parquet"]
    assert not (folder / CONFIG_NAME).exists()


def test_splits_of_a_dataset_dict(augmented, tmp_path):
    synthetic, config = augmented
    splits = DatasetDict({"train": synthetic.select(range(6)), "validation": synthetic.select(range(6, 9))})
    folder = push_augmented_dataset(splits, "me/x", provenance=config, local_dir=tmp_path / "repo")
    loaded = load_dataset(str(folder))
    assert {name: part.to_list() for name, part in loaded.items()} == {
        name: part.to_list() for name, part in splits.items()
    }


def test_dataset_without_soft_labels_is_published_and_the_card_says_so(hub, augmented):
    synthetic, config = augmented
    push_augmented_dataset(synthetic.remove_columns("soft_labels"), "me/hard", provenance=config)
    (uploaded,) = hub.uploads
    assert "**No soft labels.**" in uploaded["README.md"].decode()


def test_existing_repo_is_updated_and_its_visibility_follows_private(monkeypatch, augmented):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    synthetic, config = augmented
    hub = FakeHub(existing_private=False).install(monkeypatch)
    push_augmented_dataset(synthetic, "me/existing", provenance=config, private=True)
    assert hub.call("create_repo")["exist_ok"] is True
    assert hub.call("update_repo_settings") == {"repo_id": "me/existing", "private": True, "repo_type": "dataset"}

    hub = FakeHub(existing_private=False).install(monkeypatch)
    push_augmented_dataset(synthetic, "me/existing", provenance=config)  # private=None: leave it as it is
    assert hub.names() == ["create_repo", "upload_folder"]
    assert hub.call("create_repo")["private"] is None


@pytest.mark.parametrize("existing", [True, False])
def test_visibility_changes_only_when_asked_and_the_change_is_reported(monkeypatch, augmented, caplog, existing):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    synthetic, config = augmented
    hub = FakeHub(existing_private=existing).install(monkeypatch)
    with caplog.at_level(logging.WARNING):
        push_augmented_dataset(synthetic, "me/existing", provenance=config)  # private=None
    assert "update_repo_settings" not in hub.names()
    assert "Making" not in caplog.text

    hub = FakeHub(existing_private=existing).install(monkeypatch)
    with caplog.at_level(logging.WARNING):
        push_augmented_dataset(synthetic, "me/existing", provenance=config, private=existing)  # already so
    assert "update_repo_settings" not in hub.names() and "Making" not in caplog.text

    hub = FakeHub(existing_private=existing).install(monkeypatch)
    with caplog.at_level(logging.WARNING):
        push_augmented_dataset(synthetic, "me/existing", provenance=config, private=not existing)
    assert hub.call("update_repo_settings") == {"repo_id": "me/existing", "private": not existing,
                                                "repo_type": "dataset"}
    assert f"Making the existing dataset repository me/existing {'public' if existing else 'private'}" in caplog.text


@pytest.mark.parametrize("secret_from", ["HF_TOKEN", "OPENAI_API_KEY"])
def test_the_dry_run_refuses_exactly_what_the_upload_refuses(monkeypatch, augmented, classifier, tokenizer,
                                                              tmp_path, secret_from):
    secret = "sk-" + "s3cret" * 5 if secret_from == "OPENAI_API_KEY" else TOKEN
    monkeypatch.setenv(secret_from, secret)
    hub = FakeHub().install(monkeypatch)
    synthetic, config = augmented
    for local_dir in (None, tmp_path / "dataset"):
        with pytest.raises(ValueError, match="README.md contains") as error:
            push_augmented_dataset(synthetic, "me/x", provenance=config, pretty_name=f"oops {secret}",
                                   token=TOKEN, local_dir=local_dir)
        assert secret not in str(error.value)
    # The model's own files are checked too (a config attribute holding the key).
    classifier.config.note = secret
    for local_dir in (None, tmp_path / "model"):
        with pytest.raises(ValueError, match="config.json contains"):
            push_classifier(classifier, "me/x", tokenizer=tokenizer, token=TOKEN, local_dir=local_dir)
    assert "upload_folder" not in hub.names()
    assert not (tmp_path / "dataset").exists() and not (tmp_path / "model").exists(), "nothing reached local_dir"


def test_a_token_shaped_string_in_the_card_is_refused(augmented, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("gpt3mix_hf.credentials.get_token", lambda: None)
    synthetic, config = augmented
    leaked = synthetic.map(lambda row: {"text": "key hf_" + "Z" * 30}, desc="a row that quotes a token")
    with pytest.raises(ValueError, match="shaped like an access token"):
        push_augmented_dataset(leaked, "me/x", provenance=config, local_dir=tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_a_provenance_of_other_labels_is_refused(augmented, tmp_path):
    synthetic, config = augmented
    other = synthetic.cast_column("label", ClassLabel(names=["bad", "good"]))
    with pytest.raises(ValueError, match=r"labelled \['negative', 'positive'\], but split 'train' has the labels"):
        push_augmented_dataset(other, "me/x", provenance=config, local_dir=tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_publishing_no_rows_warns(hub, augmented, caplog, tmp_path):
    synthetic, config = augmented
    with caplog.at_level(logging.WARNING):
        push_augmented_dataset(synthetic.select([]), "me/x", provenance=config, local_dir=tmp_path / "repo")
    assert "no rows in split(s) ['train']" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        push_augmented_dataset(synthetic, "me/x", provenance=config, local_dir=tmp_path / "repo")
    assert "no rows" not in caplog.text


@pytest.mark.parametrize("repo_id", ["sst2-gpt3mix", "a/b/c", "/name", "me/", "me/bad name"])
def test_repo_id_without_namespace_is_refused(hub, augmented, repo_id, tmp_path):
    synthetic, config = augmented
    with pytest.raises(ValueError, match="namespace/name|not a valid Hub repository id"):
        push_augmented_dataset(synthetic, repo_id, provenance=config, local_dir=tmp_path / "repo")
    assert hub.calls == [] and not (tmp_path / "repo").exists()


def test_no_token_says_how_to_log_in(monkeypatch, augmented):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("gpt3mix_hf.hub.push.get_token", lambda: None)
    hub = FakeHub().install(monkeypatch)
    synthetic, config = augmented
    with pytest.raises(OSError, match="hf auth login") as error:
        push_augmented_dataset(synthetic, "me/x", provenance=config)
    assert "huggingface-cli login" in str(error.value) and "HF_TOKEN" in str(error.value)
    assert hub.calls == []


def test_the_token_never_appears_in_files_or_logs(hub, augmented, capfd, caplog):
    synthetic, config = augmented
    with caplog.at_level(logging.DEBUG):
        push_augmented_dataset(synthetic, "me/x", provenance=config, private=True)
    assert all(TOKEN.encode() not in content for content in hub.uploads[0].values())
    assert "Published dataset me/x" in caplog.text  # the log lines exist...
    captured = capfd.readouterr()
    assert TOKEN not in caplog.text + captured.out + captured.err  # ...without the token


def test_a_file_holding_the_token_is_never_uploaded(hub, augmented):
    synthetic, config = augmented
    with pytest.raises(ValueError, match="contains your access token"):
        push_augmented_dataset(synthetic, "me/x", provenance=config, pretty_name=f"oops {TOKEN}")
    values = config.to_dict()
    values["data"]["dataset"] = TOKEN
    with pytest.raises(ValueError, match="access token") as error:
        push_augmented_dataset(synthetic, "me/x", provenance=values)
    assert TOKEN not in str(error.value)
    assert "upload_folder" not in hub.names()


# -- classifiers ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_classifier("minilm"))


@pytest.fixture
def classifier(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=2,
        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
    )
    return BertForSequenceClassification(config).eval()


TEXTS = ["a gripping , funny and moving film .", "dull , lifeless and far too long ."]


def _logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(TEXTS, return_tensors="pt", padding=True)).logits


def test_push_classifier_local_dir_reloads_and_predicts_the_same(classifier, tokenizer, augmented, tmp_path):
    _, config = augmented
    folder = push_classifier(classifier, "me/tiny-sst2", tokenizer=tokenizer, provenance=config,
                             dataset_id="me/sst2-gpt3mix", eval_results={"accuracy": 0.5}, local_dir=tmp_path / "m")
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert torch.allclose(_logits(reloaded, AutoTokenizer.from_pretrained(folder)), _logits(classifier, tokenizer))
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
    card = ModelCard.load(folder / "README.md", ignore_metadata_errors=False)
    assert card.data.datasets == ["me/sst2-gpt3mix"]
    assert json.loads((folder / CONFIG_NAME).read_text())["augmenter"] == config.to_dict()["augmenter"]


def test_push_classifier_uploads_model_tokenizer_card_and_provenance(hub, classifier, tokenizer, augmented):
    _, config = augmented
    push_classifier(classifier, "me/tiny-sst2", tokenizer=tokenizer, provenance=config, private=False)
    created = hub.call("create_repo")
    assert created["repo_type"] == "model" and created["private"] is False and created["exist_ok"] is True
    upload = hub.call("upload_folder")
    assert upload["repo_type"] == "model"
    assert upload["commit_message"] == "Upload GPT3Mix-trained classifier with gpt3mix_hf"
    # An earlier push's weights, adapter and provenance are replaced, not left beside the new model.
    assert {"adapter_config.json", "*.safetensors", "*.bin", CONFIG_NAME} <= set(upload["delete_patterns"])
    files = set(hub.uploads[0])
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
            CONFIG_NAME} <= files
    assert all(TOKEN.encode() not in content for content in hub.uploads[0].values())


def test_push_classifier_refuses_what_it_cannot_publish(hub, classifier):
    with pytest.raises(TypeError, match="PreTrainedModel or Trainer"):
        push_classifier("bert-base-uncased", "me/x")
    with pytest.raises(ValueError, match="namespace/name"):
        push_classifier(classifier, "tiny-sst2")
    assert hub.calls == []


def test_push_classifier_from_a_saved_folder_with_what_the_trainer_wrote(classifier, tokenizer, tmp_path):
    classifier.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    # What GPT3MixTrainer.save_model writes beside the model: the arguments it trained with.
    torch.save(GPT3MixTrainingArguments(output_dir=str(tmp_path), learning_rate=3e-5, loss_type="soft_ce",
                                        report_to="none", use_cpu=True), tmp_path / "model" / "training_args.bin")
    (tmp_path / "model" / "test_results.json").write_text(json.dumps({"accuracy": 0.8, "macro_f1": 0.79}))
    folder = push_classifier(tmp_path / "model", "me/tiny", local_dir=tmp_path / "repo", eval_dataset_id="SetFit/sst2",
                             eval_split="test")
    reloaded = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert torch.allclose(_logits(reloaded, AutoTokenizer.from_pretrained(folder)), _logits(classifier, tokenizer))
    card = ModelCard.load(folder / "README.md", ignore_metadata_errors=False)
    assert {(r.metric_type, r.metric_value, r.dataset_split) for r in card.data.eval_results} == {
        ("accuracy", 0.8, "test"), ("f1", 0.79, "test")}
    assert "- learning_rate: 3e-05" in card.text and "`loss_type=soft_ce`" in card.text


def test_push_classifier_publishes_a_lora_adapter(classifier, tokenizer, tmp_path, caplog):
    peft = pytest.importorskip("peft")
    classifier.save_pretrained(tmp_path / "base")  # the adapter names its base model by this folder
    lora = peft.LoraConfig(task_type="SEQ_CLS", target_modules=["query", "value"], r=4)
    model = peft.get_peft_model(BertForSequenceClassification.from_pretrained(tmp_path / "base"), lora)
    # The repository held a full model before: its config and weights go, or transformers would load them.
    classifier.save_pretrained(tmp_path / "repo")
    (tmp_path / "repo" / CONFIG_NAME).write_text("{}")
    folder = push_classifier(model, "me/tiny-lora", tokenizer=tokenizer, eval_results={"accuracy": 0.5},
                             eval_dataset_id="SetFit/sst2", eval_split="test",
                             local_dir=tmp_path / "repo")
    assert (folder / "adapter_config.json").exists() and (folder / "adapter_model.safetensors").exists()
    assert not (folder / "config.json").exists() and not (folder / "model.safetensors").exists()
    assert not (folder / CONFIG_NAME).exists()  # no provenance was given this time
    reloaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(folder).eval()
    assert torch.allclose(_logits(reloaded, tokenizer), _logits(model.eval(), tokenizer), atol=1e-6)
    card = ModelCard.load(folder / "README.md", ignore_metadata_errors=False)
    assert "Labels: `0` = negative, `1` = positive." in card.text and card.data.eval_results[0].metric_value == 0.5
    # A saved adapter folder publishes as the adapter does; its base being a local folder is said.
    model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    with caplog.at_level(logging.WARNING):
        again = push_classifier(tmp_path / "adapter", "me/tiny-lora", local_dir=tmp_path / "again")
    assert f"base model is the local folder {tmp_path / 'base'}" in caplog.text
    reloaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(again).eval()
    assert torch.allclose(_logits(reloaded, tokenizer), _logits(model.eval(), tokenizer), atol=1e-6)


def test_check_repo_id():
    assert check_repo_id("me/x") == "me/x"
    with pytest.raises(ValueError, match="e.g. 'my-user/x'"):
        check_repo_id("x")


# -- the commands -----------------------------------------------------------------------------------------------


def test_push_dataset_command_dry_run(augmented, toy_sentiment, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    synthetic, config = augmented
    # The layout `gpt3mix augment` writes: synthetic/, real/ and gpt3mix_config.json.
    synthetic.save_to_disk(tmp_path / "run" / "synthetic")
    toy_sentiment.save_to_disk(tmp_path / "run" / "real")
    quality = config.report.quality  # a folder made before the quality report: measured when published
    dataclasses.replace(config, report=dataclasses.replace(config.report, quality=None)).save_pretrained(
        tmp_path / "run")
    code = cli.main(["push-dataset", "--repo_id", "me/sst2-gpt3mix", "--dataset_dir", str(tmp_path / "run"),
                     "--with_real", "--dry-run", "--local_dir", str(tmp_path / "preview"), "--license", "mit"])
    assert code == 0
    out = capsys.readouterr().out
    assert "nothing uploaded" in out and "data/train-00000-of-00001.parquet" in out
    loaded = load_dataset(str(tmp_path / "preview"), split="train")
    assert loaded.num_rows == len(synthetic) + len(toy_sentiment)
    assert sum(loaded["is_synthetic"]) == len(synthetic)
    assert json.loads((tmp_path / "preview" / CONFIG_NAME).read_text())["augmenter"] == config.to_dict()["augmenter"]
    card = DatasetCard.load(tmp_path / "preview" / "README.md", ignore_metadata_errors=False)
    # --with_real: the real rows' labels come from the real data, not from the LM.
    assert card.data.annotations_creators == ["machine-generated", "found"] and card.data.license == "mit"
    assert "### Quality of the synthetic rows" in card.text
    assert f"| recency_rate | {quality['recency_rate']:.4g} |" in card.text
    assert str(tmp_path) not in card.content


def test_push_command_refuses_a_license_the_hub_would_refuse(augmented, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    synthetic, config = augmented
    synthetic.save_to_disk(tmp_path / "run" / "synthetic")
    config.save_pretrained(tmp_path / "run")
    code = cli.main(["push-dataset", "--repo_id", "me/x", "--dataset_dir", str(tmp_path / "run"), "--dry-run",
                     "--local_dir", str(tmp_path / "preview"), "--license", "Apache 2.0"])
    assert code == 2
    assert "license='Apache 2.0' is not a licence id the Hub accepts" in capsys.readouterr().err
    assert not (tmp_path / "preview").exists()


def test_push_model_command_uploads_through_the_hub(hub, classifier, tokenizer, augmented, tmp_path, capsys):
    _, config = augmented
    classifier.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    config.save_pretrained(tmp_path)
    code = cli.main(["push-model", "--repo_id", "me/tiny", "--model_dir", str(tmp_path / "model"),
                     "--dataset_id", "me/sst2-gpt3mix", "--private", "true"])
    assert code == 0
    assert hub.call("create_repo")["private"] is True
    assert CONFIG_NAME in hub.uploads[0]  # found beside the model folder
    assert "published: https://huggingface.co/me/tiny" in capsys.readouterr().out
    # --eval_dataset names other evaluation data than the recorded one: the recorded name does not go with it.
    (tmp_path / "model" / "gpt3mix_training.json").write_text(json.dumps(
        {"eval_dataset_id": "SetFit/sst2", "eval_dataset_name": "SST-2", "eval_split": "test"}))
    (tmp_path / "model" / "test_results.json").write_text(json.dumps({"test_accuracy": 0.8}))
    assert cli.main(["push-model", "--repo_id", "me/tiny", "--model_dir", str(tmp_path / "model"), "--eval_dataset",
                     "me/reviews", "--local_dir", str(tmp_path / "repo"), "--dry_run"]) == 0
    card = ModelCard.load(tmp_path / "repo" / "README.md", ignore_metadata_errors=False)
    assert [(r.dataset_type, r.dataset_name) for r in card.data.eval_results] == [("me/reviews", "me/reviews")]
