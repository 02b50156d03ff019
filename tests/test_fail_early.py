"""Fail before the work: what would fail after a long generation or at the first evaluation is said up front."""

from __future__ import annotations

import logging

import pytest
from conftest import ScriptedBackend, make_dataset
from datasets import Dataset

from gpt3mix_hf import GPT3MixAugmenter, TaskSpec
from gpt3mix_hf.trainer import validate_soft_labels

TEXTS = ["a gripping film .", "dull and long .", "the best of the year .", "an embarrassment ."]


def test_map_names_remove_columns_before_generating_when_extra_columns_cannot_be_carried(caplog):
    pool = make_dataset(TEXTS, [1, 0, 1, 0], ["negative", "positive"])
    backend = ScriptedBackend(parse_rate=1.0)
    augmenter = GPT3MixAugmenter(backend, pool, TaskSpec.from_preset("sst2"), ratio=2)
    extra = pool.add_column("idx", list(range(len(pool))))
    logger = logging.getLogger("gpt3mix_hf")
    logger.addHandler(caplog.handler)
    try:
        with pytest.raises(Exception):  # noqa: B017 - datasets' own (pyarrow) length error
            extra.map(augmenter, batched=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert "remove_columns=dataset.column_names" in caplog.text and "['idx']" in caplog.text
    rows = extra.map(augmenter, batched=True, remove_columns=extra.column_names, features=augmenter.features)
    assert len(rows) == 2 * len(pool)


@pytest.mark.parametrize("rows, message", [
    ([[0.5, 0.5], []], "An empty soft label marks a synthetic row that failed"),
    ([[0.5, 0.5], [1.0]], "at least 2 labels"),
    ([[0.5, 0.5], [0.2, 0.3, 0.5]], "num_labels=3"),
])
def test_soft_label_width_errors_never_suggest_fewer_than_two_labels(rows, message):
    with pytest.raises(ValueError, match=message) as error:
        validate_soft_labels(rows, 2, 1e-3)
    assert "num_labels=0" not in str(error.value) and "num_labels=1" not in str(error.value)
    assert isinstance(Dataset.from_dict({"a": [1]}), Dataset)
