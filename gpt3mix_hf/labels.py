"""From each generation to its synthetic row's label: the label words' scores, the content-free prior, the
label mode, and `relabel` to derive the other label variants from rows already made.
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from .soft_labels import calibrate, content_free_prior, normalize_logprobs, one_hot

# "soft": the LM's label distribution; "hard": its argmax (the paper's hard label, Table 5); "written": the
# label the LM sampled after its text.
LABEL_MODES = ("soft", "hard", "written")


def label_from_distribution(distribution: list[float], label_mode: str) -> tuple[list[float], int]:
    """(soft label, label id) from a label distribution: the distribution itself in `"soft"` mode, its argmax
    one-hot in `"hard"` mode (the paper's hard label); the label id is the argmax in both."""
    label = int(np.argmax(distribution))
    return (distribution if label_mode == "soft" else one_hot(label, len(distribution))), label


class LabellingMixin:
    """The label side of `GPT3MixAugmenter`: what is scored after each generation, and the label it gives."""

    def _check_label_words(self):
        continuations = self.template.scoring_parts(self.spec, self.label_names, "")[1]
        token_ids = [self.backend.tokenize(c) for c in continuations]
        if any(ids is None for ids in token_ids):
            return
        for i, a in enumerate(token_ids):
            for j, b in enumerate(token_ids):
                if i != j and b[: len(a)] == a:
                    raise ValueError(
                        f"After tokenisation the label word {continuations[i]!r} is a prefix of "
                        f"{continuations[j]!r}: the probability of the shorter would include the longer. "
                        "Choose verbalizer words that differ from their first token on."
                    )

    def _scoring_context(self, generation: str) -> str | None:
        parsed = self._parser(generation)
        if not parsed.ok:
            return None
        return self.template.scoring_parts(self.spec, self.label_names, parsed.text)[0]

    @property
    def _continuations(self) -> list[str] | None:
        """The label continuations to score, or None where no label distribution is needed."""
        if self.label_mode == "written":
            return None
        return self.template.scoring_parts(self.spec, self.label_names, "")[1]

    def _read_completion(self, completion) -> tuple | str:
        """(parsed generation, raw label distribution or None), or why the completion is rejected."""
        parsed = self._parser(completion.text)
        if not parsed.ok:
            return parsed.error
        if self.label_mode == "written":
            return parsed, None
        if completion.label_logprobs is None:
            return "the backend returned no label scores"
        try:
            return parsed, normalize_logprobs(completion.label_logprobs)
        except ValueError as error:
            return str(error)

    def _content_free_priors(self, prompts: list[str]) -> list[list[float] | str]:
        """For each prompt, the LM's label prior after the content-free texts, or why it cannot be had."""
        if not prompts:
            return []
        contexts = [
            self.template.scoring_parts(self.spec, self.label_names, text)[0] for text in self.content_free_texts
        ]
        flat_prompts = [prompt for prompt in prompts for _ in contexts]
        flat_contexts = [context for _ in prompts for context in contexts]
        scores = self.backend.score(flat_prompts, flat_contexts, self._continuations)
        priors: list[list[float] | str] = []
        for start in range(0, len(scores), len(contexts)):
            try:
                prior = content_free_prior(scores[start : start + len(contexts)])
                if min(prior) <= 0:
                    raise ValueError(f"the content-free prior {prior} gives a label no probability")
                priors.append(prior)
            except ValueError as error:
                priors.append(f"calibration failed: {error}")
        return priors

    def _accept(self, result: dict, completion, parsed, raw: list[float] | None, prior: list[float] | None = None):
        """Fill `result` from an accepted completion."""
        if self.label_mode == "written":
            soft, label = one_hot(parsed.label, len(self.label_names)), parsed.label
        else:
            soft, label = label_from_distribution(calibrate(raw, prior) if prior is not None else raw, self.label_mode)
        result.update(
            text=parsed.text,
            label=label,
            soft_labels=soft,
            uncalibrated_soft_labels=raw or [],
            label_prior=prior or [],
            written_label=parsed.label,
            generation=completion.text,
            label_mass=completion.label_mass,
        )


def relabel(synthetic: Dataset, label_mode: str = "soft", calibrated: bool = False) -> Dataset:
    """The same synthetic rows with the labels of another variant, without generating again.

    One `label_mode="soft"` (or `"hard"`) pass with `calibrate=True` holds the raw label distribution
    (`uncalibrated_soft_labels`) and the content-free prior (`label_prior`) of every row, which is all the soft,
    calibrated and hard (argmax) variants need: they pick the same rows, as a pass of their own would.

    Args:
        synthetic (`Dataset`): rows made by `GPT3MixAugmenter` in `"soft"` or `"hard"` mode.
        label_mode (`str`): `"soft"` or `"hard"`.
        calibrated (`bool`): divide the content-free prior out (needs a `calibrate=True` pass).

    Example:

    >>> rows = GPT3MixAugmenter(backend, train, spec, calibrate=True).augment()
    >>> paper_hard = relabel(rows, "hard")
    >>> calibrated_soft = relabel(rows, "soft", calibrated=True)
    """
    if label_mode not in ("soft", "hard"):
        raise ValueError(
            f"relabel makes the 'soft' and 'hard' variants, got {label_mode!r}: 'written' labels keep rows whose "
            "scoring failed, so they need a pass of their own (label_mode='written')."
        )
    for column in ("uncalibrated_soft_labels", "label_prior", "label", "soft_labels"):
        if column not in synthetic.column_names:
            raise ValueError(
                f"relabel needs GPT3MixAugmenter rows with a {column!r} column; got {synthetic.column_names}."
            )
    raw = synthetic["uncalibrated_soft_labels"]
    if any(not distribution for distribution in raw):
        raise ValueError("Some rows have no uncalibrated_soft_labels: they come from a label_mode='written' pass.")
    priors = synthetic["label_prior"]
    if calibrated and any(not prior for prior in priors):
        raise ValueError("Calibrated labels need the content-free prior: make the rows with calibrate=True.")
    soft_labels, labels = [], []
    for distribution, prior in zip(raw, priors, strict=True):
        distribution = calibrate(distribution, prior) if calibrated else distribution
        soft, label = label_from_distribution(distribution, label_mode)
        labels.append(label)
        soft_labels.append(soft)
    relabelled = synthetic.remove_columns(["label", "soft_labels"])
    relabelled = relabelled.add_column("label", labels, feature=synthetic.features["label"])
    relabelled = relabelled.add_column("soft_labels", soft_labels, feature=synthetic.features["soft_labels"])
    return relabelled.select_columns(synthetic.column_names)

