import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpt3mix_hf import PromptTemplate, TaskSpec

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


@pytest.mark.parametrize("item", ["{label} then {text}", "no slots", "{text}\n({label})"])
def test_bad_templates_are_refused(item):
    with pytest.raises(ValueError):
        PromptTemplate(item=item)


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
        (" nested (parens) (Sentiment: negative) trailing", "nested (parens)", 0, None),
    ],
)
def test_parser(generation, text, label, error):
    parsed = PromptTemplate().parser(SST2, NAMES)(generation)
    assert (parsed.text, parsed.label, parsed.error) == (text, label, error)


def test_parser_reads_multi_word_labels():
    spec = TaskSpec("text", "topic", {"a": "science fiction", "b": "romance"})
    parsed = PromptTemplate().parser(spec, ["a", "b"])(" a voyage to mars (Topic: Science Fiction)")
    assert parsed.label == 0


line_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1).filter(
    lambda t: t.strip() and "(sentiment:" not in t.lower() and "\x85" not in t
)


@given(text=line_text, label=st.integers(0, 1))
def test_parser_reads_back_what_the_template_writes(text, label):
    template = PromptTemplate()
    item = template.build(SST2, NAMES, [(text, label)]).split("\n")[1]
    generation = item[len("Movie review:"):]
    parsed = template.parser(SST2, NAMES)(generation)
    assert parsed.ok
    assert parsed.label == label
    assert parsed.text == " ".join(text.split())


@given(st.text())
def test_parser_never_raises_and_explains_every_failure(generation):
    parsed = PromptTemplate().parser(SST2, NAMES)(generation)
    assert parsed.ok == (parsed.error is None)
    if parsed.ok:
        assert parsed.text and parsed.label in (0, 1)
        assert "\n" not in parsed.text
