import pytest
from datasets import ClassLabel

from gpt3mix_hf import TaskSpec

# The paper's Table 7: text type, label type, label -> word.
TABLE_7 = {
    "sst2": ("movie review", "sentiment", {"positive": "positive", "negative": "negative"}),
    "cr": ("customer review", "sentiment", {"positive": "positive", "negative": "negative"}),
    "subj": ("text", "objective", {"subjective": "no", "objective": "yes"}),
    "cola": ("text", "grammar", {"acceptable": "correct", "unacceptable": "incorrect"}),
    "trec6": (
        "question",
        "type",
        {"ABBR": "abbreviation", "LOC": "location", "DESC": "description", "NUM": "numeric", "ENTY": "entity",
         "HUM": "human"},
    ),
    "mpqa": ("text", "sentiment", {"pos": "positive", "neg": "negative"}),
}


@pytest.mark.parametrize("name", sorted(TABLE_7))
def test_presets_match_table_7(name):
    text_type, label_type, words = TABLE_7[name]
    spec = TaskSpec.from_preset(name)
    assert (spec.text_type, spec.label_type) == (text_type, label_type)
    assert spec.words_for(list(words)) == list(words.values())


def test_preset_accepts_the_papers_short_label_names():
    assert TaskSpec.from_preset("SST-2").words_for(["neg", "pos"]) == ["negative", "positive"]


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="sst2"):
        TaskSpec.from_preset("imdb")


def test_generic_spec_from_class_label_keeps_its_order():
    spec = TaskSpec.from_class_label(ClassLabel(names=["sports", "politics", "tech"]))
    assert (spec.text_type, spec.label_type) == ("text", "label")
    assert spec.words_for(["sports", "politics", "tech"]) == ["sports", "politics", "tech"]


def test_missing_label_word_names_it():
    with pytest.raises(ValueError, match="neutral"):
        TaskSpec.from_preset("sst2").words_for(["negative", "neutral"])


def test_two_labels_with_the_same_word_are_refused():
    spec = TaskSpec("text", "label", {"a": "good", "b": "Good "})
    with pytest.raises(ValueError, match="share the verbalizer word"):
        spec.words_for(["a", "b"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text_type": ""}, "text_type must be a one-line string"),
        ({"label_type": "  "}, "label_type must be a one-line string"),
        ({"label_type": "\u200b\u00a0"}, "label_type must be a one-line string"),
        ({"text_type": "movie\u2028review"}, "text_type must be a one-line string"),
        ({"label_type": None}, "label_type=None .*expected a string"),
        ({"verbalizer": {}}, "verbalizer is empty"),
        ({"verbalizer": {"a": "two\nlines"}}, "label 'a' must be a one-line string"),
        ({"verbalizer": {"a": "two\rlines"}}, "label 'a' must be a one-line string"),
        ({"verbalizer": {"a": "\ufeff"}}, "label 'a' must be a one-line string"),
        ({"verbalizer": {"a": 1}}, "verbalizer=.*values are a string .entry .a."),
    ],
)
def test_bad_specs_are_refused(kwargs, message):
    values = {"text_type": "text", "label_type": "label", "verbalizer": {"a": "x"}} | kwargs
    with pytest.raises(ValueError, match=message):
        TaskSpec(**values)


def test_a_verbalizer_that_is_not_a_dict_is_refused():
    with pytest.raises(TypeError, match="verbalizer=.*expected a dict"):
        TaskSpec("text", "label", ["positive", "negative"])


def test_flags_that_describe_the_task_are_not_dropped_for_a_benchmarks_preset():
    from gpt3mix_hf.spec import TaskSpecArguments, task_spec

    names = ["negative", "positive"]
    assert task_spec(TaskSpecArguments(), names, "sst2") == TaskSpec.from_preset("sst2")
    own = task_spec(TaskSpecArguments(text_type="tweet", label_type="mood"), names, "sst2")
    assert (own.text_type, own.label_type, own.words_for(names)) == ("tweet", "mood", names)
    with pytest.raises(ValueError, match="--preset cr sets .* so --text_type would be ignored"):
        task_spec(TaskSpecArguments(preset="cr", text_type="tweet"), names, "sst2")
