"""GPT3MixAugmenter: a `Dataset.map` callable that turns real rows into synthetic, soft-labelled rows.

The pipeline, by module: the settings are an `AugmenterConfig` (`config.py`); a batch's rows are read and their
prompts built here; `labeller.py` (`Labeller`) turns each generation into its row's label; `augment_run.py`
runs a whole dataset (duplicate numbering, checkpointed shards, the report).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from difflib import get_close_matches
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from .augment_run import default_map_batch_size, rows_to_augment, run_augmentation
from .backends.base import Backend, SamplingConfig
from .batches import Row, read_batch, to_columns, warn_on_uncarried_columns
from .batches import features as batch_features
from .config import AugmenterConfig
from .credentials import backend_secrets, redact_secrets, secret_in
from .data import align_label_names, read_labelled_rows
from .labeller import Labeller
from .prompt import PromptTemplate, fit_prompt
from .selection import ANCHOR, ExampleSelector, row_rng
from .spec import TaskSpec
from .validation import check_arguments

logger = logging.get_logger(__name__)

# Tokens kept free after the prompt for the label scoring context, beyond max_new_tokens.
SCORING_MARGIN = 16


class GPT3MixAugmenter:
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
    that did not parse, with the reason), `generated_tokens`, `label_mass`; in `"debiased"` mode
    `order_averaged_soft_labels` and `debias_prior`; with `keep_prompt=True`, `prompt`. A row whose every
    attempt failed is kept with `label = -1` and an empty soft label; `augment()` moves those rows to its report.

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
        config (`AugmenterConfig`, *optional*): k, ratio, selection, label mode, calibration, seed, ...; the
            same settings can be given as keyword arguments instead (`ratio=5, seed=0`), each documented on
            `AugmenterConfig`.
        sampling (`SamplingConfig`, *optional*): temperature, top-p, max new tokens.
        template (`PromptTemplate`, *optional*): the paper's template by default.
        text_column, label_column (`str`): where the text and the `ClassLabel` are, in the pool and in the
            mapped batches.

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
        config: AugmenterConfig | None = None,
        sampling: SamplingConfig | None = None,
        template: PromptTemplate | None = None,
        text_column: str = "text",
        label_column: str = "label",
        **settings,
    ):
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a gpt3mix_hf Backend, got {type(backend).__name__}.")
        check_arguments(
            GPT3MixAugmenter.__init__,
            {"spec": spec, "config": config, "sampling": sampling, "template": template, "text_column": text_column,
             "label_column": label_column},
        )
        if config is not None and settings:
            raise ValueError(
                f"Give the settings either as config= or as keyword arguments, not both (got config= and "
                f"{sorted(settings)}): dataclasses.replace(config, {', '.join(f'{k}=...' for k in settings)})."
            )
        known = [item.name for item in fields(AugmenterConfig)]
        for name in settings:
            if name not in known:
                close = get_close_matches(name, known, n=1)
                raise TypeError(
                    f"GPT3MixAugmenter got an unknown setting {name!r}"
                    + (f": did you mean {close[0]!r}?" if close else ".")
                    + f" The settings are AugmenterConfig's fields: {known}."
                )
        self.config = config if config is not None else AugmenterConfig(**settings)
        texts, labels, class_label = read_labelled_rows(pool, text_column, label_column)
        self.label_names = list(class_label.names)
        self.spec = spec or TaskSpec.from_class_label(class_label)
        self.template = template or PromptTemplate()
        self.sampling = sampling or SamplingConfig()
        self.backend = backend
        self.text_column, self.label_column = text_column, label_column
        self.pool_texts, self.pool_labels = texts, labels
        if self.config.label_mode == "debiased" and len(texts) <= self.config.k:
            raise ValueError(
                f"label_mode='debiased' scores pool rows in prompts of k={self.config.k} other pool rows for its "
                f"task prior, but the pool has only {len(texts)} rows: give a pool of more than k rows, or lower k."
            )
        limit = self.backend.max_context
        if limit is not None and limit - self.sampling.max_new_tokens - SCORING_MARGIN < 1:
            # Said here, not at the first prompt of a map.
            raise ValueError(
                f"max_new_tokens={self.sampling.max_new_tokens} leaves no room for a prompt in the model's context of "
                f"{limit} tokens: lower max_new_tokens (SamplingConfig) below {limit - SCORING_MARGIN}."
            )
        self._build_helpers()
        self.labeller.check_label_words()
        empty = sorted(set(range(len(self.label_names))) - set(labels))
        if empty:
            logger.warning(
                f"Labels {[self.label_names[i] for i in empty]} have no rows in the pool: no prompt shows "
                "them, but the LM may still write them and they keep their share of every soft label."
            )
        self.progress = None  # set by augment(): the bar of rows written

    def _build_helpers(self):
        config = self.config
        self._selector = ExampleSelector(self.pool_labels, len(self.label_names), k=config.k,
                                         strategy=config.selection)
        self.labeller = Labeller(self.backend, self.spec, self.template, self.label_names, config, self._fit,
                                 self.pool_texts, self.pool_labels)
        # The pool rows holding each (text, label): a mapped row's copies are not its own partners.
        self._pool_rows: dict[tuple[str, int], list[int]] = {}
        for row, content in enumerate(zip(self.pool_texts, self.pool_labels, strict=True)):
            self._pool_rows.setdefault(content, []).append(row)

    @property
    def features(self) -> Features:
        """The output features; pass them to `Dataset.map(features=...)` to keep `label` a `ClassLabel`."""
        return batch_features(self.label_names, self.config.label_mode, self.config.keep_prompt)

    def provenance(self) -> dict:
        """Everything that decides the synthetic rows, as plain data: the LM's identity, the task, the prompt
        template, sampling, the settings and the label names (`GPT3MixConfig.from_augmenter` files it)."""
        return {
            "backend": self.backend.identity,
            "spec": self.spec.to_dict(),
            "template": self.template.to_dict(),
            "sampling": self.sampling.to_dict(),
            "augmenter": self.config.to_dict(),
            "label_names": self.label_names,
        }

    def __getstate__(self):
        # Pickled for `map(num_proc=...)` workers and hashed for the `datasets` fingerprint: the backend
        # pickles as its source where it has one, and the pool is kept as plain lists. The report of the last
        # run (wall-clock seconds) and the progress bar are left out so that they never change the fingerprint;
        # the scorer (with the debiased label's task prior) is rebuilt, the same, from the pool.
        state = self.__dict__.copy()
        for name in ("_selector", "labeller", "_pool_rows", "report", "progress"):
            state.pop(name, None)
        # A source can say dtype="auto", revision=None or "whatever the server serves": the identity says what
        # they resolved to, so that another model, dtype or commit misses a cache the first one wrote.
        state["backend_identity"] = self.backend.identity
        return state

    def __setstate__(self, state):
        state = {name: value for name, value in state.items() if name != "backend_identity"}
        self.__dict__.update(state)
        self.progress = None
        self._build_helpers()

    # -- whole datasets ----------------------------------------------------------------------------------

    def augment(
        self,
        dataset: Dataset | DatasetDict | None = None,
        *,
        split: str | None = None,
        pool: Dataset | None = None,
        batch_size: int | None = None,
        num_proc: int | None = None,
        load_from_cache_file: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        shard_size: int = 256,
    ) -> Dataset:
        """The synthetic rows for the rows of `dataset` (default: the pool) as a `Dataset`.

        Rows whose every attempt failed are left out of the result and kept, with their generations and
        reasons, in `self.report.failures`; `self.report` (`AugmentationReport`) also counts rows, parse
        failures, tokens and time.

        Args:
            dataset (`Dataset` or `DatasetDict`, *optional*): the real rows to augment, with the text and label
                columns and the pool's label names. A `DatasetDict` needs `split`.
            split (`str`, *optional*): the split of a `DatasetDict` to augment.
            pool (`Dataset`, *optional*): draw the prompts' other examples from these rows instead of the pool
                the augmenter was built with.
            batch_size (`int`, *optional*): real rows per `Dataset.map` batch; default: the backend's decoding
                slots, at least 64 (`default_map_batch_size`). A batch's prompts are decoded together, so fewer
                rows than the slots leave slots idle.
            num_proc, load_from_cache_file: passed to `Dataset.map`. `num_proc` > 1 forks worker processes,
                which cannot use CUDA: with a model on a GPU it is refused.
            checkpoint_dir (`str`, *optional*): make the rows `shard_size` real rows at a time and save each
                finished shard there: a run that stops half-way keeps its shards, and the same call resumes
                from them.
            shard_size (`int`): real rows per saved shard.
        """
        check_arguments(GPT3MixAugmenter.augment, {"split": split, "batch_size": batch_size, "num_proc": num_proc,
                                                   "load_from_cache_file": load_from_cache_file,
                                                   "shard_size": shard_size}, owner="augment")
        if batch_size is None:
            batch_size = default_map_batch_size(self.backend)
        if (num_proc or 1) > 1 and self.backend.uses_cuda:
            # Found on an H100: each forked worker died re-initialising CUDA, and `map` said only that one had.
            raise ValueError(
                f"num_proc={num_proc} (--num_proc) forks worker processes, and a forked process cannot use CUDA, "
                f"where this backend's model is ({self.backend.device}). On a GPU, augment in one process "
                "(num_proc=None, --num_proc 1): its continuous batching fills the GPU; for more rows at once give "
                "the backend more decoding slots (TransformersBackend.from_pretrained(..., batch_size=), "
                "--generation_batch_size)."
            )
        if pool is not None:
            names = list(read_labelled_rows(pool, self.text_column, self.label_column)[2].names)
            if sorted(names) != sorted(self.label_names):
                raise ValueError(
                    f"The pool has the labels {names}, the augmenter {self.label_names}: they are not the same "
                    "classes. Build a new augmenter with this pool."
                )
            other = GPT3MixAugmenter(
                self.backend, align_label_names(pool, self.label_column, self.label_names), self.spec,
                config=self.config, sampling=self.sampling, template=self.template, text_column=self.text_column,
                label_column=self.label_column,
            )
            synthetic = other.augment(
                dataset if dataset is not None else self.pool_dataset(), split=split, batch_size=batch_size,
                num_proc=num_proc, load_from_cache_file=load_from_cache_file, checkpoint_dir=checkpoint_dir,
                shard_size=shard_size,
            )
            # Rows drawn from another pool than this augmenter's: its provenance could not describe them.
            self.report = replace(other.report, augmented_the_pool=False)
            return synthetic
        synthetic, self.report = run_augmentation(
            self, dataset, split=split, batch_size=batch_size, num_proc=num_proc,
            load_from_cache_file=load_from_cache_file, checkpoint_dir=checkpoint_dir, shard_size=shard_size,
        )
        return synthetic

    def dry_run(self, batch: Mapping[str, list] | Dataset, attempts: int = 1) -> list[dict]:
        """The prompts this augmenter would send for the rows of `batch` (a `Dataset` or a dict of columns),
        without calling the LM: for each row, copy and attempt (the first `attempts` of each), a dict of `row`,
        `copy`, `attempt`, `prompt`, `source_ids` (the examples' pool ids, in prompt order) and `seed` (the
        generation's). Later attempts are sent only when the earlier ones fail.

        Example:

        >>> [planned["prompt"] for planned in augmenter.dry_run(train.select(range(2)))]
        """
        if isinstance(batch, Dataset):
            # As augment() reads it: labels in the pool's order, duplicates numbered; the labels go as names, which
            # to_dict() would otherwise drop with the ClassLabel (ids without names are a stream's).
            rows = rows_to_augment(self, batch)
            batch = rows.to_dict()
            batch[self.label_column] = [self.label_names[label] for label in batch[self.label_column]]
        most = self.config.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= most:
            raise ValueError(f"attempts must be a whole number in [1, max_attempts={self.config.max_attempts}], "
                             f"got {attempts!r}.")
        planned = []
        for index, row in enumerate(self.read_batch(batch)):
            for copy in range(self._copies(row)):
                for attempt in range(attempts):
                    plan = self._plan(row, copy, attempt)
                    planned.append({"row": index, "copy": copy, "attempt": attempt, "prompt": plan["prompt"],
                                    "source_ids": plan["source_ids"], "seed": plan["seed"]})
        return planned

    # -- reading the batch -------------------------------------------------------------------------------

    def read_batch(self, batch: Mapping[str, list]) -> list[Row]:
        """The real rows of a mapped batch, label ids in the pool's order (checked by name where it has names)."""
        return read_batch(batch, self.text_column, self.label_column, self.label_names)

    def _copies(self, row: Row) -> int:
        whole = int(self.config.ratio)
        fraction = self.config.ratio - whole
        if fraction and row_rng(self.config.seed, row.key, row.occurrence, -1).random() < fraction:
            whole += 1
        return whole

    def _draw(self, row: Row, copy: int, attempt: int) -> tuple[list[tuple[str, int]], list[int], int]:
        """The examples of attempt `attempt` of (row, copy), in prompt order, their pool ids, and its seed."""
        rng = row_rng(self.config.seed, row.key, row.occurrence, copy, attempt)
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
                examples.append((self.pool_texts[choice], self.pool_labels[choice]))
                source_ids.append(choice)
        return examples, source_ids, generation_seed

    def _plan(self, row: Row, copy: int, attempt: int) -> dict:
        """Attempt `attempt` of (row, copy): its `prompt`, `seed`, `source_ids` and `examples` (in prompt order).
        What `dry_run` shows and what `__call__` sends are this one plan."""
        examples, source_ids, seed = self._draw(row, copy, attempt)
        return {"prompt": self._fit(examples), "seed": seed, "source_ids": source_ids, "examples": examples}

    def _start_attempt(self, rows: list[Row], key: tuple[int, int], result: dict, attempt: int) -> tuple[str, int]:
        """Set `result`'s prompt, seed and source ids for attempt `attempt` of (row, copy) `key`; (prompt, seed)."""
        result.update(self._plan(rows[key[0]], key[1], attempt))
        return result["prompt"], result["seed"]

    def _fit(self, examples: list[tuple[str, int]]) -> str:
        """The prompt, with the longest examples shortened (by words) until it fits the model's context."""
        limit = self.backend.max_context
        budget = None if limit is None else limit - self.sampling.max_new_tokens - SCORING_MARGIN
        prompt, shortened = fit_prompt(self.template, self.spec, self.label_names, examples, self.backend.tokenize,
                                       budget)
        if shortened:
            logger.warning(
                f"Examples were shortened to fit the model's context of {limit} tokens "
                f"(max_new_tokens={self.sampling.max_new_tokens})."
            )
        return prompt

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, list]:
        # `indices` (map's with_indices=True) are accepted and not used: rows are keyed by their content.
        rows = self.read_batch(batch)
        # (row, copy) pairs still to make, and what has been collected for each.
        pending = [(i, copy) for i, row in enumerate(rows) for copy in range(self._copies(row))]
        warn_on_uncarried_columns(batch, self.text_column, self.label_column, len(rows), len(pending))
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
                    outcome = self.labeller.read_completion(completion)
                    if outcome == "no label marker" and completion.num_tokens >= self.sampling.max_new_tokens:
                        outcome += (f" (the line was cut off at max_new_tokens={self.sampling.max_new_tokens} "
                                    "before its label: allow more tokens)")
                if not isinstance(outcome, str):
                    accepted[key] = (completion, *outcome)
                    self._row_written()
                    return None
                generation = redact_secrets(completion.text, secrets)
                result["failed_attempts"].append({"generation": generation, "error": outcome})
                attempts[key] += 1
                if attempts[key] == self.config.max_attempts:
                    return None
                return self._start_attempt(rows, key, result, attempts[key])

            self.backend.generate_and_score(
                [results[key]["prompt"] for key in pending], [results[key]["seed"] for key in pending], self.sampling,
                self.labeller.scoring_context, self.labeller.continuations, next_attempt,
            )
            def reject(key: tuple[int, int], error: str, accepted=accepted):
                """Send an accepted generation whose extra scoring failed to another attempt."""
                self._row_written(-1)
                completion = accepted.pop(key)[0]
                results[key]["failed_attempts"].append({"generation": completion.text, "error": error})
                attempts[key] += 1

            if self.config.calibrate:
                keys = [key for key in pending if key in accepted]  # in row order, whenever each finished
                priors = self.labeller.content_free_priors([results[key]["prompt"] for key in keys])
                for key, prior in zip(keys, priors, strict=True):
                    if isinstance(prior, str):
                        reject(key, prior)
                    else:
                        accepted[key] = (*accepted[key], prior)
            if self.config.label_mode == "debiased":
                keys = [key for key in pending if key in accepted]
                averaged = self.labeller.order_averaged(
                    [results[key]["examples"] for key in keys], [accepted[key][1].text for key in keys],
                    [accepted[key][2] for key in keys],
                )
                task_prior = self.labeller.task_prior() if keys else None
                for key, distribution in zip(keys, averaged, strict=True):
                    if isinstance(distribution, str):
                        reject(key, distribution)
                    else:
                        results[key].update(order_averaged_soft_labels=distribution, debias_prior=task_prior)
            for key, outcome in accepted.items():
                self.labeller.accept(results[key], *outcome)
            pending = [key for key in pending if key not in accepted and attempts[key] < self.config.max_attempts]
        return to_columns([results[key] for key in results], self.features)

    def pool_dataset(self) -> Dataset:
        """The real rows the prompts' examples are drawn from, as a `Dataset` (text and label columns)."""
        features = Features({self.text_column: Value("string"), self.label_column: ClassLabel(names=self.label_names)})
        return Dataset.from_dict({self.text_column: self.pool_texts, self.label_column: self.pool_labels},
                                 features=features)

    def _row_written(self, rows: int = 1):
        """Move the progress bar of `augment()` (if one is open) by `rows` rows whose generation was accepted;
        back by one (`rows=-1`) for a row that calibration then sends to another attempt."""
        if self.progress is not None:
            self.progress.update(rows)
