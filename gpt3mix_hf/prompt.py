"""Building GPT3Mix prompts and parsing the LM's continuation back into (text, label word). Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .spec import TaskSpec

DEFAULT_HEADER = (
    "Each item in the following list contains a {text_type} and the respective {label_type}. "
    "{Label_type} is one of {label_words}."
)
DEFAULT_ITEM = "{Text_type}: {text} ({Label_type}: {label})"


def _capitalize(value: str) -> str:
    return value[:1].upper() + value[1:]


def _quote_words(words: list[str]) -> str:
    quoted = [f"'{word}'" for word in words]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", or {quoted[-1]}"


@dataclass(frozen=True)
class PromptTemplate:
    """The paper's prompt (Appendix A), or your own.

    `header` may use `{text_type}`, `{label_type}` (and their capitalised forms `{Text_type}`,
    `{Label_type}`) and `{label_words}` (`'negative' or 'positive'`). `item` is one line per example and
    must contain `{text}` followed later by `{label}`; the prompt ends with the part of `item` before
    `{text}`, so the LM writes a new text and then its label in the same format.

    Example:

    >>> template = PromptTemplate()
    >>> print(template.build(TaskSpec.from_preset("sst2"), ["negative", "positive"], [("a gem .", 1)]))
    Each item in the following list contains a movie review and the respective sentiment. Sentiment is one of 'negative' or 'positive'.
    Movie review: a gem . (Sentiment: positive)
    Movie review:
    """  # noqa: E501

    header: str = DEFAULT_HEADER
    item: str = DEFAULT_ITEM

    def __post_init__(self):
        text_at, label_at = self.item.find("{text}"), self.item.find("{label}")
        if text_at < 0 or label_at < 0 or label_at < text_at:
            raise ValueError(
                f"PromptTemplate.item must contain '{{text}}' and, after it, '{{label}}'; got {self.item!r}."
            )
        if "\n" in self.item:
            raise ValueError("PromptTemplate.item must be a single line: the LM's line break ends an item.")

    def _fill(self, part: str, spec: TaskSpec) -> str:
        return (
            part.replace("{text_type}", spec.text_type)
            .replace("{Text_type}", _capitalize(spec.text_type))
            .replace("{label_type}", spec.label_type)
            .replace("{Label_type}", _capitalize(spec.label_type))
        )

    def _item_parts(self, spec: TaskSpec) -> tuple[str, str, str]:
        """The item split around its slots: (before text, between text and label, after label)."""
        before_text, rest = self.item.split("{text}", 1)
        between, after_label = rest.split("{label}", 1)
        return self._fill(before_text, spec), self._fill(between, spec), self._fill(after_label, spec)

    def build(self, spec: TaskSpec, label_names: list[str], examples: list[tuple[str, int]]) -> str:
        """The prompt for `examples`, a list of (text, label id) with label ids into `label_names`."""
        words = spec.words_for(label_names)
        header = self._fill(self.header, spec).replace("{label_words}", _quote_words(words))
        before_text, between, after_label = self._item_parts(spec)
        lines = [header]
        for text, label in examples:
            lines.append(f"{before_text}{_one_line(text)}{between}{words[label]}{after_label}")
        lines.append(before_text.rstrip())
        return "\n".join(lines)

    def scoring_parts(self, spec: TaskSpec, label_names: list[str], text: str) -> tuple[str, list[str]]:
        """What follows the prompt when the LM's label is scored: `" <text> (<L>:"` and `[" <word>", ...]`.

        The soft label is p(y | x') ∝ p_LM(label continuation y | prompt + text continuation).
        """
        before_text, between, _ = self._item_parts(spec)
        lead = before_text[len(before_text.rstrip()) :]
        label_lead = between[len(between.rstrip()) :]
        words = spec.words_for(label_names)
        return f"{lead}{text}{between.rstrip()}", [f"{label_lead}{word}" for word in words]

    def parser(self, spec: TaskSpec, label_names: list[str]) -> GenerationParser:
        return GenerationParser(self, spec, label_names)

    def to_dict(self) -> dict:
        return asdict(self)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class ParsedGeneration:
    """One LM continuation, parsed. `label` is a label id, or None when the LM wrote no known label."""

    text: str | None
    label: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class GenerationParser:
    """Pulls (text, label) out of what the LM wrote after the prompt's final `<Text type>:`.

    Only the first line counts (the item format is one line). The label type is matched
    case-insensitively, the label word case-insensitively and without surrounding spaces or quotes.
    """

    def __init__(self, template: PromptTemplate, spec: TaskSpec, label_names: list[str]):
        _, between, after_label = template._item_parts(spec)
        words = spec.words_for(label_names)
        self._word_to_label = {word.strip().lower(): i for i, word in enumerate(words)}
        separator = re.escape(between.strip())
        # The closing part (")" by default) is optional: a generation cut at max_new_tokens right after the
        # label word is still complete.
        closing = re.escape(after_label.strip())
        rest = rf"(?:{closing}.*)?" if closing else ""
        self._pattern = re.compile(rf"^(?P<text>.*?)\s*{separator}\s*(?P<label>[^\n]*?)\s*{rest}$", re.IGNORECASE)

    def __call__(self, generation: str) -> ParsedGeneration:
        line = generation.split("\n", 1)[0].strip()
        if not line:
            return ParsedGeneration(None, None, "empty generation")
        match = self._pattern.match(line)
        if match is None:
            return ParsedGeneration(line, None, "no label marker")
        text = match.group("text").strip()
        word = match.group("label").strip().strip("'\"`").strip().lower()
        if not text:
            return ParsedGeneration(None, None, "empty text")
        if word not in self._word_to_label:
            return ParsedGeneration(text, None, f"unknown label {word!r}")
        return ParsedGeneration(text, self._word_to_label[word])
