"""Every float a public entry point takes is refused when it is NaN or infinite (issue: numbers and emptiness)."""

import math

import pytest
from conftest import ScriptedBackend

from gpt3mix_hf import GPT3MixAugmenter, GPT3MixTrainingArguments, SamplingConfig, ServedConfig, TaskSpec
from gpt3mix_hf.experiment import ExperimentArguments

NOT_FINITE = [math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_sampling_config(name, value):
    with pytest.raises(ValueError, match=name):
        SamplingConfig(**{name: value})


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("name", ["temperature", "synthetic_weight", "soft_label_tolerance"])
def test_training_arguments(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        GPT3MixTrainingArguments(str(tmp_path), report_to="none", **{name: value})


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("name", ["timeout", "backoff_max"])
def test_served_config(name, value):
    with pytest.raises(ValueError, match=name):
        ServedConfig(**{name: value})


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("name", ["learning_rate", "num_train_epochs", "warmup_steps"])
def test_experiment_arguments(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        ExperimentArguments(dataset="sst2", output_dir=str(tmp_path), **{name: value})


@pytest.mark.parametrize("value", [*NOT_FINITE, True])
def test_augmenter_ratio(toy_sentiment, value):
    with pytest.raises(ValueError, match="ratio"):
        GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, TaskSpec.from_preset("sst2"), ratio=value)
