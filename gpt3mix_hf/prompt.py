"""Building GPT3Mix prompts and parsing the LM's continuation back into (text, label word). Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from transformers.utils import logging

from .spec import TaskSpec
from .validation import check_fields, has_visible_text

logger = logging.get_logger(__name__)

DEFAULT_HEADER = (
    "Each item in the following list contains a {text_type} and the respective {label_type}. "
    "{Label_type} is one of {label_words}."
)
DEFAULT_ITEM = "{Text_type}: {text} ({Label_type}: {label})"

# The spec used to check a template on its own, before any dataset is known.
_SAMPLE_SPEC = TaskSpec("review", "sentiment", {"bad": "negative", "good": "positive"})
_SAMPLE_TEXTS = ("a sample text .", "x", "it's 'quoted' (and bracketed): fine")


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
    `{text}`, so the LM writes a new text and then its label in the same format. The non-blank part between
    `{text}` and `{label}` is the label marker the parser looks for; a template whose items the parser could
    not read back (no marker, a closing part that repeats it, ...) is refused here, by a round trip on a sample.

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
        check_fields(self)
        text_at, label_at = self.item.find("{text}"), self.item.find("{label}")
        if text_at < 0 or label_at < 0 or label_at < text_at:
            raise ValueError(
                f"PromptTemplate.item must contain '{{text}}' and, after it, '{{label}}'; got {self.item!r}."
            )
        if self.item.count("{text}") > 1 or self.item.count("{label}") > 1:
            raise ValueError(
                f"PromptTemplate.item must contain '{{text}}' and '{{label}}' once each; got {self.item!r}."
            )
        if len(self.item.splitlines()) > 1:
            raise ValueError("PromptTemplate.item must be a single line: the LM's line break ends an item.")
        between = self.item.split("{text}", 1)[1].split("{label}", 1)[0]
        if not between.strip():
            raise ValueError(
                f"PromptTemplate.item {self.item!r} has nothing but whitespace between '{{text}}' and '{{label}}': "
                "the parser finds where the LM's text ends by that label marker. Put one there, e.g. "
                "'{text} (Label: {label})'."
            )
        marker = between.strip()
        if all(char.isalnum() or char.isspace() or char in "{}_" for char in marker):
            # Matched anywhere, case-insensitively: a marker of letters alone ("x", "is") would be found inside the
            # words of every text, and neutralising it would cut those words.
            raise ValueError(
                f"PromptTemplate.item {self.item!r} has the label marker {marker!r}, made of letters and digits only: "
                "the parser would find it inside ordinary words. Use a marker with punctuation, e.g. "
                "'{text} (Label: {label})' or '{text} => {label}'."
            )
        # What is refused here is what the parser could not read back: check the round trip on a sample.
        GenerationParser(self, _SAMPLE_SPEC, list(_SAMPLE_SPEC.verbalizer))

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
        """The prompt for `examples`, a list of (text, label id) with label ids into `label_names`.

        Each text is put on one line, and a label marker inside it (e.g. `(Sentiment:` in `boring (Sentiment:
        positive)`) is neutralised (see [`PromptTemplate.neutralize`]) with a warning, so that an example never
        shows the LM a second label.
        """
        words = spec.words_for(label_names)
        header = self._fill(self.header, spec).replace("{label_words}", _quote_words(words))
        lines = [header]
        for text, label in examples:
            lines.append(self._item_line(spec, self.neutralize(_one_line(text), spec), words[label]))
        lines.append(self._item_parts(spec)[0].rstrip())
        return "\n".join(lines)

    def _item_line(self, spec: TaskSpec, text: str, word: str) -> str:
        before_text, between, after_label = self._item_parts(spec)
        return f"{before_text}{text}{between}{word}{after_label}"

    def label_marker(self, spec: TaskSpec) -> str:
        """What separates an item's text from its label, e.g. `(Sentiment:`; matched case-insensitively."""
        return self._item_parts(spec)[1].strip()

    def neutralize(self, text: str, spec: TaskSpec) -> str:
        """`text` without the label marker: each occurrence loses its last character (`(Sentiment:` becomes
        `(Sentiment`), until none is left. Logs a warning (once per marker) when it changes anything."""
        neutral = self._without_marker(text, spec)
        if neutral != text:
            logger.warning_once(
                f"A real example's text contains the label marker {self.label_marker(spec)!r}; it is shown to the "
                "LM without its last character so that the item has one label."
            )
        return neutral

    def _without_marker(self, text: str, spec: TaskSpec) -> str:
        marker = re.compile(re.escape(self.label_marker(spec)), re.IGNORECASE)
        # Dropping a character can join the text around it into a new marker (`::` in `:::`): repeat; each pass
        # shortens the text, so this ends.
        while marker.search(text):
            text = marker.sub(lambda found: found.group(0)[:-1], text)
        return text

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

    Only the first line counts (the item format is one line). The line is accepted only when its label marker
    (`(Sentiment:`) appears once and the label ends the item: the label word, then the template's closing part
    (`)`) or the end of the line (a generation cut at `max_new_tokens`), then nothing but whitespace. The marker
    is matched case-insensitively, the label word case-insensitively and without surrounding spaces or quotes.

    Raises a `ValueError` when built for a template and label words whose items it could not read back.
    """

    def __init__(self, template: PromptTemplate, spec: TaskSpec, label_names: list[str]):
        _, between, after_label = template._item_parts(spec)
        words = spec.words_for(label_names)
        self._word_to_label = {word.strip().lower(): i for i, word in enumerate(words)}
        self._marker = re.compile(re.escape(between.strip()), re.IGNORECASE)
        closing = after_label.strip()
        self._closing = re.compile(re.escape(closing), re.IGNORECASE) if closing else None
        self._check_round_trip(template, spec, label_names)

    def _check_round_trip(self, template: PromptTemplate, spec: TaskSpec, label_names: list[str]) -> None:
        before_text = template._item_parts(spec)[0]
        words = spec.words_for(label_names)
        for sample in _SAMPLE_TEXTS:
            text = template._without_marker(sample, spec)
            for label, name in enumerate(label_names):
                item = template._item_line(spec, text, words[label])
                # What the LM writes after the prompt's last line, the item's beginning.
                parsed = self(item[len(before_text.rstrip()):])
                if (parsed.text, parsed.label) != (text.strip(), label):
                    raise ValueError(
                        f"The prompt template cannot be read back: the item {item!r} (label {name!r}) parses as "
                        f"text={parsed.text!r}, label={parsed.label!r} ({parsed.error or 'wrong text or label'}). "
                        f"Use a label marker between {{text}} and {{label}} that no label word contains, and a "
                        f"closing part after {{label}} that neither the marker nor a label word contains (item "
                        f"{template.item!r}, label words {spec.words_for(label_names)})."
                    )

    def _last_marker(self, line: str) -> re.Match | None:
        # Overlapping matches count: with a marker such as "x x", the text's last word may start a match that
        # ends inside the real marker.
        last, found = None, self._marker.search(line)
        while found is not None:
            last, found = found, self._marker.search(line, found.start() + 1)
        return last

    def __call__(self, generation: str) -> ParsedGeneration:
        lines = generation.splitlines()
        line = lines[0].strip() if lines else ""
        if not line:
            return ParsedGeneration(None, None, "empty generation")
        marker = self._last_marker(line)
        if marker is None:
            return ParsedGeneration(line, None, "no label marker")
        text = line[: marker.start()].strip()
        rest = line[marker.end():]
        if not has_visible_text(text):
            return ParsedGeneration(None, None, "empty text")
        if self._marker.search(text):
            return ParsedGeneration(text, None, "more than one label marker")
        closing = self._closing.search(rest) if self._closing else None
        if closing is not None:
            if rest[closing.end():].strip():
                return ParsedGeneration(text, None, "text after the label")
            rest = rest[: closing.start()]
        word = rest.strip().strip("'\"`").strip().lower()
        if word not in self._word_to_label:
            return ParsedGeneration(text, None, f"unknown label {word!r}")
        return ParsedGeneration(text, self._word_to_label[word])


def fit_prompt(
    template: PromptTemplate,
    spec: TaskSpec,
    label_names: list[str],
    examples: list[tuple[str, int]],
    tokenize,
    budget: int | None,
) -> tuple[str, bool]:
    """The prompt of `examples`, with the longest example halved (by words) until it takes at most `budget`
    tokens as `tokenize` counts them; and whether any example was shortened. `budget=None` (a model without a
    known context) or a `tokenize` that returns None leaves the prompt as built."""
    prompt = template.build(spec, label_names, examples)
    token_ids = tokenize(prompt) if budget is not None else None
    if token_ids is None or len(token_ids) <= budget:
        return prompt, False
    length = len(token_ids)
    words = [text.split() for text, _ in examples]
    while length > budget:
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        if len(words[longest]) <= 1:
            raise ValueError(
                f"The prompt does not fit in {budget} tokens even with one word per example: use a smaller k, a "
                "shorter template or a model with a longer context."
            )
        words[longest] = words[longest][: len(words[longest]) // 2]
        examples = [(" ".join(w), label) for w, (_, label) in zip(words, examples, strict=True)]
        prompt = template.build(spec, label_names, examples)
        length = len(tokenize(prompt))
    return prompt, True
