"""Label scoring in the local engine: the log-probability of each label word after a context, on the prompt's
key/value cache kept from generation (or, without one, in one pass per prompt)."""

from __future__ import annotations

import torch

from . import prefill as prefilling
from .kv_cache import stack_prompt_caches
from .model_runner import ModelRunner


class LabelScorer:
    """Scores label words after contexts with `runner`'s model: the scoring side of `TransformersBackend`, which
    holds one (on its own model, or on a float32 twin of it).

    Args:
        runner (`ModelRunner`): the model and tokenizer to score with.
        batch_size (`int`): prompts prefilled together by `score`.

    Example:

    >>> scorer = LabelScorer(ModelRunner(model.eval(), tokenizer), batch_size=8)
    >>> scorer.score(["Review: fine\n"], ["Review: great film (Sentiment:"], [" positive", " negative"])
    """

    def __init__(self, runner: ModelRunner, batch_size: int):
        self.runner = runner
        self.batch_size = batch_size

    @property
    def tokenizer(self):
        return self.runner.tokenizer

    @property
    def device(self) -> torch.device:
        return self.runner.device

    def one_token_labels(self, continuations: list[str]) -> list[int] | None:
        """The token id of each label continuation, where every one is a single token; else None."""
        label_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        return [ids[0] for ids in label_ids] if all(len(ids) == 1 for ids in label_ids) else None

    def traced_scores(self, context: str, generated: list[int], trace: list[list[float]]) -> list[float] | None:
        """A finished row's label log-probabilities read from its decoding: where the tokens it generated begin
        with exactly the tokens of `context` and go on, the step after them predicted the label from the same
        sequence that a scoring pass would run (`trace`: the labels' log-probabilities at every step). None
        where they do not (another tokenisation, or a context the row did not write), and the row is scored."""
        context_ids = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        if len(generated) <= len(context_ids) or generated[: len(context_ids)] != context_ids:
            return None
        return trace[len(context_ids)]

    def score_prompt_caches(self, items, continuations: list[str]) -> list[list[float]]:
        """Label log-probabilities for (index, context, prompt key/values, prompt length) items, together."""
        cache, mask = stack_prompt_caches([(kv, length) for _, _, kv, length in items], self.device)
        return self.score_on_cache(cache, mask, list(range(len(items))), [c for _, c, _, _ in items], continuations)

    def score_on_cache(self, cache, prompt_mask, rows, contexts, continuations) -> list[list[float]]:
        """Label log-probabilities on the prompt's cache: each new text goes through the model once, and only
        the tokens of multi-token labels once more per (row, label)."""
        context_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in contexts]
        label_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        # A label's first log-probability is read at the context's last token: both need one.
        for what, texts, ids in (("context", contexts, context_ids), ("label continuation", continuations, label_ids)):
            empty = [text for text, token_ids in zip(texts, ids, strict=True) if not token_ids]
            if empty:
                raise ValueError(f"The {what} {empty[0]!r} has no tokens: give each a text, e.g. ' (Sentiment:' "
                                 "and ' positive'.")
        cache.batch_select_indices(torch.tensor(rows, device=self.device))
        history = prompt_mask[rows]
        start = history.sum(-1, keepdim=True)
        ids, mask = self.runner.right_pad(context_ids)
        logits = self.runner.forward(
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
        label_tensor, label_mask = self.runner.right_pad(label_ids)
        logits = self.runner.forward(
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

    @torch.inference_mode()
    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        """Label log-probabilities for each (prompt, context) pair, without a generation's cache: each distinct
        prompt goes through the model once (the header all prompts share, once per call), `batch_size` prompts
        at a time, then its contexts and labels on its key/value cache, as after generation."""
        if not prompts:
            return []
        distinct = list(dict.fromkeys(prompts))
        where = {prompt: i for i, prompt in enumerate(distinct)}
        prompt_ids = self.tokenizer(distinct)["input_ids"]
        shared = prefilling.shared_prefix(self.runner, prompt_ids)
        scores: list[list[float] | None] = [None] * len(prompts)
        for start in range(0, len(distinct), self.batch_size):
            chunk = list(range(start, min(start + self.batch_size, len(distinct))))
            batch = prefilling.prefill(self.runner, chunk, [prompt_ids[i] for i in chunk], shared)
            pairs = [j for j, prompt in enumerate(prompts) if start <= where[prompt] < start + len(chunk)]
            rows = [where[prompts[j]] - start for j in pairs]
            found = self.score_on_cache(batch.cache, batch.mask, rows, [contexts[j] for j in pairs], continuations)
            for j, logprobs in zip(pairs, found, strict=True):
                scores[j] = logprobs
        return scores
