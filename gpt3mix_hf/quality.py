"""The quality report of synthetic rows: the package's `evaluate` measurements (`gpt3mix_hf/measurements/`) run on
the rows of one augmentation and the real pool their prompts drew from.

`augment()` computes it when the rows are made (`AugmentationReport.quality`, kept in `gpt3mix_config.json`); the
dataset card and the CLI summary show it; `gpt3mix report <augmented_dir>` computes it for any augmented folder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from .labels import calibrate
from .measurements import load_measurement

# What each number means, in the order the card and the CLI show them.
QUALITY_DESCRIPTIONS = {
    "rows": "synthetic rows measured",
    "label_fractions": "share of each label, arg-max of the LM's label distribution",
    "real_label_fractions": "share of each label among the real rows",
    "label_balance_tvd": "total variation distance between the two (0: same balance)",
    "written_lm_agreement": "written label = arg-max of the LM's label distribution",
    "debiased_written_agreement": "debiased label = written label",
    "debiased_lm_agreement": "debiased label = arg-max of the LM's label distribution",
    "mean_label_confidence": "mean largest label probability",
    "unsure_rate": "rows whose largest label probability is below 0.5",
    "parse_failures": "generations that did not parse",
    "parse_failure_rate": "of all generations",
    "distinct_1": "distinct words / words",
    "distinct_2": "distinct word bigrams / bigrams",
    "distinct_3": "distinct word trigrams / trigrams",
    "exact_copy_of_prompt_rate": "rows that repeat one of their prompt's examples",
    "near_copy_of_prompt_rate": "rows sharing >= 80% of their word trigrams with one of their examples",
    "mean_prompt_overlap": "mean trigram overlap with the closest example of the prompt",
    "exact_copy_of_real_rate": "rows that repeat any real row",
    "near_copy_of_real_rate": "rows sharing >= 80% of their word trigrams with one real row",
    "mean_real_overlap": "mean trigram overlap with the closest real row",
    "recency_rate": "rows labelled like the last example of their prompt, among prompts whose examples differ "
                    "in label",
    "recency_rate_if_independent": "the same, expected if labels ignored the last example",
    "mean_words": "mean words per synthetic text",
    "real_mean_words": "mean words per real text",
    "length_ratio": "synthetic / real mean length",
}


def lm_distributions(synthetic: Dataset, label_mode: str | None = "soft") -> list[list[float]]:
    """The LM's label distribution of each row, as the labels were read from it: `soft_labels` in the soft mode;
    in the others (where `soft_labels` is one-hot) the raw distribution the rows keep, calibrated with the row's
    prior when it has one. An empty list where a row has none."""
    columns = synthetic.column_names
    if label_mode in (None, "soft") or "uncalibrated_soft_labels" not in columns:
        return [list(row) for row in synthetic["soft_labels"]] if "soft_labels" in columns else []
    priors = synthetic["label_prior"] if "label_prior" in columns else [[]] * len(synthetic)
    distributions = []
    for raw, prior in zip(synthetic["uncalibrated_soft_labels"], priors, strict=True):
        distributions.append(calibrate(list(raw), list(prior)) if len(raw) and len(prior) else list(raw))
    return distributions


def _argmax(distributions: list[list[float]]) -> list[int]:
    return [int(np.argmax(row)) if len(row) else -1 for row in distributions]


def _debiased_labels(synthetic: Dataset, label_mode: str | None) -> list[int] | None:
    """The debiased labelling of rows made in the `debiased` label mode (their `label`); None for other rows."""
    if label_mode == "debiased":
        return [int(label) for label in synthetic["label"]]
    return None


def quality_report(
    synthetic: Dataset,
    real_texts: Sequence[str],
    real_labels: Sequence[int],
    *,
    label_mode: str | None = "soft",
    num_labels: int | None = None,
    dropped_failures: int = 0,
) -> dict:
    """Every quality measurement of `synthetic` (the rows `augment()` made) against the real pool their prompts'
    examples came from (`source_ids` index it).

    Args:
        synthetic (`Dataset`): the synthetic rows (the augmenter's columns; a missing column skips what needs it).
        real_texts, real_labels: the pool, in the order `source_ids` index.
        label_mode (`str`, *optional*): how the rows were labelled; decides where the LM's distribution is read.
        num_labels (`int`, *optional*): the number of labels.
        dropped_failures (`int`): failed generations of rows dropped after every attempt (`report.failures`).

    Returns:
        `dict`: the measurements' results merged (keys as `QUALITY_DESCRIPTIONS`), plus `rows`.

    Example:

    >>> quality = quality_report(synthetic, train["text"], train["label"], label_mode="soft")
    >>> quality["recency_rate"], quality["distinct_2"]
    """
    columns = synthetic.column_names
    real_texts, real_labels = list(real_texts), [int(label) for label in real_labels]
    report: dict = {"rows": len(synthetic)}
    if not len(synthetic):
        return report
    distributions = lm_distributions(synthetic, label_mode)
    lm_labels = _argmax(distributions) if distributions else None
    if lm_labels is not None:
        known = [label for label in lm_labels if label >= 0]
        report.update(load_measurement("label_balance").compute(labels=known, real_labels=real_labels,
                                                                num_labels=num_labels))
        report.update(load_measurement("label_confidence").compute(soft_labels=distributions))
        if "written_label" in columns:
            report.update(load_measurement("label_agreement").compute(
                written_labels=synthetic["written_label"], lm_labels=lm_labels,
                debiased_labels=_debiased_labels(synthetic, label_mode),
            ))
    if "failed_attempts" in columns:
        report.update(load_measurement("parse_failures").compute(
            failed_attempts=[len(attempts) for attempts in synthetic["failed_attempts"]],
            dropped_failures=dropped_failures,
        ))
    texts = synthetic["text"]
    report.update(load_measurement("distinct_n").compute(texts=texts))
    if "source_ids" in columns:
        # -1 is the mapped row itself when it is not in the pool: its text is not known here.
        shown = [[real_texts[i] for i in ids if 0 <= i < len(real_texts)] for ids in synthetic["source_ids"]]
        report.update(load_measurement("text_copies").compute(texts=texts, prompt_texts=shown,
                                                              real_texts=real_texts))
        # Judged on prompts whose examples have different labels: on the others, following the last example is
        # following the prompt's one class, not a bias for the last position.
        last = [real_labels[ids[-1]] if _mixed_labels(ids, real_labels) else -1 for ids in synthetic["source_ids"]]
        report.update(load_measurement("recency").compute(labels=synthetic["label"], last_example_labels=last))
    report.update(load_measurement("text_length").compute(texts=texts, real_texts=real_texts))
    return report


def _mixed_labels(source_ids: list[int], real_labels: list[int]) -> bool:
    """Whether a prompt's examples (pool ids, all known) have more than one label."""
    if not source_ids or not all(0 <= i < len(real_labels) for i in source_ids):
        return False
    return len({real_labels[i] for i in source_ids}) > 1


def _shown(value, label_names: list[str] | None) -> str:
    if isinstance(value, list):
        names = label_names if label_names and len(label_names) == len(value) else range(len(value))
        return ", ".join(f"{name}: {fraction:.1%}" for name, fraction in zip(names, value, strict=True))
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def quality_rows(quality: dict, label_names: list[str] | None = None) -> list[dict]:
    """The report as rows (`measurement`, `value`, `meaning`) for a markdown table or the CLI."""
    rows = []
    for key, meaning in QUALITY_DESCRIPTIONS.items():
        if key in quality:
            rows.append({"measurement": key, "value": _shown(quality[key], label_names), "meaning": meaning})
    return rows


def format_quality(quality: dict, label_names: list[str] | None = None) -> str:
    """The report as aligned text lines, for the CLI."""
    rows = quality_rows(quality, label_names)
    width = max((len(row["measurement"]) for row in rows), default=0)
    return "\n".join(f"  {row['measurement']:<{width}}  {row['value']}   ({row['meaning']})" for row in rows)
