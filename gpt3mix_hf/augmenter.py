"""GPT3MixAugmenter: a `Dataset.map` callable that turns real rows into synthetic, soft-labelled rows.

The pipeline, by module: a batch's rows are read and their prompts built here; `labels.py` turns each generation
into its row's label (label scores, content-free prior, label mode); `augment_run.py` runs a whole dataset
(duplicate numbering, checkpointed shards, the report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from transformers.utils import logging

from .augment_run import OCCURRENCE_COLUMN, AugmentRunMixin
from .augment_run import AugmentationReport as AugmentationReport  # re-exported: its home is augment_run.py
from .augment_run import number_duplicates as number_duplicates  # re-exported: its home is augment_run.py
from .backends.base import Backend, SamplingConfig
from .credentials import backend_secrets, redact_secrets, secret_in
from .data import batch_label_names, read_labelled_rows
from .data import concatenate_with_real as concatenate_with_real  # re-exported: its home is data/columns.py
from .labelling import DEFAULT_DEBIAS_ORDERS, DEFAULT_DEBIAS_PRIOR_ROWS, LABEL_MODES, LabellingMixin
from .labelling import relabel as relabel  # re-exported: its home is labels.py
from .labels import CONTENT_FREE_TEXTS
from .prompt import GenerationParser, PromptTemplate
from .selection import ANCHOR, STRATEGIES, ExampleSelector, content_key, row_rng
from .spec import TaskSpec
from .validation import check_arguments, has_visible_text

logger = logging.get_logger(__name__)

# Tokens kept free after the prompt for the label scoring context, beyond max_new_tokens.
_SCORING_MARGIN = 16


@dataclass(frozen=True)
class _Row:
    """One mapped real row, as read from the batch."""

    text: str
    label: int
    occurrence: int
    key: int


class GPT3MixAugmenter(AugmentRunMixin, LabellingMixin):
    """Makes `ratio` synthetic rows per real row of the batch it is mapped over: each prompt shows k real
    examples, the LM writes a new item, and the LM's probabilities of the label words give its soft label.

    Use it as `dataset.map(augmenter, batched=True, remove_columns=dataset.column_names,
    features=augmenter.features)` on any dataset with the text and label columns (a `Dataset` or a streaming
    `IterableDataset`), or call `augmenter.augment(dataset)`. The mapped rows are read from the batch; the
    other examples of each prompt come from `pool`, the real rows the augmenter was built with.

    The output rows are `text`, `label` (see `label_mode`), `soft_labels`, `uncalibrated_soft_labels` (the
    LM's raw label distribution; empty in `"written"` mode), `label_prior` (the content-free prior divided
    out with `calibrate=True`, else empty), `written_label` (the label the LM wrote), `source_ids` (the
    prompt's examples as pool row ids, in prompt order; the mapped row is given by the id of its copy in the
    pool, or -1 when the pool does not hold it), `generation` (the raw line), `failed_attempts` (generations
    that did not parse, with the reason), `generated_tokens`, `label_mass` and, with `keep_prompt=True`,
    `prompt`. A row whose every attempt failed is kept with `label = -1` and an empty soft label; `augment()`
    moves those rows to its report.

    Every random choice of a synthetic row is seeded by (seed, the real row's content, copy, attempt): the
    content is a hash of its text and label name (`selection.content_key`), never its position. So the same
    seed, data and model give the same synthetic rows for each real row whatever the `batch_size`, `num_proc`,
    order or subset of the mapped rows (`select`, `shuffle`, `filter`, streaming). Rows with the same text and
    label are told apart by an occurrence number (`number_duplicates`), which `augment()` adds; mapped without
    it, such duplicates get the same synthetic rows.

    Args:
        backend (`Backend`): the LM, e.g. `TransformersBackend.from_pretrained("smollm2")`.
        pool (`Dataset`): the real labelled rows the prompts' examples are drawn from.
        spec (`TaskSpec`, *optional*): text type, label type and verbalizer. Default: the label names as
            words (`TaskSpec.from_class_label`).
        k (`int`): examples per prompt (the paper: 2); with `"anchored"` and `"class_balanced"` the mapped
            row is one of them.
        ratio (`float`): synthetic rows per real row; a fractional part is a per-row coin flip.
        selection (`str`): `"anchored"` (the mapped row and k - 1 partners drawn uniformly from the pool),
            `"uniform"` (the paper: k examples drawn uniformly from the pool for every synthetic row; the mapped
            row only seeds the draw) or `"class_balanced"` (the mapped row and k - 1 partners, each from a
            class drawn uniformly).
        label_mode (`str`): `"soft"` (the LM's label distribution), `"hard"` (the paper's hard label: the
            argmax of that distribution, one-hot), `"written"` (one-hot on the label the LM sampled after its
            text; no label scoring) or `"debiased"` (this package's variant, not the paper's: the text's label
            distribution averaged over `debias_orders` orders of the prompt's examples, divided by the task's
            label prior `task_prior()` and renormalised; the same generations as `"soft"`, more prefill). In
            that mode the rows also have `order_averaged_soft_labels` (the average before the prior) and
            `debias_prior`, and `calibrate=True` only records the content-free prior (for `relabel`).
        calibrate (`bool`): divide the LM's content-free label prior out of each distribution ("Calibrate
            Before Use", Zhao et al., 2021): the label words are scored after each of `content_free_texts` in
            the same prompt. The raw distribution stays in `uncalibrated_soft_labels`.
        content_free_texts (`tuple[str]`): the content-free texts averaged for the prior.
        seed (`int`): the master seed.
        sampling (`SamplingConfig`, *optional*): temperature, top-p, max new tokens.
        template (`PromptTemplate`, *optional*): the paper's template by default.
        text_column, label_column (`str`): where the text and the `ClassLabel` are, in the pool and in the
            mapped batches.
        max_attempts (`int`): generations tried per synthetic row before it is recorded as failed.
        keep_prompt (`bool`): store the full prompt of each row.
        debias_orders (`int`): with `label_mode="debiased"`, m, the example orders each text is scored in
            (`selection.scoring_orders`: the row's own order first, then its rotations), at most k!.
        debias_prior_rows (`int`): with `label_mode="debiased"`, the most pool rows scored for the task prior.

    Example:

    >>> augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), ratio=5, seed=0)
    >>> synthetic = train.map(augmenter, batched=True, remove_columns=train.column_names,
    ...                       features=augmenter.features)
    >>> synthetic = augmenter.augment(train)  # the same rows, failures moved to augmenter.report
    >>> mixed = concatenate_with_real(train, synthetic)
    """

    def __init__(
        self,
        backend: Backend,
        pool: Dataset,
        spec: TaskSpec | None = None,
        *,
        k: int = 2,
        ratio: float = 1.0,
        selection: str = "anchored",
        label_mode: str = "soft",
        calibrate: bool = False,
        content_free_texts: tuple[str, ...] | list[str] = CONTENT_FREE_TEXTS,
        seed: int = 0,
        sampling: SamplingConfig | None = None,
        template: PromptTemplate | None = None,
        text_column: str = "text",
        label_column: str = "label",
        max_attempts: int = 4,
        keep_prompt: bool = False,
        debias_orders: int = DEFAULT_DEBIAS_ORDERS,
        debias_prior_rows: int = DEFAULT_DEBIAS_PRIOR_ROWS,
    ):
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a gpt3mix_hf Backend, got {type(backend).__name__}.")
        check_arguments(
            GPT3MixAugmenter.__init__,
            {"spec": spec, "k": k, "ratio": ratio, "calibrate": calibrate, "seed": seed, "sampling": sampling,
             "template": template, "text_column": text_column, "label_column": label_column,
             "max_attempts": max_attempts, "keep_prompt": keep_prompt, "content_free_texts": content_free_texts},
        )
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < math.inf:
            raise ValueError(f"ratio (synthetic rows per real row) must be a finite number > 0, got {ratio!r}.")
        if selection not in STRATEGIES:
            raise ValueError(
                f"selection must be one of {STRATEGIES}, got {selection!r}: 'uniform' draws the k examples from "
                "the pool (the paper), 'anchored' shows the mapped row and k - 1 partners."
            )
        if label_mode not in LABEL_MODES:
            raise ValueError(
                f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}: 'soft' is the LM's label "
                "distribution, 'hard' its argmax (the paper), 'written' the label the LM sampled."
            )
        if label_mode == "debiased":
            if not isinstance(debias_orders, int) or isinstance(debias_orders, bool) or not (
                1 <= debias_orders <= math.factorial(k)
            ):
                raise ValueError(
                    f"debias_orders must be an integer in [1, {math.factorial(k)}] (the orders of k={k} examples), "
                    f"got {debias_orders!r}."
                )
            if not isinstance(debias_prior_rows, int) or isinstance(debias_prior_rows, bool) or debias_prior_rows < 1:
                raise ValueError(f"debias_prior_rows must be an integer >= 1, got {debias_prior_rows!r}.")
            if len(pool) <= k:
                raise ValueError(
                    f"label_mode='debiased' scores pool rows in prompts of k={k} other pool rows for its task "
                    f"prior, but the pool has only {len(pool)} rows: give a pool of more than k rows, or lower k."
                )
        if calibrate and label_mode == "written":
            raise ValueError(
                "calibrate=True changes the LM's label distribution, which label_mode='written' does not use: "
                "use label_mode='soft' or 'hard' with calibration, or calibrate=False."
            )
        content_free_texts = tuple(content_free_texts)
        if calibrate and (not content_free_texts or not all(isinstance(t, str) for t in content_free_texts)):
            raise ValueError(
                f"content_free_texts must be a non-empty list of strings, got {content_free_texts!r} "
                f"(Zhao et al. use {CONTENT_FREE_TEXTS})."
            )
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}.")
        texts, labels, class_label = read_labelled_rows(pool, text_column, label_column)
        self.label_names = list(class_label.names)
        self.spec = spec or TaskSpec.from_class_label(class_label)
        self.template = template or PromptTemplate()
        self.sampling = sampling or SamplingConfig()
        self.backend = backend
        self.k, self.ratio, self.selection, self.label_mode, self.seed = k, float(ratio), selection, label_mode, seed
        self.calibrate, self.content_free_texts = bool(calibrate), content_free_texts
        self.text_column, self.label_column = text_column, label_column
        self.max_attempts, self.keep_prompt = max_attempts, keep_prompt
        self.debias_orders, self.debias_prior_rows = debias_orders, debias_prior_rows
        self._texts, self._labels = texts, labels
        self._build_helpers()
        self._check_label_words()
        limit = self.backend.max_context
        if limit is not None and limit - self.sampling.max_new_tokens - _SCORING_MARGIN < 1:
            # Said here, not at the first prompt of a map.
            raise ValueError(
                f"max_new_tokens={self.sampling.max_new_tokens} leaves no room for a prompt in the model's context of "
                f"{limit} tokens: lower max_new_tokens (SamplingConfig) below {limit - _SCORING_MARGIN}."
            )
        empty = sorted(set(range(len(self.label_names))) - set(labels))
        if empty:
            logger.warning(
                f"Labels {[self.label_names[i] for i in empty]} have no rows in the pool: no prompt shows "
                "them, but the LM may still write them and they keep their share of every soft label."
            )

    def _build_helpers(self):
        self._selector = ExampleSelector(self._labels, len(self.label_names), k=self.k, strategy=self.selection)
        self._parser = GenerationParser(self.template, self.spec, self.label_names)
        # The pool rows holding each (text, label): a mapped row's copies are not its own partners.
        self._pool_rows: dict[tuple[str, int], list[int]] = {}
        for row, content in enumerate(zip(self._texts, self._labels, strict=True)):
            self._pool_rows.setdefault(content, []).append(row)

    # -- configuration -----------------------------------------------------------------------------------

    @property
    def features(self) -> Features:
        """The output features; pass them to `Dataset.map(features=...)` to keep `label` a `ClassLabel`."""
        features = {
            "text": Value("string"),
            "label": ClassLabel(names=self.label_names),
            "soft_labels": Sequence(Value("float32")),
            "uncalibrated_soft_labels": Sequence(Value("float32")),
            "label_prior": Sequence(Value("float32")),
            "written_label": ClassLabel(names=self.label_names),
            "source_ids": Sequence(Value("int64")),
            "generation": Value("string"),
            "failed_attempts": [{"generation": Value("string"), "error": Value("string")}],
            "generated_tokens": Value("int32"),
            "label_mass": Value("float32"),
        }
        if self.label_mode == "debiased":
            features["order_averaged_soft_labels"] = Sequence(Value("float32"))
            features["debias_prior"] = Sequence(Value("float32"))
        if self.keep_prompt:
            features["prompt"] = Value("string")
        return Features(features)

    def config(self) -> dict:
        """Everything that decides the synthetic rows, as plain data (provenance for cards and config files)."""
        config = {
            "backend": self.backend.identity,
            "spec": self.spec.to_dict(),
            "template": self.template.to_dict(),
            "sampling": self.sampling.to_dict(),
            "k": self.k,
            "ratio": self.ratio,
            "selection": self.selection,
            "label_mode": self.label_mode,
            "calibrate": self.calibrate,
            "content_free_texts": list(self.content_free_texts),
            "seed": self.seed,
            "max_attempts": self.max_attempts,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "label_names": self.label_names,
        }
        if self.label_mode == "debiased":
            # Only in this mode, so that the other modes' configs (and the fingerprints made from them) stay as
            # they were before the mode existed.
            config.update(debias_orders=self.debias_orders, debias_prior_rows=self.debias_prior_rows)
        return config

    def to_config(self, dataset: Dataset | None = None, **kwargs):
        """This augmenter's provenance as a `GPT3MixConfig` (`gpt3mix_config.json`); keyword arguments as
        `GPT3MixConfig.from_augmenter` (`data=` where the rows came from, `map_batch_size=`)."""
        from .provenance import GPT3MixConfig

        return GPT3MixConfig.from_augmenter(self, dataset, **kwargs)

    @classmethod
    def from_config(cls, config, **kwargs) -> GPT3MixAugmenter:
        """The augmenter a `GPT3MixConfig` (or the path of its `gpt3mix_config.json`) describes; keyword arguments
        as `GPT3MixConfig.make_augmenter` (`dataset=`, `backend=`, `data_dir=`)."""
        from .provenance import augmenter_from_config

        return augmenter_from_config(config, **kwargs)

    def _settings(self) -> dict:
        return {
            "spec": self.spec, "k": self.k, "ratio": self.ratio, "selection": self.selection,
            "label_mode": self.label_mode, "calibrate": self.calibrate, "content_free_texts": self.content_free_texts,
            "seed": self.seed, "sampling": self.sampling, "template": self.template, "text_column": self.text_column,
            "label_column": self.label_column, "max_attempts": self.max_attempts, "keep_prompt": self.keep_prompt,
            "debias_orders": self.debias_orders, "debias_prior_rows": self.debias_prior_rows,
        }

    def __getstate__(self):
        # Pickled for `map(num_proc=...)` workers and hashed for the `datasets` fingerprint: the backend
        # pickles as its source where it has one, and the pool is kept as plain lists. The report of the last
        # run (wall-clock seconds) is left out so that it never changes the fingerprint.
        state = self.__dict__.copy()
        # The debiased label's task prior is left out too: it is recomputed, the same, from the pool.
        for name in ("_selector", "_parser", "_pool_rows", "report", "_rows_bar", "_task_prior"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build_helpers()

    # -- reading the batch -------------------------------------------------------------------------------

    def _read_batch(self, batch: Mapping[str, list]) -> list[_Row]:
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"GPT3MixAugmenter is called with a batch (a dict of columns), got {type(batch).__name__}."
            )
        for argument, column in (("text_column", self.text_column), ("label_column", self.label_column)):
            if column not in batch:
                raise ValueError(
                    f"The batch has no column {column!r} (it has {sorted(batch)}): build the augmenter with "
                    f"{argument}=<the column's name>, or rename the column of the mapped dataset."
                )
        texts, labels = batch[self.text_column], batch[self.label_column]
        if isinstance(texts, str) or not hasattr(texts, "__len__"):
            raise ValueError(
                "GPT3MixAugmenter makes several rows per real row, so it works on batches: call "
                "dataset.map(augmenter, batched=True, remove_columns=dataset.column_names, "
                "features=augmenter.features)."
            )
        occurrences = batch.get(OCCURRENCE_COLUMN) or [0] * len(texts)
        names = batch_label_names(batch, self.label_column)
        if names is None and any(isinstance(label, int | np.integer) for label in labels):
            # A stream's batches (IterableDataset.map) carry no features: its ids cannot be checked by name here.
            logger.warning_once(
                f"The mapped batch carries label ids without label names (a streaming dataset): they are read as "
                f"ids of the pool's labels {self.label_names}. If the stream's ClassLabel lists them in another "
                "order, re-encode it by name first, or give the label column as names."
            )
        remap = self._remap_by_name(names)
        rows = []
        for text, label, occurrence in zip(texts, labels, occurrences, strict=True):
            if remap is not None and isinstance(label, int | np.integer) and 0 <= label < len(remap):
                label = remap[label]
            label_id = self._label_id(label)
            if not has_visible_text(text):
                raise ValueError(
                    f"A mapped row has an empty text ({text!r}): the LM cannot learn from it. Drop such rows first: "
                    f"from gpt3mix_hf.data import has_visible_text; "
                    f"dataset.filter(lambda row: has_visible_text(row[{self.text_column!r}]))."
                )
            key = content_key(text, self.label_names[label_id])
            rows.append(_Row(text, label_id, int(occurrence), key))
        return rows

    def _remap_by_name(self, names: list[str] | None) -> list[int] | None:
        """For a batch whose `ClassLabel` lists the pool's label names in another order, the pool's id of each of
        its ids (label ids are compared by name, never by position); None when the orders agree or are unknown."""
        if names is None or names == self.label_names:
            return None
        if sorted(names) != sorted(self.label_names):
            raise ValueError(
                f"The mapped dataset's labels are {names}, the pool's {self.label_names}: they are not the same "
                "classes, so no prompt could show them right. Map a dataset of the pool's task, or build the "
                "augmenter with a pool of this one."
            )
        return [self.label_names.index(name) for name in names]

    def _label_id(self, label) -> int:
        if isinstance(label, str) and label in self.label_names:
            return self.label_names.index(label)
        if isinstance(label, int | np.integer) and not isinstance(label, bool) and 0 <= label < len(self.label_names):
            return int(label)
        raise ValueError(
            f"A mapped row has the label {label!r}, which is neither a label id in [0, {len(self.label_names)}) "
            f"nor one of the pool's label names {self.label_names}: drop unlabelled rows, and give the mapped "
            "dataset the pool's ClassLabel (dataset.cast_column(label_column, pool.features[label_column]))."
        )

    # -- generation --------------------------------------------------------------------------------------

    def _copies(self, row: _Row) -> int:
        whole = int(self.ratio)
        fraction = self.ratio - whole
        if fraction and row_rng(self.seed, row.key, row.occurrence, -1).random() < fraction:
            whole += 1
        return whole

    def _prompt(self, row: _Row, copy: int, attempt: int) -> tuple[str, list[int], int]:
        examples, source_ids, generation_seed = self._draw(row, copy, attempt)
        return self._fit(examples), source_ids, generation_seed

    def _draw(self, row: _Row, copy: int, attempt: int) -> tuple[list[tuple[str, int]], list[int], int]:
        """The examples of attempt `attempt` of (row, copy), in prompt order, their pool ids, and its seed."""
        rng = row_rng(self.seed, row.key, row.occurrence, copy, attempt)
        copies_in_pool = self._pool_rows.get((row.text, row.label), [])
        chosen = self._selector.select(rng, exclude=copies_in_pool)
        generation_seed = int(rng.integers(2**63 - 1))
        examples, source_ids = [], []
        for choice in chosen:
            if choice == ANCHOR:
                examples.append((row.text, row.label))
                in_pool = copies_in_pool[min(row.occurrence, len(copies_in_pool) - 1)] if copies_in_pool else -1
                source_ids.append(in_pool)
            else:
                examples.append((self._texts[choice], self._labels[choice]))
                source_ids.append(choice)
        return examples, source_ids, generation_seed

    def _start_attempt(self, rows: list[_Row], key: tuple[int, int], result: dict, attempt: int) -> tuple[str, int]:
        """Set `result`'s prompt, seed and source ids for attempt `attempt` of (row, copy) `key`; (prompt, seed)."""
        examples, source_ids, seed = self._draw(rows[key[0]], key[1], attempt)
        prompt = self._fit(examples)
        result.update(prompt=prompt, seed=seed, source_ids=source_ids, examples=examples)
        return prompt, seed

    def _fit(self, examples: list[tuple[str, int]]) -> str:
        """The prompt, with the longest examples shortened (by words) until it fits the model's context."""
        prompt = self.template.build(self.spec, self.label_names, examples)
        limit = self.backend.max_context
        token_ids = self.backend.tokenize(prompt) if limit is not None else None
        if token_ids is None:
            return prompt
        budget = limit - self.sampling.max_new_tokens - _SCORING_MARGIN
        if budget < 1:
            raise ValueError(
                f"max_new_tokens={self.sampling.max_new_tokens} leaves no room for a prompt in the model's "
                f"context of {limit} tokens: lower max_new_tokens."
            )
        length = len(token_ids)
        if length <= budget:
            return prompt
        words = [text.split() for text, _ in examples]
        while length > budget:
            longest = max(range(len(words)), key=lambda i: len(words[i]))
            if len(words[longest]) <= 1:
                raise ValueError(
                    f"The prompt does not fit the model's context ({limit} tokens) even with one word per "
                    "example: use a smaller k, a shorter template or a model with a longer context."
                )
            words[longest] = words[longest][: len(words[longest]) // 2]
            examples = [(" ".join(w), label) for w, (_, label) in zip(words, examples, strict=True)]
            prompt = self.template.build(self.spec, self.label_names, examples)
            length = len(self.backend.tokenize(prompt))
        logger.warning(
            f"Examples were shortened to fit the model's context of {limit} tokens "
            f"(max_new_tokens={self.sampling.max_new_tokens})."
        )
        return prompt

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, list]:
        # `indices` (map's with_indices=True) are accepted and not used: rows are keyed by their content.
        rows = self._read_batch(batch)
        # (row, copy) pairs still to make, and what has been collected for each.
        pending = [(i, copy) for i, row in enumerate(rows) for copy in range(self._copies(row))]
        self._warn_on_uncarried_columns(batch, len(rows), len(pending))
        results: dict[tuple[int, int], dict] = {
            key: {"failed_attempts": [], "generated_tokens": 0} for key in pending
        }
        attempts = dict.fromkeys(pending, 0)
        # A generation that repeats a secret of this process (the API key, the Hub token) is a failed attempt,
        # recorded without the secret: rows, failures and checkpoints never hold one.
        secrets = backend_secrets(self.backend)
        while pending:
            # A failed generation is tried again at once, in its slot (`next_attempt`); a row whose calibration
            # fails after its generation was accepted goes again in the next round. Either way attempt a + 1
            # follows a failed attempt a, so the rows do not depend on how the backend batches.
            for key in pending:
                self._start_attempt(rows, key, results[key], attempts[key])
            accepted: dict[tuple[int, int], tuple] = {}

            def next_attempt(j: int, completion, pending=pending, accepted=accepted) -> tuple[str, int] | None:
                key = pending[j]
                result = results[key]
                result["generated_tokens"] += completion.num_tokens
                leaked = secret_in(completion.text, secrets)
                if leaked is not None:
                    outcome = f"the generation holds {leaked}: discarded, and recorded without it"
                else:
                    outcome = self._read_completion(completion)
                if not isinstance(outcome, str):
                    accepted[key] = (completion, *outcome)
                    self._row_written()
                    return None
                generation = redact_secrets(completion.text, secrets)
                result["failed_attempts"].append({"generation": generation, "error": outcome})
                attempts[key] += 1
                if attempts[key] == self.max_attempts:
                    return None
                return self._start_attempt(rows, key, result, attempts[key])

            self.backend.generate_and_score(
                [results[key]["prompt"] for key in pending], [results[key]["seed"] for key in pending], self.sampling,
                self._scoring_context, self._continuations, next_attempt,
            )
            def reject(key: tuple[int, int], error: str, accepted=accepted):
                """Send an accepted generation whose extra scoring failed to another attempt."""
                self._row_written(-1)
                completion = accepted.pop(key)[0]
                results[key]["failed_attempts"].append({"generation": completion.text, "error": error})
                attempts[key] += 1

            if self.calibrate:
                keys = [key for key in pending if key in accepted]  # in row order, whenever each finished
                priors = self._content_free_priors([results[key]["prompt"] for key in keys])
                for key, prior in zip(keys, priors, strict=True):
                    if isinstance(prior, str):
                        reject(key, prior)
                    else:
                        accepted[key] = (*accepted[key], prior)
            if self.label_mode == "debiased":
                keys = [key for key in pending if key in accepted]
                averaged = self._order_averaged(
                    [results[key]["examples"] for key in keys], [accepted[key][1].text for key in keys],
                    [accepted[key][2] for key in keys],
                )
                task_prior = self.task_prior() if keys else None
                for key, distribution in zip(keys, averaged, strict=True):
                    if isinstance(distribution, str):
                        reject(key, distribution)
                    else:
                        results[key].update(order_averaged_soft_labels=distribution, debias_prior=task_prior)
            for key, outcome in accepted.items():
                self._accept(results[key], *outcome)
            pending = [key for key in pending if key not in accepted and attempts[key] < self.max_attempts]
        return self._columns([results[key] for key in results])

    def _warn_on_uncarried_columns(self, batch: Mapping[str, list], rows: int, made: int) -> None:
        """Before any generation: say which argument a `map` call needs when the batch has columns the augmenter
        does not read and it makes another number of rows than it was given. `datasets` keeps such columns unless
        they are in `remove_columns`, and then fails with a pyarrow length error after the batch was generated.
        The batch cannot tell whether `remove_columns` was passed, so this is a warning, once per process."""
        extra = [column for column in batch if column not in (self.text_column, self.label_column, OCCURRENCE_COLUMN)]
        if extra and made != rows:
            logger.warning_once(
                f"The mapped dataset has the columns {extra}, which GPT3MixAugmenter does not carry: it makes {made} "
                f"rows from {rows}. Unless the map call removes them, datasets fails with a column length error: "
                "pass remove_columns=dataset.column_names (and features=augmenter.features), or call "
                "augmenter.augment(dataset)."
            )

    def _columns(self, results: list[dict]) -> dict[str, list]:
        columns = {name: [] for name in self.features}
        for result in results:
            done = "text" in result
            columns["text"].append(result["text"] if done else "")
            columns["label"].append(result["label"] if done else -1)
            columns["soft_labels"].append(result["soft_labels"] if done else [])
            columns["uncalibrated_soft_labels"].append(result["uncalibrated_soft_labels"] if done else [])
            columns["label_prior"].append(result["label_prior"] if done else [])
            columns["written_label"].append(result["written_label"] if done else -1)
            columns["source_ids"].append(result["source_ids"])
            columns["generation"].append(result["generation"] if done else "")
            columns["failed_attempts"].append(result["failed_attempts"])
            columns["generated_tokens"].append(result["generated_tokens"])
            columns["label_mass"].append(result["label_mass"] if done else 0.0)
            if self.label_mode == "debiased":
                columns["order_averaged_soft_labels"].append(result["order_averaged_soft_labels"] if done else [])
                columns["debias_prior"].append(result["debias_prior"] if done else [])
            if self.keep_prompt:
                columns["prompt"].append(result["prompt"])
        return columns

    def pool_dataset(self) -> Dataset:
        """The real rows the prompts' examples are drawn from, as a `Dataset` (text and label columns)."""
        features = Features({self.text_column: Value("string"), self.label_column: ClassLabel(names=self.label_names)})
        return Dataset.from_dict({self.text_column: self._texts, self.label_column: self._labels}, features=features)
