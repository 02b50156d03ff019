"""GPT3MixAugmenter: a `Dataset.map` callable that turns real rows into synthetic, soft-labelled rows."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, Sequence, Value, concatenate_datasets, load_from_disk
from datasets.fingerprint import Hasher
from transformers.utils import logging

from .backends.base import Backend, SamplingConfig
from .data import _validate_dataset
from .data import concatenate_with_real as concatenate_with_real  # re-exported: its home is data.py
from .prompt import GenerationParser, PromptTemplate
from .selection import ExampleSelector, row_rng
from .soft_labels import normalize_logprobs, one_hot
from .spec import TaskSpec

logger = logging.get_logger(__name__)

LABEL_MODES = ("soft", "hard")
# Tokens kept free after the prompt for the label scoring context, beyond max_new_tokens.
_SCORING_MARGIN = 16


@dataclass
class AugmentationReport:
    """What one `augment` run did, for the CLI summary, dataset cards and provenance."""

    rows_requested: int
    rows_written: int
    failed_rows: int
    parse_failures: int
    generated_tokens: int
    seconds: float
    failures: list[dict]

    @property
    def samples_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("nan")

    @property
    def parse_failure_rate(self) -> float:
        attempts = self.rows_written + self.parse_failures
        return self.parse_failures / attempts if attempts else 0.0

    def to_dict(self) -> dict:
        summary = asdict(self)
        summary.pop("failures")
        summary["samples_per_second"] = self.samples_per_second
        summary["parse_failure_rate"] = self.parse_failure_rate
        return summary


class GPT3MixAugmenter:
    """Makes `ratio` synthetic rows per real row: each prompt shows the row and k - 1 partners drawn from
    `dataset`, the LM writes a new item, and the LM's probabilities of the label words give its soft label.

    Use it as `dataset.map(augmenter, batched=True, with_indices=True, remove_columns=dataset.column_names,
    features=augmenter.features)`, or call `augmenter.augment()`. The output rows are `text`, `label`
    (the argmax of the soft label in `"soft"` mode, the LM's own label in `"hard"` mode), `soft_labels`,
    `written_label` (the label the LM wrote), `source_ids` (the real rows in the prompt), `generation`
    (the raw line), `failed_attempts` (generations that did not parse, with the reason), `generated_tokens`,
    `label_mass` and, with `keep_prompt=True`, `prompt`. A row whose every attempt failed is kept with
    `label = -1` and an empty soft label; `augment()` moves those rows to its report.

    Every random choice of a synthetic row is seeded by (seed, real row id, copy, attempt), so the same
    seed, data and model give the same rows whatever the `batch_size` or `num_proc` of `map`.

    Args:
        backend (`Backend`): the LM, e.g. `TransformersBackend.from_pretrained("smollm2")`.
        dataset (`Dataset`): the real labelled rows the prompts' examples are drawn from.
        spec (`TaskSpec`, *optional*): text type, label type and verbalizer. Default: the label names as
            words (`TaskSpec.from_class_label`).
        k (`int`): examples per prompt, the anchor row included (the paper: 2).
        ratio (`float`): synthetic rows per real row; a fractional part is a per-row coin flip.
        selection (`str`): `"uniform"` (the paper) or `"class_balanced"`.
        label_mode (`str`): `"soft"` (the LM's label distribution) or `"hard"` (one-hot on the label it wrote).
        seed (`int`): the master seed.
        sampling (`SamplingConfig`, *optional*): temperature, top-p, max new tokens.
        template (`PromptTemplate`, *optional*): the paper's template by default.
        text_column, label_column (`str`): where the text and the `ClassLabel` are.
        max_attempts (`int`): generations tried per synthetic row before it is recorded as failed.
        keep_prompt (`bool`): store the full prompt of each row.

    Example:

    >>> augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), ratio=5, seed=0)
    >>> synthetic = augmenter.augment()
    >>> mixed = concatenate_with_real(train, synthetic)
    """

    def __init__(
        self,
        backend: Backend,
        dataset: Dataset,
        spec: TaskSpec | None = None,
        *,
        k: int = 2,
        ratio: float = 1.0,
        selection: str = "uniform",
        label_mode: str = "soft",
        seed: int = 0,
        sampling: SamplingConfig | None = None,
        template: PromptTemplate | None = None,
        text_column: str = "text",
        label_column: str = "label",
        max_attempts: int = 4,
        keep_prompt: bool = False,
    ):
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a gpt3mix_hf Backend, got {type(backend).__name__}.")
        if not isinstance(ratio, int | float) or not ratio > 0:
            raise ValueError(f"ratio (synthetic rows per real row) must be > 0, got {ratio!r}.")
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}.")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}.")
        texts, labels, class_label = _validate_dataset(dataset, text_column, label_column)
        self.label_names = list(class_label.names)
        self.spec = spec or TaskSpec.from_class_label(class_label)
        self.template = template or PromptTemplate()
        self.sampling = sampling or SamplingConfig()
        self.backend = backend
        self.k, self.ratio, self.selection, self.label_mode, self.seed = k, float(ratio), selection, label_mode, seed
        self.text_column, self.label_column = text_column, label_column
        self.max_attempts, self.keep_prompt = max_attempts, keep_prompt
        self._texts, self._labels = texts, labels
        self._selector = ExampleSelector(labels, len(self.label_names), k=k, strategy=selection)
        self._parser = GenerationParser(self.template, self.spec, self.label_names)
        self._check_label_words()
        empty = sorted(set(range(len(self.label_names))) - set(labels))
        if empty:
            logger.warning(
                f"Labels {[self.label_names[i] for i in empty]} have no rows in the dataset: no prompt shows "
                "them, but the LM may still write them and they keep their share of every soft label."
            )

    # -- configuration -----------------------------------------------------------------------------------

    @property
    def features(self) -> Features:
        """The output features; pass them to `Dataset.map(features=...)` to keep `label` a `ClassLabel`."""
        features = {
            "text": Value("string"),
            "label": ClassLabel(names=self.label_names),
            "soft_labels": Sequence(Value("float32")),
            "written_label": ClassLabel(names=self.label_names),
            "source_ids": Sequence(Value("int64")),
            "generation": Value("string"),
            "failed_attempts": [{"generation": Value("string"), "error": Value("string")}],
            "generated_tokens": Value("int32"),
            "label_mass": Value("float32"),
        }
        if self.keep_prompt:
            features["prompt"] = Value("string")
        return Features(features)

    def config(self) -> dict:
        """Everything that decides the synthetic rows, as plain data (provenance for cards and config files)."""
        return {
            "backend": self.backend.identity,
            "spec": self.spec.to_dict(),
            "template": self.template.to_dict(),
            "sampling": self.sampling.to_dict(),
            "k": self.k,
            "ratio": self.ratio,
            "selection": self.selection,
            "label_mode": self.label_mode,
            "seed": self.seed,
            "max_attempts": self.max_attempts,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "label_names": self.label_names,
        }

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

    def __getstate__(self):
        # Pickled for `map(num_proc=...)` workers and hashed for the `datasets` fingerprint: the backend
        # pickles as its source where it has one, and the pool is kept as plain lists.
        state = self.__dict__.copy()
        state.pop("_selector")
        state.pop("_parser")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._selector = ExampleSelector(self._labels, len(self.label_names), k=self.k, strategy=self.selection)
        self._parser = GenerationParser(self.template, self.spec, self.label_names)

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

    # -- generation --------------------------------------------------------------------------------------

    def _copies(self, row: int) -> int:
        whole = int(self.ratio)
        fraction = self.ratio - whole
        if fraction and row_rng(self.seed, row, -1).random() < fraction:
            whole += 1
        return whole

    def _prompt(self, row: int, copy: int, attempt: int) -> tuple[str, list[int], int]:
        rng = row_rng(self.seed, row, copy, attempt)
        source_ids = self._selector.select(row, rng)
        generation_seed = int(rng.integers(2**63 - 1))
        examples = [(self._texts[i], self._labels[i]) for i in source_ids]
        return self._fit(examples), source_ids, generation_seed

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

    def _scoring_context(self, generation: str) -> str | None:
        parsed = self._parser(generation)
        if not parsed.ok:
            return None
        return self.template.scoring_parts(self.spec, self.label_names, parsed.text)[0]

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, list]:
        if indices is None:
            raise ValueError(
                "GPT3MixAugmenter needs the rows' indices to seed each synthetic row: call "
                "dataset.map(augmenter, batched=True, with_indices=True, ...)."
            )
        if isinstance(indices, int):
            raise ValueError("GPT3MixAugmenter works on batches: call dataset.map(augmenter, batched=True, ...).")
        # (row, copy) pairs still to make, and what has been collected for each.
        pending = [(row, copy) for row in indices for copy in range(self._copies(row))]
        results: dict[tuple[int, int], dict] = {
            key: {"failed_attempts": [], "generated_tokens": 0} for key in pending
        }
        continuations = None
        if self.label_mode == "soft":
            continuations = self.template.scoring_parts(self.spec, self.label_names, "")[1]
        for attempt in range(self.max_attempts):
            if not pending:
                break
            prompts, seeds = [], []
            for row, copy in pending:
                prompt, source_ids, generation_seed = self._prompt(row, copy, attempt)
                results[row, copy].update(prompt=prompt, source_ids=source_ids)
                prompts.append(prompt)
                seeds.append(generation_seed)
            completions = self.backend.generate_and_score(
                prompts, seeds, self.sampling, self._scoring_context, continuations
            )
            still_pending = []
            for key, completion in zip(pending, completions, strict=True):
                result = results[key]
                result["generated_tokens"] += completion.num_tokens
                error = self._accept(result, completion)
                if error is not None:
                    result["failed_attempts"].append({"generation": completion.text, "error": error})
                    still_pending.append(key)
            pending = still_pending
        return self._columns([results[key] for key in results])

    def _accept(self, result: dict, completion) -> str | None:
        """Fill `result` from a completion; return why it was rejected, or None."""
        parsed = self._parser(completion.text)
        if not parsed.ok:
            return parsed.error
        num_labels = len(self.label_names)
        if self.label_mode == "soft":
            if completion.label_logprobs is None:
                return "the backend returned no label scores"
            try:
                soft = normalize_logprobs(completion.label_logprobs)
            except ValueError as error:
                return str(error)
            label = int(np.argmax(soft))
        else:
            soft, label = one_hot(parsed.label, num_labels), parsed.label
        result.update(
            text=parsed.text,
            label=label,
            soft_labels=soft,
            written_label=parsed.label,
            generation=completion.text,
            label_mass=completion.label_mass,
        )
        return None

    def _columns(self, results: list[dict]) -> dict[str, list]:
        columns = {name: [] for name in self.features}
        for result in results:
            done = "text" in result
            columns["text"].append(result["text"] if done else "")
            columns["label"].append(result["label"] if done else -1)
            columns["soft_labels"].append(result["soft_labels"] if done else [])
            columns["written_label"].append(result["written_label"] if done else -1)
            columns["source_ids"].append(result["source_ids"])
            columns["generation"].append(result["generation"] if done else "")
            columns["failed_attempts"].append(result["failed_attempts"])
            columns["generated_tokens"].append(result["generated_tokens"])
            columns["label_mass"].append(result["label_mass"] if done else 0.0)
            if self.keep_prompt:
                columns["prompt"].append(result["prompt"])
        return columns

    def augment(
        self,
        dataset: Dataset | None = None,
        *,
        batch_size: int = 16,
        num_proc: int | None = None,
        load_from_cache_file: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        shard_size: int = 256,
    ) -> Dataset:
        """The synthetic rows for `dataset` (default: every row of the pool) as a `Dataset`.

        Rows whose every attempt failed are left out of the result and kept, with their generations and
        reasons, in `self.report.failures`; `self.report` also counts rows, parse failures, tokens and time.

        With `checkpoint_dir`, the rows are made `shard_size` real rows at a time and each finished shard is
        saved there: a run that stops half-way keeps its shards, and the same call resumes from them.
        """
        dataset = dataset if dataset is not None else self.pool_dataset()
        start = time.perf_counter()
        map_kwargs = {"batch_size": batch_size, "num_proc": num_proc, "load_from_cache_file": load_from_cache_file}
        if checkpoint_dir is None:
            generated = self._map(dataset, 0, **map_kwargs)
        else:
            generated = self._augment_in_shards(dataset, Path(checkpoint_dir), shard_size, **map_kwargs)
        seconds = time.perf_counter() - start
        labels = np.asarray(generated["label"])
        failed = generated.select(np.flatnonzero(labels < 0))
        synthetic = generated.select(np.flatnonzero(labels >= 0))
        self.report = AugmentationReport(
            rows_requested=len(generated),
            rows_written=len(synthetic),
            failed_rows=len(failed),
            parse_failures=sum(len(attempts) for attempts in generated["failed_attempts"]),
            generated_tokens=int(np.sum(generated["generated_tokens"])),
            seconds=seconds,
            failures=failed.to_list(),
        )
        if len(failed):
            logger.warning(
                f"{len(failed)} synthetic rows failed all {self.max_attempts} attempts; see augmenter.report."
            )
        return synthetic

    def _map(self, dataset: Dataset, offset: int, **map_kwargs) -> Dataset:
        return dataset.map(
            self if offset == 0 else _Offset(self, offset),
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            features=self.features,
            desc="GPT3Mix augmentation",
            **map_kwargs,
        )

    def _augment_in_shards(self, dataset: Dataset, folder: Path, shard_size: int, **map_kwargs) -> Dataset:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}.")
        manifest = {
            "augmenter": Hasher.hash([self.config(), self._texts, self._labels]),
            "dataset": Hasher.hash(dataset.select_columns([self.text_column, self.label_column]).to_dict()),
            "shard_size": shard_size,
        }
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / "manifest.json"
        if manifest_path.exists():
            if json.loads(manifest_path.read_text()) != manifest:
                raise ValueError(
                    f"{folder} holds the shards of a run with other settings or data: pass another "
                    "checkpoint_dir, or delete that folder to start over."
                )
        else:
            manifest_path.write_text(json.dumps(manifest, indent=2))
        shards = []
        num_shards = math.ceil(len(dataset) / shard_size)
        for number in range(num_shards):
            path = folder / f"shard-{number:05d}-of-{num_shards:05d}"
            if not path.exists():
                begin = number * shard_size
                part = dataset.select(range(begin, min(begin + shard_size, len(dataset))))
                staging = folder / f".{path.name}.partial"
                shutil.rmtree(staging, ignore_errors=True)
                self._map(part, begin, **map_kwargs).save_to_disk(staging)
                staging.rename(path)
            else:
                logger.info(f"Resuming: {path.name} is already done.")
            shards.append(load_from_disk(path))
        return concatenate_datasets(shards)

    def pool_dataset(self) -> Dataset:
        """The real rows the prompts' examples are drawn from, as a `Dataset` (text and label columns)."""
        features = Features({self.text_column: Value("string"), self.label_column: ClassLabel(names=self.label_names)})
        return Dataset.from_dict({self.text_column: self._texts, self.label_column: self._labels}, features=features)


class _Offset:
    """The augmenter on a slice of the data: its row ids are shifted back to ids in the whole dataset."""

    def __init__(self, augmenter: GPT3MixAugmenter, offset: int):
        self.augmenter, self.offset = augmenter, offset

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        return self.augmenter(batch, [index + self.offset for index in indices])
