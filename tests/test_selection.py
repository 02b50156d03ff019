import os
import subprocess
import sys

import numpy as np
import pytest

from gpt3mix_hf.selection import ANCHOR, ExampleSelector, content_key, row_rng, row_seed, scoring_orders


def test_row_seed_and_content_key_are_the_same_in_every_process_and_release():
    # Regeneration rests on them: pinned values (a change of algorithm breaks every recorded dataset), and the
    # same values in a process with another hash seed (Python's hash() would differ there).
    assert row_seed(0, 1, 2) == 4529435921577843265
    assert content_key("a film .", "positive") == 609989472323500
    code = ("from gpt3mix_hf.selection import content_key, row_seed; "
            "print(row_seed(7, 3, 0), content_key('é ?', 'no'))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert outputs == {f"{row_seed(7, 3, 0)} {content_key('é ?', 'no')}\n"}
    assert len({row_seed(0, row, copy) for row in range(50) for copy in range(4)}) == 200


def test_content_key_depends_on_text_and_label_only():
    keys = {content_key("a film .", "positive"), content_key("a film .", "negative"),
            content_key("a film . ", "positive"), content_key("a film", ". positive")}
    assert len(keys) == 4


@pytest.mark.parametrize("strategy", ["uniform", "anchored", "class_balanced"])
def test_selection_depends_on_the_row_key_only(strategy):
    selector = ExampleSelector(labels=[0, 1] * 20, num_labels=2, k=3, strategy=strategy)
    keys = [content_key(f"row {i}", "x") for i in range(40)]
    first = [selector.select(row_rng(7, key, 0, 0)) for key in keys]
    again = [selector.select(row_rng(7, key, 0, 0)) for key in reversed(keys)]
    assert first == list(reversed(again))
    # And the draws are not all alike: the key matters.
    assert len({tuple(choice) for choice in first}) > 20


def test_anchored_prompt_holds_the_anchor_and_distinct_partners():
    selector = ExampleSelector(labels=[0, 1, 0, 1, 1], num_labels=2, k=4, strategy="anchored")
    for row in range(5):
        chosen = selector.select(row_rng(0, row), exclude=[row])
        assert chosen.count(ANCHOR) == 1 and len(set(chosen)) == 4 and row not in chosen


def test_uniform_draws_k_distinct_pool_rows_and_no_anchor():
    labels = [0, 1] * 10
    selector = ExampleSelector(labels=labels, num_labels=2, k=3, strategy="uniform")
    seen = set()
    for copy in range(200):
        chosen = selector.select(row_rng(0, 5, copy))
        assert ANCHOR not in chosen and len(set(chosen)) == 3
        assert all(0 <= i < len(labels) for i in chosen)
        seen.update(chosen)
    # Every pool row is reachable: the draw is over the whole pool.
    assert seen == set(range(len(labels)))
    first_positions = np.bincount([selector.select(row_rng(1, c))[0] for c in range(2000)], minlength=20)
    assert first_positions.min() > 50  # about 100 each when uniform


def test_anchor_is_not_always_first():
    selector = ExampleSelector(labels=[0, 1] * 10, num_labels=2, k=2, strategy="anchored")
    positions = {selector.select(row_rng(0, 0, copy)).index(ANCHOR) for copy in range(20)}
    assert positions == {0, 1}


def test_class_balanced_draws_partners_from_every_class():
    labels = [0] * 98 + [1, 2]
    selector = ExampleSelector(labels=labels, num_labels=3, k=2, strategy="class_balanced")
    partner_classes = set()
    for copy in range(60):
        chosen = selector.select(row_rng(1, 0, copy), exclude=[0])
        partner_classes.update(labels[i] for i in chosen if i != ANCHOR)
    assert partner_classes == {0, 1, 2}


def test_a_pool_too_small_for_distinct_partners_repeats_them():
    # The anchor is row 1 of a 3-row pool and k = 3: the two partners are the two other rows.
    selector = ExampleSelector([0, 1, 0], 2, k=3, strategy="anchored")
    assert sorted(selector.select(row_rng(0), exclude=[1])) == [-1, 0, 2]
    # Its copies fill the pool: the partners must repeat rather than loop forever.
    chosen = ExampleSelector([0, 0], 2, k=2, strategy="anchored").select(row_rng(0), exclude=[0, 1])
    assert chosen.count(ANCHOR) == 1 and len(chosen) == 2


@pytest.mark.parametrize("k", [0, -1, 4, 2.5, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        ExampleSelector([0, 1, 0], 2, k=k)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="uniform"):
        ExampleSelector([0, 1], 2, strategy="nearest")


def test_scoring_orders_put_each_example_last_once_then_the_other_permutations():
    assert scoring_orders(2, 1) == [(0, 1)]
    assert scoring_orders(2, 2) == [(0, 1), (1, 0)]
    three = scoring_orders(3, 6)
    assert three[:3] == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    assert {order[-1] for order in three[:3]} == {0, 1, 2}
    assert sorted(three) == sorted(set(three)) and len(three) == 6
    assert scoring_orders(3, 4) == three[:4]  # m orders are the first m of any larger m


@pytest.mark.parametrize(("k", "m"), [(2, 3), (2, 0), (1, 2), (0, 1), (2, True)])
def test_scoring_orders_bad_m(k, m):
    with pytest.raises(ValueError, match="must be an integer"):
        scoring_orders(k, m)
