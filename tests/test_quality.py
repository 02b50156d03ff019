"""The quality report: the package's `evaluate` measurements, loaded from their local paths (offline), combined
with `evaluate.combine`, and run on the rows of an augmentation."""

import json

import evaluate
import pytest
from conftest import ScriptedBackend, make_dataset
from datasets import Dataset
from huggingface_hub import DatasetCard

from gpt3mix_hf import GPT3MixAugmenter, GPT3MixConfig, TaskSpec, cli
from gpt3mix_hf.hub.cards import build_dataset_card
from gpt3mix_hf.measurements import MEASUREMENTS, load_measurement, measurement_path
from gpt3mix_hf.quality import quality_report

TEXTS = ["a gripping , funny and moving film .", "dull , lifeless and far too long .",
         "the best thing i have seen this year .", "an embarrassment for everyone involved ."]


@pytest.mark.parametrize("name", MEASUREMENTS)
def test_each_measurement_is_an_evaluate_module_loaded_from_its_local_path(name):
    module = evaluate.load(measurement_path(name))
    assert isinstance(module, evaluate.Measurement) and module.description


def test_the_measurements_by_hand():
    balance = load_measurement("label_balance").compute(labels=[0, 0, 0, 1], real_labels=[0, 1])
    assert balance == {"label_fractions": [0.75, 0.25], "real_label_fractions": [0.5, 0.5], "label_balance_tvd": 0.25}
    agreement = load_measurement("label_agreement").compute(written_labels=[0, 1, 1, -1], lm_labels=[0, 1, 0, 1],
                                                             debiased_labels=[0, 0, 0, 0])
    assert agreement == {"written_lm_agreement": 2 / 3, "debiased_written_agreement": 1 / 3,
                         "debiased_lm_agreement": 0.5}
    assert load_measurement("parse_failures").compute(failed_attempts=[0, 2, 0], dropped_failures=4) == {
        "parse_failures": 6, "parse_failure_rate": 6 / 9}
    assert load_measurement("distinct_n").compute(texts=["a good film", "a good book"], max_n=2) == {
        "distinct_1": 4 / 6, "distinct_2": 3 / 4}
    assert load_measurement("recency").compute(labels=[0, 1, 1, 0], last_example_labels=[0, 1, 0, -1]) == {
        "recency_rate": 2 / 3, "recency_rate_if_independent": 4 / 9}
    copies = load_measurement("text_copies").compute(
        texts=["A fine  film", "a fine film indeed , truly", "dull"],
        prompt_texts=[["a fine film"], ["great fun"], []], real_texts=["a fine film", "a fine film indeed , truly !"])
    assert copies["exact_copy_of_prompt_rate"] == 1 / 3 and copies["exact_copy_of_real_rate"] == 1 / 3
    # "a fine film indeed , truly": 4 of its 4 trigrams are in the second real row.
    assert copies["near_copy_of_real_rate"] == 2 / 3 and copies["near_copy_of_prompt_rate"] == 1 / 3
    assert load_measurement("text_length").compute(texts=["a fine film"], real_texts=["good", "really good"]) == {
        "mean_words": 3.0, "real_mean_words": 1.5, "length_ratio": 2.0}


def test_measurements_combine_like_evaluates_own():
    combined = evaluate.combine([measurement_path("distinct_n"), measurement_path("text_length"),
                                 measurement_path("recency")])
    result = combined.compute(texts=["a fine film", "a dull film"], real_texts=["good"], labels=[0, 1],
                              last_example_labels=[0, 0])
    assert result["distinct_1"] == 4 / 6 and result["length_ratio"] == 3.0 and result["recency_rate"] == 0.5


@pytest.fixture
def augmented():
    real = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(parse_rate=0.6), real, TaskSpec.from_preset("sst2"), ratio=3, seed=1)
    return real, augmenter, augmenter.augment(batch_size=2)


