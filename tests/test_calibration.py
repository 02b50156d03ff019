"""The calibration arithmetic of "Calibrate Before Use" (Zhao et al., 2021), checked by hand."""

import math

import numpy as np
import pytest

from gpt3mix_hf.labels import calibrate, content_free_prior, debias, mean_distribution, normalize_logprobs


def test_hand_computed_calibration():
    # (0.6 / 0.75, 0.4 / 0.25) = (0.8, 1.6), renormalised: (1/3, 2/3).
    assert calibrate([0.6, 0.4], [0.75, 0.25]) == pytest.approx([1 / 3, 2 / 3])
    # Three labels: (0.5 / 0.5, 0.3 / 0.3, 0.2 / 0.2) = (1, 1, 1): the row only repeats the prior.
    assert calibrate([0.5, 0.3, 0.2], [0.5, 0.3, 0.2]) == pytest.approx([1 / 3] * 3)
    # (0.2 / 0.1, 0.2 / 0.4, 0.6 / 0.5) = (2, 0.5, 1.2), total 3.7.
    assert calibrate([0.2, 0.2, 0.6], [0.1, 0.4, 0.5]) == pytest.approx([2 / 3.7, 0.5 / 3.7, 1.2 / 3.7])


def test_hand_computed_prior_averages_probabilities_then_normalises():
    logprobs = [[math.log(0.2), math.log(0.6)], [math.log(0.4), math.log(0.2)]]
    # Mean probabilities (0.3, 0.4), normalised: (3/7, 4/7). (Averaging the normalised rows would give
    # ((0.25 + 0.667) / 2, ...) = (0.458, 0.542): the two readings differ, and Zhao et al.'s code does this one.)
    assert content_free_prior(logprobs) == pytest.approx([3 / 7, 4 / 7])
    # One content-free text: its normalised distribution.
    assert content_free_prior([[math.log(0.1), math.log(0.3)]]) == pytest.approx([0.25, 0.75])


def test_prior_is_stable_for_very_small_probabilities():
    assert content_free_prior([[-1000.0, -1001.0], [-1000.0, -1001.0]]) == pytest.approx(
        normalize_logprobs([-1000.0, -1001.0])
    )


def test_uniform_prior_is_the_identity():
    rng = np.random.default_rng(0)
    for num_labels in (2, 3, 6):
        p = rng.dirichlet([1.0] * num_labels).tolist()
        assert calibrate(p, [1 / num_labels] * num_labels) == pytest.approx(p)


def test_invariances():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, prior = rng.dirichlet([1.0] * 4), rng.dirichlet([1.0] * 4)
        expected = calibrate(p.tolist(), prior.tolist())
        assert sum(expected) == pytest.approx(1.0)
        # Scaling the prior (or the row) changes nothing: only ratios matter.
        assert calibrate(p.tolist(), (3.5 * prior).tolist()) == pytest.approx(expected)
        assert calibrate((0.2 * p).tolist(), prior.tolist()) == pytest.approx(expected)
        # Permuting the labels permutes the result.
        order = rng.permutation(4)
        assert calibrate(p[order].tolist(), prior[order].tolist()) == pytest.approx(np.array(expected)[order])
        # Calibrating with prior a then b is calibrating with their product.
        other = rng.dirichlet([1.0] * 4)
        twice = calibrate(calibrate(p.tolist(), prior.tolist()), other.tolist())
        assert twice == pytest.approx(calibrate(p.tolist(), (prior * other).tolist()))


def test_calibration_removes_a_bias_towards_one_label():
    # An LM that scores label 0 ten times higher than label 1 whatever the text: a row it finds neutral comes
    # out (10/11, 1/11); divided by the prior (10/11, 1/11) it is uniform, and one it finds positive wins.
    prior = content_free_prior([[math.log(10), 0.0]] * 3)
    assert calibrate([10 / 11, 1 / 11], prior) == pytest.approx([0.5, 0.5])
    assert np.argmax(calibrate([0.8, 0.2], prior)) == 1


