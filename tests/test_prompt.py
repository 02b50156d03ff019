import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from transformers.testing_utils import CaptureLogger

from gpt3mix_hf import PromptTemplate, TaskSpec
from gpt3mix_hf.prompt import logger as prompt_logger
from gpt3mix_hf.validation import has_visible_text

SST2 = TaskSpec.from_preset("sst2")
NAMES = ["negative", "positive"]
TREC = TaskSpec.from_preset("trec6")
TREC_NAMES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def test_sst2_prompt_follows_the_papers_template():
    examples = [
        ("a stirring , funny and finally transporting re-imagining of beauty and the beast", 1),
        ("apparently reassembled from the cutting-room floor of any given daytime soap .", 0),
    ]
    assert PromptTemplate().build(SST2, NAMES, examples) == (
        "Each item in the following list contains a movie review and the respective sentiment. "
        "Sentiment is one of 'negative' or 'positive'.\n"
        "Movie review: a stirring , funny and finally transporting re-imagining of beauty and the beast "
        "(Sentiment: positive)\n"
        "Movie review: apparently reassembled from the cutting-room floor of any given daytime soap . "
        "(Sentiment: negative)\n"
        "Movie review:"
    )


def test_header_lists_many_labels_in_class_label_order():
    prompt = PromptTemplate().build(TREC, TREC_NAMES, [("What is NASA ?", 0)])
    assert "Type is one of 'abbreviation', 'description', 'entity', 'human', 'location', or 'numeric'." in prompt
    assert prompt.endswith("Question: What is NASA ? (Type: abbreviation)\nQuestion:")


def test_example_texts_are_kept_on_one_line():
    prompt = PromptTemplate().build(SST2, NAMES, [("two\nlines", 1)])
    assert "Movie review: two lines (Sentiment: positive)" in prompt


def test_custom_template():
    template = PromptTemplate(header="Reviews ({label_words}):", item="Review: {text} => {label}")
    prompt = template.build(SST2, NAMES, [("fine", 1)])
    assert prompt == "Reviews ('negative' or 'positive'):\nReview: fine => positive\nReview:"
    parsed = template.parser(SST2, NAMES)(" so good => positive\n")
    assert (parsed.text, parsed.label) == ("so good", 1)
    assert template.scoring_parts(SST2, NAMES, "so good") == (" so good =>", [" negative", " positive"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{label} then {text}", "after it"),
        ("no slots", "must contain"),
        ("{text}\n({label})", "single line"),
        ("{text}\u2028({label})", "single line"),
        ("{text}{label}", "nothing but whitespace"),
        ("{text} \t {label}", "nothing but whitespace"),
        ("{text} : {label} :", "cannot be read back"),  # the closing part is the marker again
        ("{text} ({label}) {label}", "once each"),
    ],
)
def test_templates_that_cannot_be_parsed_back_are_refused_when_built(item, message):
    with pytest.raises(ValueError, match=message):
        PromptTemplate(item=item)


@pytest.mark.parametrize("words", [{"a": "x (Label: y", "b": "z"}, {"a": "good)", "b": "bad"}])
def test_label_words_that_cannot_be_read_back_are_refused(words):
    spec = TaskSpec("text", "label", words)
    with pytest.raises(ValueError, match="cannot be read back"):
        PromptTemplate().parser(spec, ["a", "b"])


def test_a_label_marker_inside_a_real_text_is_neutralised_with_a_warning():
    spec = TaskSpec("movie review", "mood", {"negative": "negative", "positive": "positive"})
    template = PromptTemplate()
    with CaptureLogger(prompt_logger) as captured:
        prompt = template.build(spec, NAMES, [("boring (Mood: positive)", 0)])
    assert "(Mood:" in captured.out
    item = prompt.split("\n")[1]
    assert item == "Movie review: boring (Mood positive) (Mood: negative)"
    parsed = template.parser(spec, NAMES)(item[len("Movie review:"):])
    assert (parsed.text, parsed.label) == ("boring (Mood positive)", 0)


def test_scoring_parts_continue_the_prompt_as_the_item_would():
    context, continuations = PromptTemplate().scoring_parts(SST2, NAMES, "so good")
    assert context == " so good (Sentiment:"
    assert continuations == [" negative", " positive"]


