"""The soft-label losses against hand-computed values and torch's own cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt3mix_hf.training.losses import kl_divergence, soft_cross_entropy


def test_soft_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    log_z0 = math.log(math.exp(2.0) + 1.0)
    log_z1 = math.log(1.0 + math.exp(1.0))
    expected = [
        -(0.5 * (2.0 - log_z0) + 0.5 * (0.0 - log_z0)),
        -(0.25 * (0.0 - log_z1) + 0.75 * (1.0 - log_z1)),
    ]
    losses = soft_cross_entropy(logits, targets)
    assert losses.shape == (2,)
    assert losses.tolist() == pytest.approx(expected, abs=1e-6)
    assert soft_cross_entropy(logits, targets, reduction="sum").item() == pytest.approx(sum(expected), abs=1e-6)
    assert soft_cross_entropy(logits, targets, reduction="mean").item() == pytest.approx(sum(expected) / 2, abs=1e-6)


def test_soft_cross_entropy_with_one_hot_targets_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(16, 5)
    labels = torch.randint(0, 5, (16,))
    ours = soft_cross_entropy(logits, F.one_hot(labels, 5).float(), reduction="mean")
    assert torch.allclose(ours, F.cross_entropy(logits, labels), atol=1e-6)


def test_weights_scale_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    plain = soft_cross_entropy(logits, targets)
    weighted = soft_cross_entropy(logits, targets, weights=torch.tensor([1.0, 0.25]))
    assert weighted.tolist() == pytest.approx([plain[0].item(), 0.25 * plain[1].item()], abs=1e-7)
    # The mean stays over rows: a down-weighted row lowers the loss.
    mean = soft_cross_entropy(logits, targets, weights=torch.tensor([1.0, 0.25]), reduction="mean")
    assert mean.item() == pytest.approx((plain[0].item() + 0.25 * plain[1].item()) / 2, abs=1e-7)


def test_kl_by_hand_with_temperature():
    logits = torch.tensor([[2.0, 0.0]])
    targets = torch.tensor([[0.5, 0.5]])
    temperature = 2.0
    z = math.exp(1.0) + 1.0
    probs = [math.exp(1.0) / z, 1.0 / z]
    expected = sum(t * math.log(t / p) for t, p in zip([0.5, 0.5], probs, strict=True)) * temperature**2
    assert kl_divergence(logits, targets, temperature=temperature).item() == pytest.approx(expected, abs=1e-6)
    # A target is tempered like the logits: (0.8, 0.2) at T=2 is (2/3, 1/3).
    expected = sum(t * math.log(t / p) for t, p in zip([2 / 3, 1 / 3], probs, strict=True)) * temperature**2
    value = kl_divergence(logits, torch.tensor([[0.8, 0.2]]), temperature=temperature).item()
    assert value == pytest.approx(expected, abs=1e-6)


def test_kl_with_one_hot_at_unit_temperature_is_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(8, 3)
    targets = F.one_hot(torch.randint(0, 3, (8,)), 3).float()
    assert torch.allclose(kl_divergence(logits, targets), soft_cross_entropy(logits, targets), atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-10, 10), min_size=3, max_size=3),
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    st.floats(0.5, 4.0),
)
def test_kl_is_non_negative_and_zero_at_the_target(logit_values, target_weights, temperature):
    logits = torch.tensor([logit_values])
    targets = torch.tensor([target_weights])
    targets = targets / targets.sum()
    assert kl_divergence(logits, targets, temperature).item() >= -1e-6
    # At any temperature, the loss is zero where the classifier (at T=1) gives the targets.
    matching_logits = torch.log(targets) + 3.0
    assert kl_divergence(matching_logits, targets, temperature).item() == pytest.approx(0.0, abs=1e-5)


def test_gradient_of_soft_cross_entropy_is_probs_minus_targets():
    logits = torch.tensor([[0.3, -0.2, 1.0]], requires_grad=True)
    targets = torch.tensor([[0.2, 0.3, 0.5]])
    soft_cross_entropy(logits, targets, reduction="sum").backward()
    assert torch.allclose(logits.grad, torch.softmax(logits.detach(), -1) - targets, atol=1e-6)


@pytest.mark.parametrize(
    ("logits", "targets", "weights", "message"),
    [
        (torch.zeros(3), torch.zeros(3), None, "must be 2-D"),
        (torch.zeros(2, 3), torch.zeros(2, 2), None, "shape of logits"),
        (torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3), "one value per row"),
    ],
)
def test_shape_errors(logits, targets, weights, message):
    with pytest.raises(ValueError, match=message):
        soft_cross_entropy(logits, targets, weights)
    with pytest.raises(ValueError, match=message):
        kl_divergence(logits, targets, weights=weights)


def test_bad_temperature_and_reduction():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kl_divergence(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), temperature=0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), reduction="batchmean")
