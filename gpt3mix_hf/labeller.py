"""From each generation to its synthetic row's label: `Labeller` scores the label words after a generated text
(its raw distribution, the content-free prior, the debiased order average and task prior) and gives the row's
label in the augmenter's label mode; `relabel` derives the other label variants from rows already made.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from datasets import Dataset

from .backends.base import Backend
from .config import AugmenterConfig
from .labels import calibrate, content_free_prior, mean_distribution, normalize_logprobs, one_hot
from .prompt import GenerationParser, PromptTemplate
from .selection import content_key, row_rng, scoring_orders
from .spec import TaskSpec

# The `row_rng` key of a pool row's prompt when it is scored for the task prior (synthetic rows use keys >= 0).
_PRIOR_DRAW = -2


def label_from_distribution(distribution: list[float], label_mode: str) -> tuple[list[float], int]:
    """(soft label, label id) from a label distribution: the distribution itself in `"soft"` mode, its argmax
    one-hot in `"hard"` mode (the paper's hard label); the label id is the argmax in both."""
    label = int(np.argmax(distribution))
    return (distribution if label_mode == "soft" else one_hot(label, len(distribution))), label


class Labeller:
    """The label side of `GPT3MixAugmenter`: what is scored after each generation, and the label it gives.

    Args:
        backend (`Backend`): the LM that scores the label words.
        spec (`TaskSpec`), template (`PromptTemplate`), label_names (`list[str]`): the task and its prompt.
        config (`AugmenterConfig`): the label mode and its settings (calibration, debiasing, seed, k).
        fit (`Callable`): builds the prompt of a list of (text, label id) examples, fitted to the context, as the
            augmenter builds its generation prompts.
        pool_texts, pool_labels: the real rows; the debiased label's task prior is taken over them.

    Example:

    >>> labeller = augmenter.labeller
    >>> prompts = labeller.order_prompts([("a great film", 1), ("dull", 0)])
    >>> labeller.label_distributions(prompts, ["a real held-out review"] * len(prompts))
    """

    def __init__(
        self,
        backend: Backend,
        spec: TaskSpec,
        template: PromptTemplate,
        label_names: list[str],
        config: AugmenterConfig,
        fit: Callable[[list[tuple[str, int]]], str],
        pool_texts: list[str],
        pool_labels: list[int],
    ):
        self.backend, self.spec, self.template, self.label_names = backend, spec, template, label_names
        self.config, self.fit = config, fit
        self.pool_texts, self.pool_labels = pool_texts, pool_labels
        self.parser = GenerationParser(template, spec, label_names)
        self._task_prior: list[float] | None = None

    def check_label_words(self) -> None:
        """Refuse label words of which one, tokenised, is a prefix of another."""
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

    def scoring_context(self, generation: str) -> str | None:
        """What follows the prompt before the label words are scored (`" <text> (<Label type>:"`), for a
        generation that parses; None for one that does not."""
        parsed = self.parser(generation)
        if not parsed.ok:
            return None
        return self.template.scoring_parts(self.spec, self.label_names, parsed.text)[0]

    @property
    def continuations(self) -> list[str] | None:
        """The label continuations to score, or None where no label distribution is needed."""
        if self.config.label_mode == "written":
            return None
        return self.template.scoring_parts(self.spec, self.label_names, "")[1]

    def read_completion(self, completion) -> tuple | str:
        """(parsed generation, raw label distribution or None), or why the completion is rejected."""
        parsed = self.parser(completion.text)
        if not parsed.ok:
            return parsed.error
        if self.config.label_mode == "written":
            return parsed, None
        if completion.label_logprobs is None:
            return "the backend returned no label scores"
        short = self._short_mass(completion.label_mass)
        if short is not None:
            return short
        try:
            return parsed, normalize_logprobs(completion.label_logprobs)
        except ValueError as error:
            return str(error)

    def _short_mass(self, mass: float) -> str | None:
        """Why a score whose label words covered `mass` of the probability is not used, or None if it is."""
        if mass < self.config.min_label_mass:
            return (f"the label words covered {mass:.3f} of the probability, under "
                    f"min_label_mass={self.config.min_label_mass}")
        return None

    def content_free_priors(self, prompts: list[str]) -> list[list[float] | str]:
        """For each prompt, the LM's label prior after the content-free texts, or why it cannot be had."""
        if not prompts:
            return []
        contexts = [
            self.template.scoring_parts(self.spec, self.label_names, text)[0]
            for text in self.config.content_free_texts
        ]
        flat_prompts = [prompt for prompt in prompts for _ in contexts]
        flat_contexts = [context for _ in prompts for context in contexts]
        scores = self.backend.score_with_mass(flat_prompts, flat_contexts, self.continuations)
        priors: list[list[float] | str] = []
        for start in range(0, len(scores), len(contexts)):
            group = scores[start : start + len(contexts)]
            shorts = [self._short_mass(mass) for _, mass in group]
            shorts = [short for short in shorts if short is not None]
            if shorts:
                priors.append(f"calibration failed: {shorts[0]}")
                continue
            try:
                prior = content_free_prior([logprobs for logprobs, _ in group])
                if min(prior) <= 0:
                    raise ValueError(f"the content-free prior {prior} gives a label no probability")
                priors.append(prior)
            except ValueError as error:
                priors.append(f"calibration failed: {error}")
        return priors

    # -- the debiased label -------------------------------------------------------------------------------

    def order_prompts(self, examples: list[tuple[str, int]]) -> list[str]:
        """The `debias_orders` scoring prompts of a text whose own prompt shows `examples` ((text, label id)
        pairs, in prompt order): the same examples in each order of `selection.scoring_orders`, the own order
        first, built (and shortened to fit the context) as the generation prompts are."""
        orders = scoring_orders(len(examples), self.config.debias_orders)
        return [self.fit([examples[i] for i in order]) for order in orders]

    def label_distributions(self, prompts: list[str], texts: list[str]) -> list[list[float] | str]:
        """The LM's label distribution after `texts[i]` in `prompts[i]`, scored as a generated text is: the
        prompt, the text's scoring context (`" <text> (<Label type>:"`), then every label's full verbalizer
        sequence, normalised over the labels. An entry is a string saying why where no label had probability, or
        where the label words covered less than `min_label_mass` of it (a served backend's top-k view).

        Example:

        >>> prompts = augmenter.labeller.order_prompts([("a great film", 1), ("dull", 0)])
        >>> augmenter.labeller.label_distributions(prompts, ["a real held-out review"] * len(prompts))
        """
        if len(prompts) != len(texts):
            raise ValueError(f"Got {len(prompts)} prompts but {len(texts)} texts: give one text per prompt.")
        if not prompts:
            return []
        spec, names = self.spec, self.label_names
        contexts = [self.template.scoring_parts(spec, names, text)[0] for text in texts]
        continuations = self.template.scoring_parts(spec, names, "")[1]
        distributions: list[list[float] | str] = []
        for logprobs, mass in self.backend.score_with_mass(prompts, contexts, continuations):
            short = self._short_mass(mass)
            if short is not None:
                distributions.append(short)
                continue
            try:
                distributions.append(normalize_logprobs(logprobs))
            except ValueError as error:
                distributions.append(str(error))
        return distributions

    def order_averaged(
        self, examples: list[list[tuple[str, int]]], texts: list[str], own: list[list[float]]
    ) -> list[list[float] | str]:
        """For each text, the mean of its label distributions under its `order_prompts`; `own[i]`, the
        distribution already scored in the text's own prompt, stands for the first order."""
        prompts, owners = [], []
        for row, row_examples in enumerate(examples):
            for prompt in self.order_prompts(row_examples)[1:]:
                prompts.append(prompt)
                owners.append(row)
        per_row: list[list[list[float]]] = [[distribution] for distribution in own]
        errors: dict[int, str] = {}
        scored = self.label_distributions(prompts, [texts[row] for row in owners])
        for row, distribution in zip(owners, scored, strict=True):
            if isinstance(distribution, str):
                errors[row] = distribution
            else:
                per_row[row].append(distribution)
        return [
            f"debiased scoring failed: {errors[row]}" if row in errors else mean_distribution(per_row[row])
            for row in range(len(own))
        ]

    def task_prior(self) -> list[float]:
        """The task's label prior that `label_mode="debiased"` divides out: Batch Calibration's mean label
        distribution (Zhou et al., 2024), taken over the pool's real rows, so that it is the same for every
        batch, `num_proc` and subset a `Dataset.map` hands over.

        Each of (at most `debias_prior_rows`, a seeded sample of) the pool's rows is scored as a synthetic text
        is, in prompts of k other pool rows drawn uniformly and put in each of the `debias_orders` orders; the
        prior is the mean of the rows' order-averaged distributions. It is computed once per augmenter (and once
        per worker process under `num_proc`), at the cost of rows x `debias_orders` scoring prefills.

        The prior's prompts are drawn uniformly, as the paper's selection (`selection="uniform"`, the harness's)
        draws a synthetic row's; under `selection="anchored"` a synthetic row's prompt holds the row it was
        anchored on, a case these prompts (and the README's labeller study) do not cover.
        """
        if self._task_prior is not None:
            return self._task_prior
        texts, labels, config = self.pool_texts, self.pool_labels, self.config
        num_rows = len(texts)
        rows = list(range(num_rows))
        if num_rows > config.debias_prior_rows:
            chosen = row_rng(config.seed, _PRIOR_DRAW).choice(num_rows, size=config.debias_prior_rows, replace=False)
            rows = sorted(int(i) for i in chosen)
        all_examples = []
        for row in rows:
            key = content_key(texts[row], self.label_names[labels[row]])
            others = [i for i in range(num_rows) if i != row]
            picked = row_rng(config.seed, key, _PRIOR_DRAW).choice(len(others), size=config.k, replace=False)
            all_examples.append([(texts[others[i]], labels[others[i]]) for i in picked])
        prompts, owners = [], []
        for position, examples in enumerate(all_examples):
            for prompt in self.order_prompts(examples):
                prompts.append(prompt)
                owners.append(position)
        scored = self.label_distributions(prompts, [texts[rows[position]] for position in owners])
        per_row: dict[int, list[list[float]]] = {}
        failed: dict[int, str] = {}
        for position, distribution in zip(owners, scored, strict=True):
            if isinstance(distribution, str):
                failed.setdefault(position, distribution)
            else:
                per_row.setdefault(position, []).append(distribution)
        averaged = [mean_distribution(per_row[p]) for p in sorted(per_row) if p not in failed]
        if not averaged:
            raise ValueError(
                f"No pool row could be scored for the debiased label's task prior (the first: {failed[min(failed)]}): "
                "check the verbalizer words and min_label_mass, or use label_mode='soft'."
            )
        prior = mean_distribution(averaged)
        if min(prior) <= 0:
            raise ValueError(
                f"The task prior {prior} gives a label no probability, so it cannot be divided out: use "
                "label_mode='soft', or a served backend with more top_logprobs."
            )
        self._task_prior = prior
        return prior

    def accept(self, result: dict, completion, parsed, raw: list[float] | None, prior: list[float] | None = None):
        """Fill `result` (a synthetic row's fields) from an accepted completion, in the label mode."""
        if self.config.label_mode == "written":
            soft, label = one_hot(parsed.label, len(self.label_names)), parsed.label
        elif self.config.label_mode == "debiased":
            soft, label = label_from_distribution(
                calibrate(result["order_averaged_soft_labels"], result["debias_prior"]), "soft"
            )
        else:
            distribution = calibrate(raw, prior) if prior is not None else raw
            soft, label = label_from_distribution(distribution, self.config.label_mode)
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



def relabel(
    synthetic: Dataset, label_mode: str = "soft", calibrated: bool = False, prior: list[float] | None = None
) -> Dataset:
    """The same synthetic rows with the labels of another variant, without generating again.

    One `label_mode="soft"` (or `"hard"`) pass with `calibrate=True` holds the raw label distribution
    (`uncalibrated_soft_labels`) and the content-free prior (`label_prior`) of every row, which is all the soft,
    calibrated and hard (argmax) variants need: they pick the same rows, as a pass of their own would.

    Args:
        synthetic (`Dataset`): rows made by `GPT3MixAugmenter` in `"soft"` or `"hard"` mode.
        label_mode (`str`): `"soft"`, `"hard"` or `"debiased"` (needs a `label_mode="debiased"` pass: its
            `order_averaged_soft_labels` divided by its `debias_prior`, or by `prior`).
        calibrated (`bool`): divide the content-free prior out (needs a `calibrate=True` pass).
        prior (`list[float]`, *optional*): with `"debiased"`, the task prior to divide out instead of the one the
            rows were made with, e.g. Batch Calibration over the synthetic rows themselves,
            `mean_distribution(rows["order_averaged_soft_labels"])`.

    Example:

    >>> rows = GPT3MixAugmenter(backend, train, spec, calibrate=True).augment()
    >>> paper_hard = relabel(rows, "hard")
    >>> calibrated_soft = relabel(rows, "soft", calibrated=True)
    """
    if "label" in synthetic.column_names:
        failed = sum(label < 0 for label in synthetic["label"])
        if failed:
            raise ValueError(
                f"{failed} rows failed every attempt (label -1, as dataset.map(augmenter) keeps them): they have no "
                "label distribution to relabel. Drop them first: rows.filter(lambda row: row['label'] >= 0)."
            )
    if label_mode == "debiased":
        return _relabel_debiased(synthetic, prior)
    if prior is not None:
        raise ValueError("prior= is the debiased label's task prior: pass it with label_mode='debiased'.")
    if label_mode not in ("soft", "hard"):
        raise ValueError(
            f"relabel makes the 'soft', 'hard' and 'debiased' variants, got {label_mode!r}: 'written' labels keep "
            "rows whose scoring failed, so they need a pass of their own (label_mode='written')."
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
    return _with_columns(synthetic, {"label": labels, "soft_labels": soft_labels})


def _relabel_debiased(synthetic: Dataset, prior: list[float] | None) -> Dataset:
    for column in ("order_averaged_soft_labels", "debias_prior", "label", "soft_labels"):
        if column not in synthetic.column_names:
            raise ValueError(
                f"relabel(..., 'debiased') needs rows made with label_mode='debiased' (a {column!r} column); got "
                f"{synthetic.column_names}."
            )
    soft_labels, labels = [], []
    for averaged, own_prior in zip(synthetic["order_averaged_soft_labels"], synthetic["debias_prior"], strict=True):
        soft, label = label_from_distribution(calibrate(averaged, prior if prior is not None else own_prior), "soft")
        labels.append(label)
        soft_labels.append(soft)
    columns = {"label": labels, "soft_labels": soft_labels}
    if prior is not None:
        columns["debias_prior"] = [list(prior)] * len(synthetic)  # the rows say which prior they were divided by
    return _with_columns(synthetic, columns)


def _with_columns(synthetic: Dataset, columns: dict[str, list]) -> Dataset:
    """`synthetic` with the named columns replaced (same features), the columns in their order."""
    relabelled = synthetic.remove_columns(list(columns))
    for name, values in columns.items():
        relabelled = relabelled.add_column(name, values, feature=synthetic.features[name])
    return relabelled.select_columns(synthetic.column_names)
