"""Task specifications S = (text type T, label type L, verbalizer v), the paper's presets (Table 7), and the
command-line arguments that choose one (`TaskSpecArguments`, `task_spec`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from datasets import ClassLabel

from .validation import check_fields, has_visible_text

_SENTIMENT = {"negative": "negative", "positive": "positive", "neg": "negative", "pos": "positive"}

# The paper's Table 7. Keys are the label names of the benchmarks (`data.BENCHMARKS`); the short names the
# paper uses (pos/neg) are accepted as aliases.
PRESETS: dict[str, dict] = {
    "sst2": {"text_type": "movie review", "label_type": "sentiment", "verbalizer": _SENTIMENT},
    "cr": {"text_type": "customer review", "label_type": "sentiment", "verbalizer": _SENTIMENT},
    "subj": {"text_type": "text", "label_type": "objective", "verbalizer": {"subjective": "no", "objective": "yes"}},
    "cola": {
        "text_type": "text",
        "label_type": "grammar",
        "verbalizer": {"acceptable": "correct", "unacceptable": "incorrect"},
    },
    "trec6": {
        "text_type": "question",
        "label_type": "type",
        "verbalizer": {
            "ABBR": "abbreviation",
            "LOC": "location",
            "DESC": "description",
            "NUM": "numeric",
            "ENTY": "entity",
            "HUM": "human",
        },
    },
    "mpqa": {"text_type": "text", "label_type": "sentiment", "verbalizer": _SENTIMENT},
}


@dataclass(frozen=True)
class TaskSpec:
    """What the LM is told about the data: the text type, the label type and the word for each label.

    Args:
        text_type (`str`): what one text is, e.g. `"movie review"`. Shown as `Movie review: ...`.
        label_type (`str`): what the label is, e.g. `"sentiment"`.
        verbalizer (`dict[str, str]`): dataset label name -> the word the LM reads and writes. It may hold
            more names than a dataset uses (aliases); `words_for` picks the dataset's labels in order.

    Example:

    >>> spec = TaskSpec.from_preset("sst2")
    >>> spec.words_for(["negative", "positive"])
    ['negative', 'positive']
    """

    text_type: str = "text"
    label_type: str = "label"
    verbalizer: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check_fields(self)

        # Every string here is written into one line of the prompt and read back from the LM's line.
        for name in ("text_type", "label_type"):
            value = getattr(self, name)
            if not has_visible_text(value) or len(value.splitlines()) > 1:
                raise ValueError(f"TaskSpec.{name} must be a one-line string with visible text, got {value!r}.")
        if not isinstance(self.verbalizer, dict):
            raise TypeError(
                f"TaskSpec.verbalizer must be a dict of label name -> word, got {type(self.verbalizer).__name__}."
            )
        if not self.verbalizer:
            raise ValueError(
                "TaskSpec.verbalizer is empty: map each label name to the word the LM should use, e.g. "
                "{'positive': 'positive', 'negative': 'negative'}, or use TaskSpec.from_class_label(feature)."
            )
        for label, word in self.verbalizer.items():
            if not has_visible_text(word) or len(word.splitlines()) > 1:
                raise ValueError(
                    f"The verbalizer word for label {label!r} must be a one-line string with visible text, got "
                    f"{word!r}."
                )

    @classmethod
    def from_preset(cls, name: str) -> TaskSpec:
        """The paper's specification for `name`, one of `sst2`, `cr`, `subj`, `cola`, `trec6`, `mpqa`."""
        key = name.lower().replace("-", "")
        if key not in PRESETS:
            raise ValueError(f"No preset named {name!r}. Presets: {', '.join(sorted(PRESETS))}.")
        preset = PRESETS[key]
        return cls(preset["text_type"], preset["label_type"], dict(preset["verbalizer"]))

    @classmethod
    def from_class_label(cls, feature: ClassLabel, text_type: str = "text", label_type: str = "label") -> TaskSpec:
        """A generic specification: every label is shown to the LM by its own name."""
        if not isinstance(feature, ClassLabel):
            raise TypeError(f"Expected a datasets.ClassLabel feature, got {type(feature).__name__}.")
        return cls(text_type, label_type, {name: name for name in feature.names})

    def words_for(self, label_names: list[str]) -> list[str]:
        """The verbalizer words of `label_names`, in that order (a dataset's `ClassLabel.names`)."""
        missing = [name for name in label_names if name not in self.verbalizer]
        if missing:
            raise ValueError(
                f"The task specification has no verbalizer word for the label(s) {missing}. It knows "
                f"{sorted(self.verbalizer)}. Pass a verbalizer that covers every label of the dataset."
            )
        words = [self.verbalizer[name] for name in label_names]
        folded = [word.strip().lower() for word in words]
        for i, word in enumerate(folded):
            for j in range(i):
                if folded[j] == word:
                    raise ValueError(
                        f"Labels {label_names[j]!r} and {label_names[i]!r} share the verbalizer word {word!r}: "
                        "the LM's label could not tell them apart. Give each label its own word."
                    )
        return words

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TaskSpecArguments:
    """What the LM is told about the data: a preset of the paper, or a text type, a label type and a verbalizer.

    Example:

    >>> task_spec(TaskSpecArguments(verbalizer=["0=bad", "1=good"]), ["0", "1"]).words_for(["0", "1"])
    ['bad', 'good']
    """

    preset: str | None = field(
        default=None,
        metadata={
            "help": f"A task spec preset ({', '.join(PRESETS)}). Default: built from --text_type, --label_type and "
            "--verbalizer where any is given, else the benchmark's own.",
            "choices": sorted(PRESETS),
        },
    )
    text_type: str = field(default="text", metadata={"help": "What one text is, e.g. 'movie review'."})
    label_type: str = field(default="label", metadata={"help": "What the label is, e.g. 'sentiment'."})
    verbalizer: list[str] | None = field(
        default=None,
        metadata={"help": "label=word pairs, e.g. --verbalizer 1=positive 0=negative; default: the label names."},
    )

    def __post_init__(self):
        check_fields(self)


