"""From the LM's label-sequence log-probabilities to the soft label p(y | x'), and its calibration.

Calibration follows "Calibrate Before Use" (Zhao et al., 2021): the LM's bias towards some label words is
estimated by scoring the label words after content-free texts ("N/A", "", "[MASK]") in the same prompt, and
divided out of each row's distribution (their W = diag(p_cf)^-1, b = 0), which is then renormalised.
"""

from __future__ import annotations

import math

# Zhao et al.'s content-free inputs, averaged.
CONTENT_FREE_TEXTS = ("N/A", "", "[MASK]")


def normalize_logprobs(logprobs: list[float]) -> list[float]:
    """p(y) ∝ exp(logprobs[y]), computed stably. Raises if no label has any probability, or a score is NaN or
    +inf."""
    if not logprobs:
        raise ValueError("No label log-probabilities to normalise.")
    if any(math.isnan(value) or value == math.inf for value in logprobs):
        raise ValueError(f"Label log-probabilities must be finite or -inf, got {logprobs}: the backend's scores are "
                         "broken.")
    top = max(logprobs)
    if not math.isfinite(top):
        raise ValueError(f"Every label has zero probability (log-probabilities {logprobs}): nothing to normalise.")
    weights = [math.exp(value - top) for value in logprobs]
    total = sum(weights)
    return [weight / total for weight in weights]


def one_hot(label: int, num_labels: int) -> list[float]:
    return [1.0 if i == label else 0.0 for i in range(num_labels)]


def content_free_prior(logprobs: list[list[float]]) -> list[float]:
    """The LM's label prior p_cf from the label log-probabilities after each content-free text.

    As in Zhao et al.'s code (`get_p_content_free`), the label probabilities are averaged over the
    content-free texts, then normalised: p_cf(y) ∝ mean_j exp(logprobs[j][y]).

    Args:
        logprobs (`list[list[float]]`): one row per content-free text, one log-probability per label.

    Example:

    >>> content_free_prior([[math.log(0.2), math.log(0.6)], [math.log(0.4), math.log(0.2)]])  # mean (0.3, 0.4)
    [0.428..., 0.571...]
    """
    if not logprobs or not logprobs[0]:
        raise ValueError("No content-free label log-probabilities: score at least one content-free text.")
    num_labels = len(logprobs[0])
    if any(len(row) != num_labels for row in logprobs):
        raise ValueError(f"Every content-free text needs one log-probability per label; got {logprobs}.")
    # log mean_j exp(l_jy), by a log-sum-exp per label; the constant log(J) cancels in the normalisation.
    summed = []
    for label in range(num_labels):
        column = [row[label] for row in logprobs]
        top = max(column)
        summed.append(top + math.log(sum(math.exp(v - top) for v in column)) if math.isfinite(top) else top)
    return normalize_logprobs(summed)


def calibrate(probabilities: list[float], prior: list[float]) -> list[float]:
    """q(y) ∝ p(y) / p_cf(y): the label distribution with the LM's content-free prior divided out.

    A uniform prior leaves `probabilities` as they are; scaling the prior changes nothing; a row that only
    repeats the prior becomes uniform.

    Args:
        probabilities (`list[float]`): the row's label distribution.
        prior (`list[float]`): the content-free prior (`content_free_prior`), every entry > 0.

    Example:

    >>> calibrate([0.6, 0.4], [0.75, 0.25])  # (0.8, 1.6) renormalised
    [0.333..., 0.666...]
    """
    if len(probabilities) != len(prior) or not prior:
        raise ValueError(
            f"The label distribution ({len(probabilities)} labels) and the prior ({len(prior)}) must have the "
            "same, non-zero length."
        )
    if any(not math.isfinite(p) or p <= 0 for p in prior):
        raise ValueError(
            f"The content-free prior {prior} gives a label no probability: it cannot be divided out. (A served "
            "backend that only sees its top-k alternatives misses rare label words: raise its top_logprobs.)"
        )
    weights = [p / q for p, q in zip(probabilities, prior, strict=True)]
    total = sum(weights)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"The label distribution {probabilities} has no probability to calibrate.")
    return [weight / total for weight in weights]


