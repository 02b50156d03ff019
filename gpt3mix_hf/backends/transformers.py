"""A local causal LM through transformers: batched, left-padded sampling with exact label scores."""

from __future__ import annotations

import inspect
import os
from functools import cached_property
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

from ..models import resolve_lm
from .base import Backend, Completion, SamplingConfig, ScoringContext

logger = logging.get_logger(__name__)

# A process whose pid differs from this one was forked from the process that imported the module.
_IMPORTED_IN_PID = os.getpid()


class TransformersBackend(Backend):
    """Samples from and scores with a local `AutoModelForCausalLM`.

    Prompts are left-padded and decoded together in batches of `batch_size`; each prompt samples from its
    own `torch.Generator`, so its continuation depends on its seed alone, not on its batch neighbours.
    Soft labels reuse the prompt's key/value cache from the generation pass: per label, only the new
    text and the label word are run through the model.

    Args:
        model (`PreTrainedModel`): a causal LM.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer. Without a pad token, the EOS token pads (pad
            positions are masked, so the choice does not change any result).
        batch_size (`int`): prompts decoded together.
        source (`dict`, *optional*): how to load the model again (`from_pretrained` arguments); set by
            `from_pretrained`. With it, the backend pickles as its source and not its weights, so
            `Dataset.map(num_proc=...)` workers and the `datasets` fingerprint stay cheap.

    Example:

    >>> backend = TransformersBackend.from_pretrained("smollm2")  # the embedded default
    >>> backend.generate(["Movie review:"], seeds=[0], sampling=SamplingConfig(max_new_tokens=8))[0].text
    """

    kind = "transformers"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 8,
        source: dict | None = None,
    ):
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

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str = "smollm2",
        revision: str | None = None,
        dtype: str = "float32",
        device: str | None = None,
        batch_size: int = 8,
    ) -> TransformersBackend:
        """Load a causal LM: a Hub id, a local folder, or a short name of an embedded model (`smollm2`)."""
        source = {
            "model_name_or_path": model_name_or_path,
            "revision": revision,
            "dtype": dtype,
            "device": device,
            "batch_size": batch_size,
        }
        path = resolve_lm(model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=getattr(torch, dtype))
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, tokenizer, batch_size=batch_size, source=source)

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
        return cls.from_pretrained(
            name, revision=revision, dtype=identity["dtype"], device=device or identity["device"],
            batch_size=batch_size or 8,
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
            return {"backend": "transformers", **{k: v for k, v in self.source.items() if k != "batch_size"},
                    "commit": commit}
        return {"backend": "transformers", "model": self.model.config.to_dict()}

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @cached_property
    def _line_break_tokens(self) -> torch.Tensor:
        """Token ids whose text contains a line break: an item ends at the first one."""
        vocab_size = len(self.tokenizer)
        pieces = self.tokenizer.batch_decode([[i] for i in range(vocab_size)])
        flags = torch.zeros(max(vocab_size, self.model.config.vocab_size), dtype=torch.bool)
        for i, piece in enumerate(pieces):
            flags[i] = "\n" in piece
        if self.tokenizer.eos_token_id is not None:
            flags[self.tokenizer.eos_token_id] = True
        return flags

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, prompts: list[str], seeds: list[int], sampling: SamplingConfig) -> list[Completion]:
        return self.generate_and_score(prompts, seeds, sampling, lambda text: None, None)

    def generate_and_score(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
    ) -> list[Completion]:
        if len(prompts) != len(seeds):
            raise ValueError(f"Got {len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt.")
        completions: list[Completion] = []
        for start in range(0, len(prompts), self.batch_size):
            stop = start + self.batch_size
            completions.extend(
                self._generate_batch(prompts[start:stop], seeds[start:stop], sampling, scoring_context, continuations)
            )
        return completions

    @torch.inference_mode()
    def _generate_batch(self, prompts, seeds, sampling, scoring_context, continuations) -> list[Completion]:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        prompt_mask = encoded["attention_mask"]
        prompt_length = prompt_mask.shape[1]
        generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]

        cache = DynamicCache(config=self.model.config)
        mask = prompt_mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._forward(
            input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions, cache=cache, logits_to_keep=1
        )[:, -1, :]
        positions = positions[:, -1:]

        line_breaks = self._line_break_tokens.to(self.device)
        tokens: list[list[int]] = [[] for _ in prompts]
        finished = torch.zeros(len(prompts), dtype=torch.bool, device=self.device)
        for _ in range(sampling.max_new_tokens):
            next_tokens = _sample(logits.float(), sampling, generators).to(self.device)
            next_tokens = torch.where(finished, self.tokenizer.pad_token_id, next_tokens)
            for row in torch.nonzero(~finished).flatten().tolist():
                tokens[row].append(int(next_tokens[row]))
            finished |= line_breaks[next_tokens]
            if bool(finished.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions + 1
            logits = self._forward(
                input_ids=next_tokens[:, None], attention_mask=mask, position_ids=positions, cache=cache
            )[:, -1, :]

        completions = [
            Completion(text=self.tokenizer.decode(row_tokens, skip_special_tokens=True).split("\n", 1)[0],
                       num_tokens=len(row_tokens))
            for row_tokens in tokens
        ]
        if continuations is None:
            return completions
        contexts = [scoring_context(c.text) for c in completions]
        rows = [i for i, context in enumerate(contexts) if context is not None]
        if not rows:
            return completions
        if cache.is_croppable:
            cache.crop(prompt_length - cache.get_seq_length())
            scores = self._score_on_cache(cache, prompt_mask, rows, [contexts[i] for i in rows], continuations)
        else:
            scores = self.score([prompts[i] for i in rows], [contexts[i] for i in rows], continuations)
        for row, logprobs in zip(rows, scores, strict=True):
            completions[row].label_logprobs = logprobs
        return completions

    def _forward(self, cache: DynamicCache, **inputs) -> torch.Tensor:
        # transformers renamed `past_key_values` to `cache` during 5.x; accept both generations.
        inputs[self._cache_argument] = cache
        return self.model(**inputs).logits

    @cached_property
    def _cache_argument(self) -> str:
        parameters = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    # -- scoring ------------------------------------------------------------------------------------------

    def _encode_continuations(self, contexts: list[str], continuations: list[str]):
        """Token ids of each (context, continuation) pair, right-padded: [rows * labels, length], and the
        context lengths and continuation token ids needed to read the label log-probabilities back."""
        context_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in contexts]
        label_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        ids, mask = self._right_pad([ctx + lab for ctx in context_ids for lab in label_ids])
        return ids, mask, context_ids, label_ids

    @staticmethod
    def _read_label_logprobs(logits, offsets, context_ids, label_ids) -> list[list[float]]:
        """Sum the log-probabilities of each label's tokens. `offsets[i]` is where row i's continuation
        starts in `logits` (the position whose logits predict the continuation's first token, plus one)."""
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        sequence = 0
        for row, ctx in enumerate(context_ids):
            row_scores = []
            for lab in label_ids:
                start = offsets[row] + len(ctx)
                positions = torch.arange(start - 1, start - 1 + len(lab), device=logprobs.device)
                targets = torch.tensor(lab, device=logprobs.device)
                row_scores.append(float(logprobs[sequence, positions, targets].sum()))
                sequence += 1
            scores.append(row_scores)
        return scores

    def _score_on_cache(self, cache, prompt_mask, rows, contexts, continuations) -> list[list[float]]:
        """Label log-probabilities on the prompt's cache: each new text goes through the model once, and only
        the tokens of multi-token labels once more per (row, label)."""
        context_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in contexts]
        label_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        cache.batch_select_indices(torch.tensor(rows, device=self.device))
        history = prompt_mask[rows]
        start = history.sum(-1, keepdim=True)
        ids, mask = self._right_pad(context_ids)
        logits = self._forward(
            input_ids=ids,
            attention_mask=torch.cat([history, mask], dim=1),
            position_ids=start + torch.arange(ids.shape[1], device=self.device),
            cache=cache,
        )
        # A context's last position predicts the first token of every label.
        lengths = mask.sum(-1)
        first = torch.log_softmax(logits[torch.arange(len(rows), device=self.device), lengths - 1].float(), dim=-1)
        scores = [[float(first[row, label[0]]) for label in label_ids] for row in range(len(rows))]
        if all(len(label) == 1 for label in label_ids):
            return scores
        # Each label's tokens after the context: position j predicts the label's token j + 1.
        num_labels = len(label_ids)
        cache.batch_repeat_interleave(num_labels)
        label_tensor, label_mask = self._right_pad(label_ids)
        logits = self._forward(
            input_ids=label_tensor.repeat(len(rows), 1),
            attention_mask=torch.cat([torch.cat([history, mask], dim=1).repeat_interleave(num_labels, dim=0),
                                      label_mask.repeat(len(rows), 1)], dim=1),
            position_ids=(start + lengths[:, None]).repeat_interleave(num_labels, dim=0)
            + torch.arange(label_tensor.shape[1], device=self.device),
            cache=cache,
        )
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row in range(len(rows)):
            for index, label in enumerate(label_ids):
                sequence = row * num_labels + index
                for position in range(1, len(label)):
                    scores[row][index] += float(logprobs[sequence, position - 1, label[position]])
        return scores

    def _right_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(sequence) for sequence in sequences)
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, sequence in enumerate(sequences):
            ids[i, : len(sequence)] = torch.tensor(sequence)
            mask[i, : len(sequence)] = 1
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        """Score without a cache: one forward pass per (prompt, label) sequence, batched."""
        scores = []
        for i in range(len(prompts)):
            prompt_ids = self.tokenizer(prompts[i])["input_ids"]
            ids, mask, context_ids, label_ids = self._encode_continuations([contexts[i]], continuations)
            prefix = torch.tensor(prompt_ids, device=self.device).expand(ids.shape[0], -1)
            logits = self.model(
                input_ids=torch.cat([prefix, ids], dim=1),
                attention_mask=torch.cat([torch.ones_like(prefix), mask], dim=1),
            ).logits
            scores.extend(self._read_label_logprobs(logits, [len(prompt_ids)], context_ids, label_ids))
        return scores


def _sample(logits: torch.Tensor, sampling: SamplingConfig, generators: list[torch.Generator]) -> torch.Tensor:
    """One token per row; row i draws only from `generators[i]`."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1).cpu()
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the most likely token always stays).
        drop = sorted_probs.cumsum(-1) - sorted_probs >= sampling.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.stack([torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(generators)])
