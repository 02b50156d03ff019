"""The soft-label losses of GPT3Mix as pure functions of tensors.

Both return one loss per row by default (`reduction="none"`), so that the trainer can sum them and divide by the
number of rows of the whole accumulated batch (`num_items_in_batch`), which keeps gradient accumulation exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "sum", "mean")


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> None:
    if logits.dim() != 2:
        raise ValueError(
            f"logits must be 2-D (rows, num_labels); got shape {tuple(logits.shape)}. For a single row, use "
            "logits.unsqueeze(0)."
        )
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets must have the shape of logits {tuple(logits.shape)}: one probability per label and row; got "
            f"{tuple(targets.shape)}. Class indices must be turned into distributions first (e.g. F.one_hot)."
        )
    if weights is not None and weights.shape != logits.shape[:1]:
        raise ValueError(
            f"weights must hold one value per row, shape ({logits.shape[0]},); got {tuple(weights.shape)}."
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}.")


def _reduce(losses: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weights is not None:
        losses = losses * weights.to(losses.dtype)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        # The mean is over rows, not over the weights: a weight of 0.5 halves a row's share of the loss.
        return losses.mean()
    return losses


def soft_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """Cross-entropy against a soft label, `-sum_c targets[c] * log_softmax(logits)[c]` per row (the GPT3Mix loss).

    With one-hot targets this is the usual cross-entropy.

    Args:
        logits (`torch.Tensor` of shape `(rows, num_labels)`): the classifier's unnormalised scores.
        targets (`torch.Tensor` of shape `(rows, num_labels)`): a probability distribution per row.
        weights (`torch.Tensor` of shape `(rows,)`, *optional*): a multiplier per row (e.g. for synthetic rows).
        reduction (`str`, *optional*, defaults to `"none"`): `"none"` (one loss per row), `"sum"` or `"mean"`.

    Example:

    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> soft_cross_entropy(logits, torch.tensor([[0.5, 0.5]]))
    tensor([1.1269])
    """
    _check_shapes(logits, targets, weights, reduction)
    losses = F.cross_entropy(logits, targets.to(logits.dtype), reduction="none")
    return _reduce(losses, weights, reduction)


def kl_divergence(
    logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    weights: torch.Tensor | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """`KL(softmax(log(targets) / T) || softmax(logits / T)) * T**2` per row: knowledge distillation (Hinton et
    al., 2015) with the LM as the teacher.

    The targets are tempered as the classifier is (`targets ** (1 / T)`, renormalised: the LM's log-probabilities
    are its logits), so the loss is lowest where the classifier, at `T = 1`, gives the LM's distribution, whatever
    `T`; one-hot targets stay one-hot. The `T**2` factor keeps the gradients about the same size across
    temperatures, as in distillation.

    Args:
        logits (`torch.Tensor` of shape `(rows, num_labels)`): the classifier's unnormalised scores.
        targets (`torch.Tensor` of shape `(rows, num_labels)`): a probability distribution per row.
        temperature (`float`, *optional*, defaults to 1.0): `T > 0`.
        weights (`torch.Tensor` of shape `(rows,)`, *optional*): a multiplier per row.
        reduction (`str`, *optional*, defaults to `"none"`): `"none"` (one loss per row), `"sum"` or `"mean"`.

    Example:

    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> kl_divergence(logits, torch.tensor([[1.0, 0.0]]))
    tensor([0.1269])
    """
    _check_shapes(logits, targets, weights, reduction)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    # log(0) = -inf keeps a zero target zero; kl_div takes 0 * log(0) as 0, so one-hot targets are fine.
    tempered = F.softmax(torch.log(targets.to(log_probs.dtype)) / temperature, dim=-1)
    losses = F.kl_div(log_probs, tempered, reduction="none").sum(dim=-1) * temperature**2
    return _reduce(losses, weights, reduction)
