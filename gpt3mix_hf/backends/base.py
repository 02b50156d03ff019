"""What the augmenter needs from a language model: sample a continuation, score label continuations."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SamplingConfig:
    """How the LM samples a new item.

    Args:
        temperature (`float`): softmax temperature; 0 means greedy.
        top_p (`float`): nucleus sampling mass, in (0, 1].
        max_new_tokens (`int`): the most tokens one generation may take; generation also stops at the end
            of the line.
    """

    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (0 = greedy)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass, in (0, 1]."})
    max_new_tokens: int = field(default=64, metadata={"help": "Most tokens per generation."})

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Completion:
    """One generation, and when it parsed and soft labels were asked for, the log-probability of each label.

    `label_logprobs[y]` is log p_LM(label continuation y | prompt + scoring context): the full
    multi-token sequence, not an approximation. `label_mass` is the share of the next-token
    probability that the label words covered, for backends that can only see top-k alternatives
    (1.0 where scoring is exact).
    """

    text: str
    num_tokens: int
    label_logprobs: list[float] | None = None
    label_mass: float = 1.0


# Maps a generation to the text that precedes the label words when scoring, or None if it did not parse.
ScoringContext = Callable[[str], "str | None"]


class Backend(ABC):
    """A language model the augmenter can sample from and score with.

    Subclasses implement `generate` and `score`; a backend that can do both in one pass (reusing the
    prompt's computation) overrides `generate_and_score`.
    """

    @property
    @abstractmethod
    def identity(self) -> dict:
        """What determines this backend's outputs (model, revision, dtype...): it goes into the augmented
        dataset's fingerprint and provenance. Must not contain secrets."""

    @abstractmethod
    def generate(self, prompts: list[str], seeds: list[int], sampling: SamplingConfig) -> list[Completion]:
        """One sampled continuation per prompt, stopped at the end of its first line; `seeds[i]` alone
        decides the randomness of prompt i."""

    @abstractmethod
    def score(self, prompts: list[str], contexts: list[str], continuations: list[str]) -> list[list[float]]:
        """For each i, the log-probability of every continuation after `prompts[i] + contexts[i]`."""

    def tokenize(self, text: str) -> list[int] | None:
        """The token ids of `text` (no special tokens added), or None where the backend has no tokenizer."""
        return None

    @property
    def max_context(self) -> int | None:
        """The most tokens the model attends to, or None where unknown."""
        return None

    def generate_and_score(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
    ) -> list[Completion]:
        """Generate, then score `continuations` after the generations that parse (`scoring_context` is not
        None). With `continuations=None`, only generate."""
        completions = self.generate(prompts, seeds, sampling)
        if continuations is None:
            return completions
        todo = [(i, scoring_context(c.text)) for i, c in enumerate(completions)]
        todo = [(i, context) for i, context in todo if context is not None]
        if todo:
            scores = self.score([prompts[i] for i, _ in todo], [context for _, context in todo], continuations)
            for (i, _), logprobs in zip(todo, scores, strict=True):
                completions[i].label_logprobs = logprobs
        return completions
