"""`AugmenterConfig`: the augmenter's settings, spelled once.

The one dataclass is at the same time `GPT3MixAugmenter`'s keyword arguments, the flags of `gpt3mix augment`
and `gpt3mix experiment` (read by `HfArgumentParser`: each field's `help` is its flag's help) and the
`augmenter` section of `gpt3mix_config.json` (trl's `SFTConfig` pattern). A new setting is a new field here and
the code that uses it, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .labels import CONTENT_FREE_TEXTS
from .selection import STRATEGIES
from .validation import check_fields

# "soft": the LM's label distribution; "hard": its argmax (the paper's hard label, Table 5); "written": the
# label the LM sampled after its text; "debiased" (this package's variant, not the paper's): the distribution
# averaged over example orders, with the task's label prior divided out.
LABEL_MODES = ("soft", "hard", "written", "debiased")
# m, the scoring prompts averaged by the debiased label: with the paper's k = 2, both orders of the examples
# (each example last once). Chosen by scripts/labeller_check.py (README, "Debiased labels").
DEFAULT_DEBIAS_ORDERS = 2
# The most pool rows scored for the debiased label's task prior.
DEFAULT_DEBIAS_PRIOR_ROWS = 256


@dataclass(frozen=True)
class AugmenterConfig:
    """What decides GPT3Mix's synthetic rows, beside the LM, the task spec, the prompt template and sampling.
    Frozen, as the task spec, template and sampling are: an augmenter builds its prompts from the settings it
    was given, so a change would have reached its cache fingerprint but not its rows. Make another with
    `dataclasses.replace(config, k=3)`.

    Example:

    >>> config = AugmenterConfig(ratio=5, label_mode="debiased", seed=0)
    >>> augmenter = GPT3MixAugmenter(backend, train, spec, config=config)  # or GPT3MixAugmenter(..., ratio=5, ...)
    """

    k: int = field(
        default=2,
        metadata={"help": "Real examples per prompt (the paper: 2); with anchored and class_balanced selection the "
                  "augmented row is one of them."},
    )
    ratio: float = field(
        default=1.0, metadata={"help": "Synthetic rows per real row; a fractional part is a per-row coin flip."}
    )
    selection: str = field(
        default="anchored",
        metadata={"help": "How the k examples of a prompt are chosen. anchored: the augmented row and k - 1 rows "
                  "drawn from the pool, so every real row is shown in its own synthetic rows' prompts; uniform: k "
                  "rows drawn from the pool for each synthetic row (the paper); class_balanced: the row and k - 1 "
                  "rows of uniformly drawn classes.", "choices": list(STRATEGIES)},
    )
    label_mode: str = field(
        default="soft",
        metadata={"help": "soft: the LM's label distribution; hard: its argmax, one-hot (the paper); written: the "
                  "label the LM wrote after its text (no label scoring); debiased (not the paper's): the "
                  "distribution averaged over debias_orders orders of the prompt's examples, divided by the task's "
                  "label prior (the mean distribution over the pool's rows): the same generations as soft, more "
                  "prefill.", "choices": list(LABEL_MODES)},
    )
    calibrate: bool = field(
        default=False,
        metadata={"help": "Divide out the LM's content-free label prior (Zhao et al., 2021), scored after each "
                  "content_free_texts in the same prompt; the raw distribution is kept. With label_mode='debiased' "
                  "the prior is only recorded (label_prior): the debiased label divides out its own task prior. "
                  "Either way a text whose prior cannot be scored (a label of probability 0, or below "
                  "min_label_mass) goes to another attempt, so that every row carries one."},
    )
    content_free_texts: list[str] = field(
        default_factory=lambda: list(CONTENT_FREE_TEXTS),
        metadata={"help": "calibrate: the content-free texts whose label distributions are averaged for the prior."},
    )
    debias_orders: int = field(
        default=DEFAULT_DEBIAS_ORDERS,
        metadata={"help": "debiased: m, the example orders each text is scored in (the row's own order first, then "
                  "its rotations), at most k!; the README's labeller study chose the default, at k = 2 (both "
                  "orders). With k > 2, m = k puts each example last once (not measured)."},
    )
    debias_prior_rows: int = field(
        default=DEFAULT_DEBIAS_PRIOR_ROWS,
        metadata={"help": "debiased: the most pool rows scored for the task prior."},
    )
    min_label_mass: float = field(
        default=0.0,
        metadata={"help": "A served LM that returns only its top few alternatives at the label position covers part "
                  "of the probability (the row's label_mass); a generation whose label words cover less than this "
                  "share is tried again. 0: keep every row (a local LM always covers all of it). Every score the "
                  "label is made of is checked: the content-free texts' (calibrate), the other example orders' "
                  "(label_mode='debiased'), and the task prior's rows, of which those short of it are left out."},
    )
    seed: int = field(default=0, metadata={"help": "Master seed of the augmentation."})
    max_attempts: int = field(
        default=4, metadata={"help": "Generations tried per synthetic row before it is recorded as failed."}
    )
    keep_prompt: bool = field(default=False, metadata={"help": "Store each row's full prompt in a prompt column."})

    def __post_init__(self):
        if isinstance(self.content_free_texts, tuple):
            object.__setattr__(self, "content_free_texts", list(self.content_free_texts))
        check_fields(self)
        if not 0 < self.ratio < math.inf:
            raise ValueError(f"ratio (synthetic rows per real row) must be a finite number > 0, got {self.ratio!r}.")
        object.__setattr__(self, "ratio", float(self.ratio))
        if not 0 <= self.min_label_mass <= 1:
            raise ValueError(f"min_label_mass is a share of probability, in [0, 1]: got {self.min_label_mass}.")
        for name in ("k", "max_attempts", "debias_prior_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}.")
        if self.debias_orders < 1 or (self.label_mode == "debiased" and self.debias_orders > math.factorial(self.k)):
            default = " (its default, for k >= 2)" if self.debias_orders == DEFAULT_DEBIAS_ORDERS else ""
            raise ValueError(
                f"debias_orders must be a whole number in [1, {math.factorial(self.k)}] (the orders of k={self.k} "
                f"examples), got {self.debias_orders!r}{default}."
            )
        if self.calibrate and self.label_mode == "written":
            raise ValueError(
                "calibrate=True changes the LM's label distribution, which label_mode='written' does not use: use "
                "label_mode='soft' or 'hard' with calibration, or calibrate=False."
            )
        if self.calibrate and not self.content_free_texts:
            raise ValueError(
                f"content_free_texts must be a non-empty list of strings with calibrate=True (Zhao et al. use "
                f"{list(CONTENT_FREE_TEXTS)})."
            )

    def to_dict(self) -> dict:
        return asdict(self)