def top_k_label_logprobs(alternatives: dict[str, float], continuations: list[str]) -> tuple[list[float], float, int]:
    """Label log-probabilities from the top-k alternatives at the label's first token (for servers that cannot
    score prompt tokens).

    A token counts for a label when, without case and surrounding spaces, it is the label word or a prefix of
    it that no other label word shares; all such variants (" Positive", "positive", " pos"...) are summed. A
    label with no variant in the top k gets the largest probability it could have: the smallest of the top k's,
    and at most the mass the top k left over, shared among the missing labels.

    Returns the log-probabilities, the mass the labels' variants covered, and how many labels were missing.

    Example:

    >>> alternatives = {" Positive": -1.2, " negative": -0.9, " the": -2.0}
    >>> logprobs, mass, missing = top_k_label_logprobs(alternatives, [" negative", " positive"])
    """
    words = [c.strip().lower() for c in continuations]
    found = [0.0] * len(words)
    for token, logprob in alternatives.items():
        if logprob is None:
            continue
        piece = token.strip().lower()
        if not piece:
            continue
        owners = [i for i, word in enumerate(words) if word.startswith(piece)]
        if len(owners) == 1:
            found[owners[0]] += math.exp(logprob)
    covered = sum(found)
    missing = [i for i, p in enumerate(found) if p == 0.0]
    if missing:
        probabilities = [math.exp(v) for v in alternatives.values() if v is not None]
        leftover = max(0.0, 1.0 - sum(probabilities))
        bound = min(min(probabilities), leftover / len(missing)) if probabilities else 0.0
        for i in missing:
            found[i] = bound
    logprobs = [math.log(p) if p > 0 else -math.inf for p in found]
    return logprobs, covered, len(missing)


def mean_distribution(distributions: list[list[float]]) -> list[float]:
    """The mean of label distributions, renormalised.

    Two uses: the order-averaged label of one text (its distributions under the m scoring prompts of
    `selection.scoring_orders`), and the task's label prior of Batch Calibration (Zhou et al., 2024): the mean
    label distribution over many scored texts.

    Args:
        distributions (`list[list[float]]`): one distribution per prompt (or per text), one entry per label.

    Example:

    >>> mean_distribution([[0.9, 0.1], [0.3, 0.7]])  # (0.6, 0.4)
    [0.6, 0.399...]
    """
    if not distributions or not distributions[0]:
        raise ValueError("No label distributions to average: give at least one, with one entry per label.")
    num_labels = len(distributions[0])
    if any(len(row) != num_labels for row in distributions):
        raise ValueError(
            f"Every label distribution needs {num_labels} entries (one per label); got lengths "
            f"{sorted({len(row) for row in distributions})}."
        )
    sums = [sum(row[label] for row in distributions) for label in range(num_labels)]
    total = sum(sums)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"The label distributions {distributions} have no probability to average.")
    return [value / total for value in sums]


def debias(distributions: list[list[float]], prior: list[float]) -> list[float]:
    """The debiased soft label (a variant of this package, not the paper's): the mean of one text's label
    distributions under m scoring prompts whose examples differ in order, with the task's label prior divided
    out and renormalised, q(y) ∝ mean_j p_j(y) / prior(y).

    Averaging over orders cancels the LM's pull towards the last example's label; dividing by a task-level
    prior (Batch Calibration's mean label distribution, Zhou et al. 2024) removes the label words' own bias
    without dividing out the examples' signal, as a per-prompt prior does.

    Args:
        distributions (`list[list[float]]`): the text's label distribution under each scoring prompt.
        prior (`list[float]`): the task's label prior, every entry > 0 (a uniform prior only averages).

    Example:

    >>> debias([[0.9, 0.1], [0.3, 0.7]], [0.75, 0.25])  # mean (0.6, 0.4) / prior (0.75, 0.25) = (0.8, 1.6)
    [0.333..., 0.666...]
    """
    return calibrate(mean_distribution(distributions), prior)