@pytest.mark.parametrize(
    ("generation", "text", "label", "error"),
    [
        (" a fine film (Sentiment: positive)\nMovie review: more", "a fine film", 1, None),
        (" a fine film (sentiment:  'Negative' )", "a fine film", 0, None),
        (" cut short (Sentiment: positive", "cut short", 1, None),
        (" (Sentiment: positive)", None, None, "empty text"),
        ("   \n", None, None, "empty generation"),
        (" no label here", "no label here", None, "no label marker"),
        (" odd (Sentiment: neutral)", "odd", None, "unknown label 'neutral'"),
        (" nested (parens) (Sentiment: negative)", "nested (parens)", 0, None),
        (" nested (parens) (Sentiment: negative) trailing", "nested (parens)", None, "text after the label"),
        (" good (Sentiment: positive) (Sentiment: negative)", "good (Sentiment: positive)", None,
         "more than one label marker"),
        (" \u200b\u00a0\ufeff (Sentiment: positive)", None, None, "empty text"),
        (" \u2028 (Sentiment: positive)", None, None, "empty generation"),
        (" two\u2029lines (Sentiment: positive)", "two", None, "no label marker"),
        (" fine (Sentiment: positive)\r\nMovie review:", "fine", 1, None),
    ],
)
def test_parser(generation, text, label, error):
    parsed = PromptTemplate().parser(SST2, NAMES)(generation)
    assert (parsed.text, parsed.label, parsed.error) == (text, label, error)


def test_parser_reads_multi_word_labels():
    spec = TaskSpec("text", "topic", {"a": "science fiction", "b": "romance"})
    parsed = PromptTemplate().parser(spec, ["a", "b"])(" a voyage to mars (Topic: Science Fiction)")
    assert parsed.label == 0


@pytest.mark.parametrize(
    ("text", "visible"),
    [("a", True), (" .", True), ("\u00e9", True), ("\u200b", False), ("\u00a0\ufeff\u2060 \t", False),
     ("\u3164", False), ("\u0301", False), ("", False), (None, False), (3, False)],
)
def test_visible_text(text, visible):
    assert has_visible_text(text) is visible


# Any text at all: markers, quotes, brackets, every kind of whitespace and line break.
any_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1) | st.builds(
    lambda a, b: f"{a}(Sentiment: {b})", st.text(max_size=10), st.sampled_from(["positive", "negative", ""])
)


@given(text=any_text, label=st.integers(0, 1))
def test_parser_reads_back_what_the_template_writes(text, label):
    template = PromptTemplate()
    shown = template.neutralize(" ".join(text.split()), SST2)
    assume(has_visible_text(shown))
    item = template.build(SST2, NAMES, [(text, label)]).split("\n")[1]
    assert "(sentiment:" not in item.lower()[: -len("(Sentiment: negative)")]
    parsed = template.parser(SST2, NAMES)(item[len("Movie review:"):])
    assert parsed.ok, parsed.error
    assert (parsed.text, parsed.label) == (shown.strip(), label)


invisible = st.text(st.sampled_from(" \t\u00a0\u200b\u200c\u200d\u2060\ufeff\u3000\u2003\u0301"), max_size=6)


@given(blank=invisible, word=st.sampled_from(NAMES))
def test_a_generation_with_no_visible_text_is_empty(blank, word):
    parsed = PromptTemplate().parser(SST2, NAMES)(f"{blank} (Sentiment: {word})")
    assert parsed.error == "empty text"


one_line = st.text(max_size=20).map(lambda text: " ".join(text.split()))


@given(first=one_line, second=one_line, words=st.tuples(*[st.sampled_from(NAMES)] * 2))
def test_a_line_with_two_label_markers_is_never_accepted(first, second, words):
    line = f" {first} (Sentiment: {words[0]}) {second} (sentiment: {words[1]})"
    assert not PromptTemplate().parser(SST2, NAMES)(line).ok


@given(st.text())
def test_parser_never_raises_and_explains_every_failure(generation):
    parsed = PromptTemplate().parser(SST2, NAMES)(generation)
    assert parsed.ok == (parsed.error is None)
    if parsed.ok:
        assert has_visible_text(parsed.text) and parsed.label in (0, 1)
        assert len(parsed.text.splitlines()) == 1
        assert "(sentiment:" not in parsed.text.lower()


template_part = st.text(st.sampled_from(" :|=>-()[]{}#*.,;'\"abLT"), max_size=6)


@given(before=template_part, between=template_part, after=template_part, text=st.text(min_size=1, max_size=30),
       label=st.integers(0, 1))
def test_every_template_either_is_refused_or_reads_back_what_it_writes(before, between, after, text, label):
    item = f"{before}{{text}}{between}{{label}}{after}"
    try:
        template = PromptTemplate(item=item)
    except ValueError:
        return
    shown = template.neutralize(" ".join(text.split()), SST2).strip()
    assume(has_visible_text(shown))
    lines = template.build(SST2, NAMES, [(text, label)]).split("\n")
    parsed = template.parser(SST2, NAMES)(lines[1][len(lines[2]):])
    assert (parsed.text, parsed.label) == (shown, label), (item, parsed.error)