def test_augment_computes_the_report_from_its_rows(augmented):
    real, augmenter, synthetic = augmented
    quality = augmenter.report.quality
    assert quality["rows"] == len(synthetic) > 0
    lm_labels = [max(range(2), key=row.__getitem__) for row in synthetic["soft_labels"]]
    assert quality["label_fractions"] == [lm_labels.count(0) / len(synthetic), lm_labels.count(1) / len(synthetic)]
    assert quality["real_label_fractions"] == [0.5, 0.5]
    agree = sum(w == s for w, s in zip(synthetic["written_label"], lm_labels, strict=True)) / len(synthetic)
    assert quality["written_lm_agreement"] == agree
    # On prompts whose examples have different labels only: elsewhere the last example's label is the prompt's.
    mixed = [(label, real["label"][ids[-1]]) for label, ids in zip(synthetic["label"], synthetic["source_ids"],
                                                                  strict=True)
             if len({real["label"][i] for i in ids}) > 1]
    assert 0 < len(mixed) < len(synthetic)
    assert quality["recency_rate"] == sum(a == b for a, b in mixed) / len(mixed)
    # Parse failures count the generations of dropped rows too, as the run's own counts do.
    assert quality["parse_failures"] == augmenter.report.parse_failures
    assert quality["parse_failure_rate"] == pytest.approx(augmenter.report.parse_failure_rate)
    assert 0 < quality["mean_label_confidence"] <= 1 and quality["exact_copy_of_real_rate"] == 0.0
    # Kept with the provenance.
    assert GPT3MixConfig.from_augmenter(augmenter, real).report.quality == quality


def test_debiased_rows_labels_are_compared_with_the_written_and_lm_labels(augmented):
    real, _, synthetic = augmented
    debiased = synthetic.map(lambda row: {"label": 0}, desc="label 0")
    quality = quality_report(debiased, real["text"], real["label"], label_mode="debiased", num_labels=2)
    written = synthetic["written_label"]
    assert quality["debiased_written_agreement"] == written.count(0) / len(written)
    lm_labels = [max(range(2), key=row.__getitem__) for row in synthetic["uncalibrated_soft_labels"]]
    assert quality["debiased_lm_agreement"] == lm_labels.count(0) / len(lm_labels)
    assert "debiased_lm_agreement" not in quality_report(synthetic, real["text"], real["label"])


def test_rows_without_a_label_distribution_have_no_balance_rather_than_zeros():
    rows = Dataset.from_dict({"text": ["good film"], "label": [1], "soft_labels": [[0.0, 1.0]],
                              "uncalibrated_soft_labels": [[]], "label_prior": [[]], "written_label": [1]})
    quality = quality_report(rows, ["x"], [0], label_mode="written", num_labels=2)
    assert quality["label_fractions"] is None and quality["label_balance_tvd"] is None
    assert quality["mean_label_confidence"] is None and quality["written_lm_agreement"] is None


def test_hard_rows_are_measured_on_the_lms_distribution_not_the_one_hot():
    rows = Dataset.from_dict({"text": ["good film"], "label": [1], "soft_labels": [[0.0, 1.0]],
                              "uncalibrated_soft_labels": [[0.3, 0.7]], "label_prior": [[]]})
    assert quality_report(rows, ["x"], [0], label_mode="hard")["mean_label_confidence"] == pytest.approx(0.7)


def test_the_dataset_card_and_the_report_command_show_the_quality(augmented, tmp_path, capsys):
    real, augmenter, synthetic = augmented
    config = GPT3MixConfig.from_augmenter(augmenter, real)
    card = build_dataset_card(synthetic, "me/x", config, license="mit")
    text = DatasetCard.load(_save(card, tmp_path)).text
    assert "### Quality of the synthetic rows" in text
    assert f"| recency_rate | {config.report.quality['recency_rate']:.4g} |" in text
    assert "negative: " in text.split("### Quality")[1]
    synthetic.save_to_disk(tmp_path / "run" / "synthetic")
    real.save_to_disk(tmp_path / "run" / "real")
    config.save_pretrained(tmp_path / "run")
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "run"), "--json", "true"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Computed again from the saved rows: the same numbers as when the rows were made (no failures.jsonl here,
    # so the dropped rows' failures are not counted).
    same = {key: value for key, value in config.report.quality.items() if not key.startswith("parse_failure")}
    assert {key: printed[key] for key in same} == same
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    assert "recency_rate" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "no synthetic/ folder" in capsys.readouterr().err


def _save(card, tmp_path):
    card.save(tmp_path / "README.md")
    return tmp_path / "README.md"
