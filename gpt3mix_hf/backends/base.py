"""What the augmenter needs from a language model: sample a continuation, score label continuations."""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from ..validation import check_fields


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
        check_fields(self)
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}.")
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

# Called with (index of a row, its final completion, label scores included): a (prompt, seed) to generate the
# row again in its place, or None to keep the completion.
NextAttempt = Callable[[int, Completion], "tuple[str, int] | None"]


class Backend(ABC):
    """A language model the augmenter can sample from and score with.

    Subclasses implement `generate` and `score`; a backend that can do both in one pass (reusing the
    prompt's computation) overrides `generate_and_score`. `kind` is the `"backend"` entry of `identity`, and a
    subclass that can be rebuilt from its identity overrides `from_identity`.
    """

    kind: ClassVar[str | None] = None

    @staticmethod
    def check_seeds(prompts: list[str], seeds: list[int]):
        """Every backend's first check: one seed per prompt (a row's randomness is its seed alone)."""
        if len(prompts) != len(seeds):
            raise ValueError(f"Got {len(prompts)} prompts but {len(seeds)} seeds: give one seed per prompt.")

    @classmethod
    def from_identity(cls, identity: dict, **kwargs) -> Backend:
        """The backend an `identity` (a provenance file's `backend` entry) describes.

        Called on `Backend`, it hands over to the backend class whose `kind` is `identity["backend"]`; keyword
        arguments go to that class's `from_identity` (e.g. `base_url=` for a served backend, `device=` for a
        local one).

        Example:

        >>> backend = Backend.from_identity(GPT3MixConfig.from_pretrained("out").backend, base_url="http://127.0.0.1:8000/v1")
        """
        kind = identity.get("backend") if isinstance(identity, dict) else None
        if cls is Backend:
            importlib.import_module(__package__)  # every backend class of the package, registered by import
            for subclass in _subclasses(Backend):
                if subclass.kind is not None and subclass.kind == kind:
                    return subclass.from_identity(identity, **kwargs)
            known = sorted({sub.kind for sub in _subclasses(Backend) if sub.kind is not None})
            raise ValueError(
                f"No backend of kind {kind!r} (identity keys {sorted(identity) if isinstance(identity, dict) else []}"
                f"); known kinds: {known}. Build the backend yourself and pass it as backend=."
            )
        raise ValueError(
            f"{cls.__name__} cannot be rebuilt from its identity: build it yourself (same model and settings) and "
            "pass it as backend=."
        )

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

    def score_with_mass(
        self, prompts: list[str], contexts: list[str], continuations: list[str]
    ) -> list[tuple[list[float], float]]:
        """`score`, each row with the share of the next-token probability its continuations covered (its
        `Completion.label_mass`): 1.0 where scoring is exact, as here. A backend that sees only the top few
        alternatives overrides it, so that `min_label_mass` can judge every score a label is made of."""
        return [(logprobs, 1.0) for logprobs in self.score(prompts, contexts, continuations)]

    def tokenize(self, text: str) -> list[int] | None:
        """The token ids of `text` (no special tokens added), or None where the backend has no tokenizer."""
        return None

    @property
    def max_context(self) -> int | None:
        """The most tokens the model attends to, or None where unknown."""
        return None

    @property
    def uses_cuda(self) -> bool:
        """Whether this process runs the model on a CUDA device: the worker processes of `map(num_proc=...)`,
        forked from it, could not use that device."""
        return False

    def generate_and_score(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
        next_attempt: NextAttempt | None = None,
    ) -> list[Completion]:
        """Generate, then score `continuations` after the generations that parse (`scoring_context` is not
        None). With `continuations=None`, only generate.

        Args:
            next_attempt (`NextAttempt`, *optional*): called with (index in `prompts`, completion) once a row's
                completion is final, label scores included. It returns a (prompt, seed) to generate that row
                again, or None to keep the completion; the row's last completion is returned. Here the rows to
                try again are generated together once the round ends; a backend that batches continuously
                starts each one as soon as a slot frees.
        """
        self.check_seeds(prompts, seeds)
        prompts, seeds = list(prompts), list(seeds)
        completions: list[Completion | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        while todo:
            answers = self.generate_and_score_once(
                [prompts[i] for i in todo], [seeds[i] for i in todo], sampling, scoring_context, continuations
            )
            again = []
            for i, completion in zip(todo, answers, strict=True):
                completions[i] = completion
                attempt = next_attempt(i, completion) if next_attempt is not None else None
                if attempt is not None:
                    prompts[i], seeds[i] = attempt
                    again.append(i)
            todo = again
        return completions

    def generate_and_score_once(
        self,
        prompts: list[str],
        seeds: list[int],
        sampling: SamplingConfig,
        scoring_context: ScoringContext,
        continuations: list[str] | None,
    ) -> list[Completion]:
        """One round of `generate_and_score`: every prompt generated once, its generation scored if it parses.

        `generate_and_score` calls it once per round of attempts; a backend overrides it to run a round its own
        way (a served backend scores each row as soon as its generation is back).
        """
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


def _subclasses(root: type) -> list[type]:
    """Every subclass of `root`, breadth first: a base backend comes before the classes derived from it."""
    found, queue = [], list(root.__subclasses__())
    while queue:
        subclass = queue.pop(0)
        if subclass not in found:
            found.append(subclass)
            queue.extend(subclass.__subclasses__())
    return found
