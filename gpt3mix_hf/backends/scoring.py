"""Label scoring in `TransformersBackend`: the log-probability of each label word after a context, on the
prompt's key/value cache kept from generation (or, without one, in one pass per prompt)."""

from __future__ import annotations

import torch

from .kv_cache import stack_prompt_caches


class LabelScoringMixin:
    """The scoring side of `TransformersBackend` (it uses the backend's `model`, `tokenizer`, `_forward` and
    `_right_pad`)."""

    def _score_prompt_caches(self, items, continuations: list[str]) -> list[list[float]]:
        """Label log-probabilities for (index, context, prompt key/values, prompt length) items, together."""
        cache, mask = stack_prompt_caches([(kv, length) for _, _, kv, length in items], self.device)
        return self._score_on_cache(cache, mask, list(range(len(items))), [c for _, c, _, _ in items], continuations)

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
