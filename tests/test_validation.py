"""The one check of a value's kind (`gpt3mix_hf.validation`): every field of every public config dataclass, and
the public constructors, refuse values of the wrong kind when they are built, naming the field."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields

import pytest
from conftest import ScriptedBackend, make_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import TrainingArguments

from gpt3mix_hf import (
    GPT3MixAugmenter,
    GPT3MixConfig,
    GPT3MixDatasetCardData,
    GPT3MixModelCardData,
    GPT3MixTrainingArguments,
    OpenAIBackend,
    PromptTemplate,
    SamplingConfig,
    ServedConfig,
    TaskSpec,
    TGIBackend,
)
from gpt3mix_hf.cli.augment import AugmentArguments
from gpt3mix_hf.cli.experiment import SummaryArguments
from gpt3mix_hf.cli.push import DatasetArguments, ModelArguments, PushArguments
from gpt3mix_hf.cli.train import TrainArguments
from gpt3mix_hf.config import AugmenterConfig
from gpt3mix_hf.data import DataArguments, DataSourceArguments
from gpt3mix_hf.experiment import ExperimentArguments
from gpt3mix_hf.provenance import DataSource, RunSettings, TaskSection
from gpt3mix_hf.spec import TaskSpecArguments
from gpt3mix_hf.validation import ConfigTypeError, _resolved_hints, check_fields

SPEC = {"text_type": "review", "label_type": "sentiment", "verbalizer": {"negative": "negative", "positive": "good"}}
TASK = {"spec": TaskSpec(**SPEC), "template": PromptTemplate(), "label_names": ["negative", "positive"]}

# Every public config dataclass, with the keyword arguments of one valid instance (its required fields).
DATACLASSES = {
    SamplingConfig: {},
    ServedConfig: {},
    TaskSpec: SPEC,
    PromptTemplate: {},
    DataSource: {},
    AugmenterConfig: {},
    TaskSection: TASK,
    RunSettings: {},
    GPT3MixConfig: {"augmenter": AugmenterConfig(), "backend": {"backend": "scripted"}, "task": TaskSection(**TASK)},
    DataSourceArguments: {},
    TaskSpecArguments: {},
    ExperimentArguments: {"output_dir": "out"},
    DataArguments: {},
    AugmentArguments: {"output_dir": "out"},
    TrainArguments: {"augmented_dir": "in"},
    SummaryArguments: {},
    PushArguments: {"repo_id": "me/x"},
    DatasetArguments: {"dataset_dir": "in"},
    ModelArguments: {"model_dir": "in"},
    GPT3MixDatasetCardData: {},
    GPT3MixModelCardData: {"model_id": "me/x"},
    GPT3MixTrainingArguments: {"output_dir": "out", "report_to": "none"},
}

TEXT = st.text(max_size=8)
FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer())
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _core(hint):
    """`X` for `X | None`; None where the hint is not one kind."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        return options[0] if len(options) == 1 else None
    return hint


def wrong_values(hint, choices=None):
    """A strategy of values that are not of the kind `hint` (or not among `choices`); None where not covered."""
    hint = _core(hint)
    if choices is not None and hint is str:
        return TEXT.filter(lambda text: text not in choices)
    if hint is bool:
        return st.one_of(st.sampled_from(["no", "false", "True", ""]), st.integers(), st.floats())
    if hint is int:
        return st.one_of(FRACTIONS, NON_FINITE, st.booleans(), st.sampled_from(["2", "two"]))
    if hint is float:
        return st.one_of(NON_FINITE, st.booleans(), st.sampled_from(["0.5", "nan"]))
    if hint is str:
        return st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(TEXT, max_size=2))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if item is str:
            return st.one_of(TEXT, st.lists(st.integers(), min_size=1, max_size=3))
        if item in (int, float):
            return st.one_of(TEXT, st.lists(st.sampled_from(["1", math.nan, True]), min_size=1, max_size=3))
    if typing.get_origin(hint) is dict:
        return st.one_of(TEXT, st.lists(st.integers(), max_size=2))
    return None


def checked_fields(cls):
    """(name, strategy of wrong values) for each field of `cls` the validator checks and this test can fake."""
    hints = _resolved_hints(cls)
    found = []
    for item in fields(cls):
        if not item.init:
            continue
        inherited = cls is GPT3MixTrainingArguments and item.name in TrainingArguments.__dataclass_fields__
        if inherited and _core(hints[item.name]) not in (int, float, bool):
            continue  # TrainingArguments' other fields keep transformers' own checks
        strategy = wrong_values(hints.get(item.name), item.metadata.get("choices"))
        if strategy is not None:
            found.append((item.name, strategy))
    return found


def test_every_public_dataclass_is_covered():
    cases = {(cls.__name__, name) for cls in DATACLASSES for name, _ in checked_fields(cls)}
    assert ("SamplingConfig", "max_new_tokens") in cases
    assert ("ServedConfig", "max_total_tokens") in cases
    assert ("GPT3MixTrainingArguments", "warmup_steps") in cases
    assert ("PushArguments", "private") in cases
    assert ("GPT3MixConfig", "format_version") in cases
    for cls, kwargs in DATACLASSES.items():
        cls(**kwargs)  # the valid instance builds


