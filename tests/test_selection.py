import pytest

from gpt3mix_hf.selection import ExampleSelector, row_rng, row_seed


def test_row_seed_is_stable_and_distinct():
    assert row_seed(0, 1, 2) == row_seed(0, 1, 2)
    assert len({row_seed(0, row, copy) for row in range(50) for copy in range(4)}) == 200


def test_selection_depends_on_the_row_key_only():
    selector = ExampleSelector(labels=[0, 1] * 20, num_labels=2, k=3)
    first = [selector.select(row, row_rng(7, row, 0, 0)) for row in range(40)]
    again = [selector.select(row, row_rng(7, row, 0, 0)) for row in reversed(range(40))]
    assert first == list(reversed(again))


def test_prompt_holds_the_anchor_and_distinct_partners():
    selector = ExampleSelector(labels=[0, 1, 0, 1, 1], num_labels=2, k=4)
    for row in range(5):
        chosen = selector.select(row, row_rng(0, row))
        assert row in chosen and len(set(chosen)) == 4


def test_anchor_is_not_always_first():
    selector = ExampleSelector(labels=[0, 1] * 10, num_labels=2, k=2)
    positions = {selector.select(0, row_rng(0, 0, copy)).index(0) for copy in range(20)}
    assert positions == {0, 1}


def test_class_balanced_draws_partners_from_every_class():
    labels = [0] * 98 + [1, 2]
    selector = ExampleSelector(labels=labels, num_labels=3, k=2, strategy="class_balanced")
    partner_classes = set()
    for copy in range(60):
        chosen = selector.select(0, row_rng(1, 0, copy))
        partner_classes.update(labels[i] for i in chosen if i != 0)
    assert partner_classes == {0, 1, 2}


def test_k_equal_to_dataset_size_uses_every_row():
    assert sorted(ExampleSelector([0, 1, 0], 2, k=3).select(1, row_rng(0))) == [0, 1, 2]


@pytest.mark.parametrize("k", [0, -1, 4, 2.5])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        ExampleSelector([0, 1, 0], 2, k=k)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="uniform"):
        ExampleSelector([0, 1], 2, strategy="nearest")