def task_spec(task: TaskSpecArguments, label_names: list[str], dataset: str | None = None) -> TaskSpec:
    """The task spec `task` describes, checked to cover `label_names`: the preset given, else one built from the
    text type, label type and verbalizer given (default words: the label names), else the benchmark's own preset,
    else one built from the defaults."""
    defaults = TaskSpecArguments()
    given = [f"--{name}" for name in ("text_type", "label_type", "verbalizer")
             if getattr(task, name) != getattr(defaults, name)]
    if task.preset is not None and given:
        raise ValueError(
            f"--preset {task.preset} sets the text type, label type and verbalizer, so {', '.join(given)} would be "
            "ignored: give either the preset or those flags."
        )
    key = (dataset or "").lower().replace("-", "")
    # A benchmark's own preset, unless the flags describe the task themselves.
    preset = task.preset or (key if key in PRESETS and not given else None)
    if preset is not None:
        spec = TaskSpec.from_preset(preset)
    else:
        # A verbalizer given covers every label: a label left to its own name is more likely a typo than intended.
        verbalizer = {} if task.verbalizer else {name: name for name in label_names}
        for pair in task.verbalizer or []:
            name, separator, word = pair.partition("=")
            if not separator or not name or not word.strip():
                raise ValueError(f"--verbalizer takes label=word pairs (e.g. pos=positive), got {pair!r}.")
            if name not in label_names:
                raise ValueError(f"--verbalizer names the label {name!r}, which the data lacks ({label_names}).")
            verbalizer[name] = word.strip()
        missing = [name for name in label_names if name not in verbalizer]
        if missing:
            raise ValueError(f"--verbalizer has no word for the label(s) {missing}: give one label=word per label.")
        spec = TaskSpec(task.text_type, task.label_type, verbalizer)
    spec.words_for(label_names)
    return spec