@pytest.mark.parametrize("cls", list(DATACLASSES), ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_kinds_are_refused_when_built(cls, data):
    name, strategy = data.draw(st.sampled_from(checked_fields(cls)), label="field")
    value = data.draw(strategy, label="value")
    with pytest.raises(ConfigTypeError, match=rf"{cls.__name__}\.{name}="):
        cls(**{**DATACLASSES[cls], name: value})


def test_the_examples_of_the_issue():
    with pytest.raises(ValueError, match=r"max_total_tokens=nan .*whole number"):
        ServedConfig(max_total_tokens=math.nan)
    with pytest.raises(ValueError, match=r"max_new_tokens=2.5 .*not a fraction"):
        SamplingConfig(max_new_tokens=2.5)
    with pytest.raises(ValueError, match=r"warmup_steps=inf .*finite"):
        GPT3MixTrainingArguments("out", warmup_steps=math.inf, report_to="none")
    with pytest.raises(ValueError, match=r"private='no' .*boolean"):
        PushArguments("me/x", private="no")
    with pytest.raises(ValueError, match=r"metric='acc' .*choose one of \['accuracy'"):
        SummaryArguments(metric="acc")


def test_enumerations_list_their_choices():
    with pytest.raises(ValueError, match=r"backend='vllm' .*choose one of \['transformers', 'openai', 'tgi'\]"):
        AugmentArguments("out", backend="vllm")


def test_a_config_file_of_the_wrong_kinds_names_the_section(tmp_path):
    valid = GPT3MixConfig(AugmenterConfig(), {"backend": "scripted"}, TaskSection(**TASK)).to_dict()
    task = valid["task"]
    for values, message in (
        ({**valid, "format_version": "2"}, "format_version '2'"),
        ({**valid, "format_version": None}, "format_version None"),
        ({**valid, "task": {**task, "spec": "sst2"}}, r"`task` .*TaskSection.spec='sst2'"),
        ({**valid, "augmenter": {"k": 2.5}}, r"AugmenterConfig.k=2.5"),
        ({**valid, "augmenter": {"keep_prompt": "yes"}}, r"AugmenterConfig.keep_prompt='yes'"),
    ):
        with pytest.raises(ValueError, match=message):
            GPT3MixConfig.from_dict(values, where="f.json")


def test_constructors_check_their_keywords():
    pool = make_dataset(["a fine film", "a dull film", "great", "awful"], [1, 0, 1, 0], ["negative", "positive"])
    backend = ScriptedBackend()
    for kwargs, message in (
        ({"k": 2.0}, r"AugmenterConfig.k=2.0"),
        ({"ratio": math.nan}, r"ratio=nan"),
        ({"seed": "0"}, r"seed='0'"),
        ({"calibrate": "yes"}, r"calibrate='yes'"),
        ({"keep_prompt": 1}, r"keep_prompt=1"),
        ({"max_attempts": True}, r"max_attempts=True"),
        ({"text_column": 0}, r"text_column=0"),
    ):
        with pytest.raises(ValueError, match=message):
            GPT3MixAugmenter(backend, pool, **kwargs)
    with pytest.raises(ValueError, match=r"OpenAIBackend.top_logprobs=True"):
        OpenAIBackend("http://127.0.0.1:1/v1", top_logprobs=True)
    with pytest.raises(ValueError, match=r"TGIBackend.top_n_tokens=2.5"):
        TGIBackend("http://127.0.0.1:1", top_n_tokens=2.5)
    with pytest.raises(ValueError, match=r"OpenAIBackend.model=3"):
        OpenAIBackend("http://127.0.0.1:1/v1", model=3)


def test_check_fields_takes_only_dataclasses():
    with pytest.raises(TypeError):
        check_fields(object())


def test_the_baselines_check_their_keywords():
    from gpt3mix_hf.experiment.baselines import EDAAugmenter

    for kwargs, message in (({"num_aug": 2.5}, "num_aug=2.5"), ({"alpha_sr": math.nan}, "alpha_sr=nan"),
                            ({"clean": "no"}, "clean='no'"), ({"seed": True}, "seed=True")):
        with pytest.raises(ValueError, match=rf"EDAAugmenter.{message}"):
            EDAAugmenter(**kwargs)


def test_augment_and_the_local_backend_check_before_the_work():
    from gpt3mix_hf import TransformersBackend

    with pytest.raises(ValueError, match=r"TransformersBackend.batch_size=2.5"):
        TransformersBackend.from_pretrained("/no/such/model", batch_size=2.5)  # refused before any loading
    pool = make_dataset(["a fine film", "a dull film", "great", "awful"], [1, 0, 1, 0], ["negative", "positive"])
    augmenter = GPT3MixAugmenter(ScriptedBackend(), pool)
    for kwargs, message in (({"batch_size": 2.5}, "augment.batch_size=2.5"), ({"shard_size": "8"}, "shard_size='8'"),
                            ({"num_proc": True}, "num_proc=True")):
        with pytest.raises(ValueError, match=message):
            augmenter.augment(pool, **kwargs)
    with pytest.raises(ValueError, match=r"content_free_texts='N/A'"):
        GPT3MixAugmenter(ScriptedBackend(), pool, content_free_texts="N/A")


def test_a_credential_of_the_wrong_kind_is_named_not_shown():
    with pytest.raises(ValueError, match=r"api_key=<hidden> \(bytes\)") as error:
        OpenAIBackend("http://127.0.0.1:1/v1", api_key=b"sk-abcdefghijklmnopqrstuvwxyz")
    assert "abcdefghij" not in str(error.value)