@pytest.mark.parametrize(
    ("probabilities", "prior", "match"),
    [([0.5, 0.5], [1.0, 0.0], "no probability"), ([0.5, 0.5], [0.2, 0.3, 0.5], "same"),
     ([0.0, 0.0], [0.5, 0.5], "no probability to calibrate"), ([0.5, 0.5], [math.nan, 0.5], "no probability")],
)
def test_bad_input(probabilities, prior, match):
    with pytest.raises(ValueError, match=match):
        calibrate(probabilities, prior)


def test_bad_prior_input():
    with pytest.raises(ValueError, match="at least one"):
        content_free_prior([])
    with pytest.raises(ValueError, match="one log-probability per label"):
        content_free_prior([[0.0, 0.0], [0.0]])
    with pytest.raises(ValueError, match="zero probability"):
        content_free_prior([[-math.inf, -math.inf]])


def test_broken_scores_are_refused_not_turned_into_nan_labels():
    for broken in ([-1.0, math.nan], [math.inf, -1.0]):
        with pytest.raises(ValueError, match="finite or -inf"):
            normalize_logprobs(broken)
    assert normalize_logprobs([0.0, -math.inf]) == [1.0, 0.0]  # a label with no probability is a score


# The debiased label (this package's variant): order averaging and a task-level prior.


def test_hand_computed_mean_distribution():
    assert mean_distribution([[0.9, 0.1], [0.3, 0.7]]) == pytest.approx([0.6, 0.4])
    # Three labels, three rows: column sums (1.2, 0.9, 0.9) / 3.
    assert mean_distribution([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.6, 0.05, 0.35]]) == pytest.approx([0.4, 0.3, 0.3])
    # Unnormalised rows are renormalised after summing: (2 + 1, 2 + 1) -> uniform.
    assert mean_distribution([[2.0, 2.0], [1.0, 1.0]]) == pytest.approx([0.5, 0.5])
    assert mean_distribution([[0.2, 0.8]]) == pytest.approx([0.2, 0.8])


def test_hand_computed_debias():
    # Mean (0.6, 0.4); / (0.75, 0.25) = (0.8, 1.6); renormalised (1/3, 2/3).
    assert debias([[0.9, 0.1], [0.3, 0.7]], [0.75, 0.25]) == pytest.approx([1 / 3, 2 / 3])
    # A uniform prior only averages.
    assert debias([[0.9, 0.1], [0.3, 0.7]], [0.5, 0.5]) == pytest.approx([0.6, 0.4])


def test_averaging_two_orders_cancels_a_pull_towards_the_last_example():
    # The LM gives the last example's label 0.3 more than the text deserves (0.55 / 0.45): in the two orders of
    # a mixed-label prompt the pull points at each label once, and the average is the text's own distribution.
    text = np.array([0.55, 0.45])
    pull = np.array([0.3, -0.3])
    last_negative, last_positive = (text + pull).tolist(), (text - pull).tolist()
    assert int(np.argmax(last_negative)) == 0 and int(np.argmax(last_positive)) == 1  # each order follows recency
    assert debias([last_negative, last_positive], [0.5, 0.5]) == pytest.approx(text.tolist())


def test_batch_calibration_prior_makes_the_mean_prediction_uniform():
    # A label word the LM favours everywhere: dividing the rows' mean out balances the argmax shares.
    rows = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]
    prior = mean_distribution(rows)
    assert prior == pytest.approx([0.75, 0.25])
    labels = [int(np.argmax(debias([row], prior))) for row in rows]
    assert labels == [0, 0, 1, 1]
    assert [int(np.argmax(row)) for row in rows] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("distributions", "match"),
    [([], "at least one"), ([[]], "at least one"), ([[0.5, 0.5], [1.0]], "entries"), ([[0.0, 0.0]], "no probability")],
)
def test_mean_distribution_bad_input(distributions, match):
    with pytest.raises(ValueError, match=match):
        mean_distribution(distributions)


def test_debias_refuses_a_prior_without_probability_for_a_label():
    with pytest.raises(ValueError, match="no probability"):
        debias([[0.5, 0.5]], [1.0, 0.0])
