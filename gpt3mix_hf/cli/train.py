"""`gpt3mix train`: train a text classifier on the real and synthetic rows that `gpt3mix augment` saved, with
the soft-label loss of `GPT3MixTrainer`, and write the model, its tokenizer, its card and the provenance.

The training flags are those of `GPT3MixTrainingArguments` (and so of `transformers.TrainingArguments`). With an
evaluation set (`--eval_dataset`), the best epoch is kept (early stopping on validation accuracy) and its
scores go into the card; without one, training runs for `--num_train_epochs` with early stopping off.

A run stopped half-way resumes: run the same command again and training goes on from the last checkpoint in
`--output_dir` (one is saved each epoch), as the transformers example scripts do. `--resume_from_checkpoint` names
another checkpoint. A checkpoint made from other inputs (other rows, model, evaluation set or a training argument
that changes what is learnt) is refused.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import IntervalStrategy
from transformers.trainer_utils import sort_checkpoints
from transformers.utils import logging

from ..data import BENCHMARKS, DataSourceArguments, concatenate_with_real, load_split, rename_columns_to
from ..hub.cards.common import hub_id_of
from ..models import DEFAULT_CLASSIFIER
from ..provenance import CONFIG_NAME, GPT3MixConfig
from ..state import json_round_trip, load_saved_rows, read_json, write_json
from ..training.arguments import GPT3MixTrainingArguments
from ..training.classification import classifier_trainer
from ..training.pooling import classifier_head_field, pooling_field
from ..validation import check_fields

logger = logging.get_logger(__name__)


@dataclass
class TrainArguments:
    augmented_dir: str = field(
        metadata={"help": "The output_dir of `gpt3mix augment` (its real/ and synthetic/ folders and config)."}
    )
    model: str = field(
        default=DEFAULT_CLASSIFIER,
        metadata={"help": f"The encoder to fine-tune: a Hub id, a folder or '{DEFAULT_CLASSIFIER}'."},
    )
    eval_dataset: str | None = field(
        default=None,
        metadata={"help": "Real labelled rows to validate on, as for `gpt3mix augment --dataset` (a benchmark, a "
                  "folder of splits, a file or a Hub id), with the same text and label columns; default: none."},
    )
    eval_split: str = field(default="validation", metadata={"help": "The split of --eval_dataset to validate on."})
    eval_dataset_config: str | None = field(
        default=None, metadata={"help": "A Hub --eval_dataset's configuration name (e.g. 'cola' of nyu-mll/glue)."}
    )
    eval_revision: str | None = field(default=None, metadata={"help": "A Hub --eval_dataset's revision."})
    eval_data_dir: str | None = field(
        default=None, metadata={"help": "For a benchmark --eval_dataset: the folder of <benchmark>/<split>.jsonl."}
    )
    classifier_head: str = classifier_head_field()
    pooling: str = pooling_field()
    real_only: bool = field(default=False, metadata={"help": "Train on the real rows only (a NoAug baseline)."})
    max_length: int = field(default=128, metadata={"help": "Tokens per input (longer texts are cut)."})

    def __post_init__(self):
        check_fields(self)


@dataclass
class TrainCommandArguments(GPT3MixTrainingArguments):
    """`GPT3MixTrainingArguments` without the one field that is a secret: `--hub_token` is not a flag (a flag stays
    in the shell history and the process list); `--push_to_hub` uses the token of `hf auth login` or HF_TOKEN."""

    hub_token: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.output_dir is None:
            # The Trainer's default (./trainer_output) would put a model wherever the command happens to run.
            raise ValueError("--output_dir is required: the folder the model, its tokenizer and card are saved to.")
        # `--eval_strategy no` asks for no evaluations: early stopping, which needs them, is then off unless a
        # patience is given too (which the check below refuses, saying why).
        default = GPT3MixTrainingArguments.__dataclass_fields__["early_stopping_patience"].default
        if IntervalStrategy(self.eval_strategy) == IntervalStrategy.NO and self.early_stopping_patience == default:
            self.early_stopping_patience = None
        super().__post_init__()


def arguments(name: str) -> tuple[type, ...]:
    return TrainArguments, TrainCommandArguments


def _eval_source(args: TrainArguments) -> dict:
    """The card's description of the evaluation data: a Hub id where there is one, and names without local
    folders (a card is published; the machine's paths mean nothing there)."""
    from ..hub.cards.common import source_hub_id
    from ..provenance import DataSource

    path = Path(args.eval_dataset)
    single_file = path.is_file()
    hub_id = source_hub_id(DataSource(dataset=args.eval_dataset))
    if hub_id is not None and not path.exists():
        name = args.eval_dataset
    else:
        name = path.name
        hub_id = None
    split = None if single_file else args.eval_split
    benchmark = BENCHMARKS.get(args.eval_dataset)
    if benchmark is not None and hub_id is not None:
        # The card credits the Hub's split: CoLA's "test" here is the Hub's validation split (its test labels are
        # hidden there).
        split = {ours: theirs for theirs, ours in benchmark.hub_splits}.get(split, split)
    return {"eval_dataset_id": hub_id, "eval_dataset_name": name, "eval_split": split}


def _load_augmented(folder: Path):
    for part in ("real", "synthetic"):
        if not (folder / part).exists():
            raise FileNotFoundError(
                f"{folder} has no {part}/ folder: pass the output_dir of `gpt3mix augment` as --augmented_dir."
            )
    fix = f"{folder} is not a whole `gpt3mix augment` output: run the same gpt3mix augment again (it resumes)"
    real, synthetic = load_saved_rows(folder / "real", fix), load_saved_rows(folder / "synthetic", fix)
    if not (folder / CONFIG_NAME).exists():
        # The file augment writes last: without it the rows may be cut off, or another run's.
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: {fix}.")
    config = GPT3MixConfig.from_pretrained(folder)
    text_column, label_column = config.data.text_column, config.data.label_column
    return real, synthetic, config, text_column, label_column


def _without_training_rows(evaluation, trained_texts: list[str]):
    """The evaluation rows (`text`, `label`) whose text is not one of the real training rows' (early stopping and
    the card's scores on rows the model trained on would say nothing); refused when none is left."""
    trained = set(trained_texts)
    keep = [i for i, text in enumerate(evaluation["text"]) if text not in trained]
    if not keep:
        raise ValueError(
            "Every row of the --eval_dataset split is one of the real rows the model trains on: validate on held-out "
            "rows (another split, or a file of rows that were not augmented)."
        )
    if len(keep) < len(evaluation):
        logger.warning(f"{len(evaluation) - len(keep)} of the {len(evaluation)} evaluation rows are real training "
                       "rows: they are left out of the evaluation.")
        evaluation = evaluation.select(keep)
    return evaluation


# A leading underscore: Trainer.push_to_hub leaves such files out (the record may hold a local model path).
INPUTS_NAME = "_gpt3mix_train_inputs.json"
# Training arguments that do not change what the model learns (where and how often things are logged or saved, how
# a resume runs, and how long the run is: a finished run may be trained further, its schedule then following the
# new length); a resume may change them.
_NOT_LEARNING = ("output_dir", "logging_", "log_", "report_to", "disable_tqdm", "run_name", "project", "trackio_",
                 "hub_", "push_to_hub", "resume_from_checkpoint", "restore_callback_states_from_checkpoint",
                 "ignore_data_skip", "enable_jit_checkpoint", "ddp_timeout", "num_train_epochs", "max_steps",
                 "save_", "skip_memory_metrics", "dataloader_num_workers", "dataloader_persistent_workers",
                 "dataloader_prefetch_factor", "dataloader_pin_memory", "per_device_eval_batch_size",
                 "eval_accumulation_steps")


def _training_inputs(args: TrainArguments, training_args: GPT3MixTrainingArguments, train, evaluation) -> dict:
    """What a checkpoint must have been trained on to be resumed: the rows (by their `datasets` fingerprints,
    which `load_from_disk` keeps), the model and every training argument that changes what it learns."""
    learning = {key: value for key, value in training_args.to_dict().items() if not key.startswith(_NOT_LEARNING)}
    return json_round_trip({
        "rows": train._fingerprint, "model": args.model, "classifier_head": args.classifier_head,
        "pooling": args.pooling, "max_length": args.max_length,
        "evaluation": None if evaluation is None else evaluation._fingerprint, "training_arguments": learning,
    })


def _differences(recorded: dict, inputs: dict) -> list[str]:
    """What differs between two records, a training argument as its flag; a key one side lacks counts (another
    version of gpt3mix_hf or transformers may add or drop arguments)."""
    differ = []
    for key in sorted(set(recorded) | set(inputs)):
        old, new = recorded.get(key), inputs.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differ += [f"--{name}" for name in sorted(set(old) | set(new)) if old.get(name, ...) != new.get(name, ...)]
        elif old != new:
            differ.append(key)
    return differ


def _last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-<step>` whose `trainer_state.json` (the Trainer writes it last) reads back; one cut
    off while it was saved is skipped, with a warning."""
    for path in map(Path, reversed(sort_checkpoints(str(output_dir)))):
        try:
            read_json(path / "trainer_state.json")
            return path
        except (FileNotFoundError, ValueError):
            logger.warning(f"{path} is incomplete (the run stopped while saving it): resuming from an earlier "
                           "checkpoint; delete it.")
    return None


def _checkpoint_to_resume(output_dir: Path, explicit: str | None, inputs: dict) -> str | None:
    """The checkpoint to resume from: `--resume_from_checkpoint`, else the last complete one in `output_dir` (of
    a run that stopped, or of a finished one that is run again for more epochs). Either must come from the same
    inputs (`INPUTS_NAME`, written in the folder of its run when that run started)."""
    if explicit is not None:
        checkpoint = Path(explicit)
        if not (checkpoint / "trainer_state.json").is_file():
            raise FileNotFoundError(f"--resume_from_checkpoint {explicit} is not a checkpoint folder: name a "
                                    "checkpoint-<step> folder that an earlier run saved whole.")
    else:
        checkpoint = _last_complete_checkpoint(output_dir) if output_dir.is_dir() else None
        if checkpoint is None:
            return None
    marker = checkpoint.parent / INPUTS_NAME
    if not marker.exists():
        raise ValueError(
            f"{checkpoint} has no {INPUTS_NAME} beside it to say what it was trained on (another tool, or a "
            "gpt3mix_hf before resuming), so it cannot be resumed safely: pass another --output_dir, or delete its "
            "checkpoint-* folders to start over there."
        )
    recorded = read_json(marker)
    if recorded != inputs:
        differ = ", ".join(_differences(recorded, inputs) if isinstance(recorded, dict) else [INPUTS_NAME])
        raise ValueError(
            f"{checkpoint} comes from another training (it differs in: {differ}): give the settings it was trained "
            "with, or pass another --output_dir, or delete its checkpoint-* folders to start over there."
        )
    if not any((checkpoint / name).exists() for name in ("optimizer.pt", "optimizer.bin")):
        raise ValueError(
            f"{checkpoint} holds the model only (--save_only_model): training would go on with a fresh optimizer "
            "and schedule, not as the stopped run would have. Start over in another --output_dir, or delete its "
            "checkpoint-* folders."
        )
    logger.warning(f"Resuming from {checkpoint} (a run stopped there or is trained further); to start over, pass "
                   "another --output_dir or delete its checkpoint-* folders.")
    return str(checkpoint)


def run(name: str, args: TrainArguments, training_args: GPT3MixTrainingArguments) -> int:
    real, synthetic, config, text_column, label_column = _load_augmented(Path(args.augmented_dir))
    names = list(real.features[label_column].names)
    if args.real_only:
        synthetic = synthetic.select([])
    train = concatenate_with_real(real, synthetic, text_column, label_column)
    evaluation = None
    if args.eval_dataset is not None:
        if Path(args.eval_dataset).is_file() and args.eval_split != "train":
            raise ValueError(
                f"--eval_dataset {args.eval_dataset} is a single file, whose rows are read as the split 'train': "
                f"pass --eval_split train to validate on it (--eval_split {args.eval_split} needs a folder holding "
                f"{args.eval_split}.jsonl)."
            )
        source = DataSourceArguments(dataset=args.eval_dataset, dataset_config=args.eval_dataset_config,
                                     revision=args.eval_revision, data_dir=args.eval_data_dir,
                                     text_column=text_column, label_column=label_column)
        evaluation = load_split(source, args.eval_split, names=names)
        evaluation = rename_columns_to(evaluation, text_column, label_column)
        evaluation = _without_training_rows(evaluation, real[text_column])
    elif training_args.early_stopping_patience is not None or training_args.eval_strategy != IntervalStrategy.NO:
        logger.warning("No --eval_dataset: training without evaluation, for --num_train_epochs, early stopping off.")
        training_args.early_stopping_patience = None
        training_args.eval_strategy = IntervalStrategy.NO
        training_args.load_best_model_at_end = False
        training_args.metric_for_best_model = None

    # A resumed run picks up early stopping's count where it stopped, as an uninterrupted one would have it.
    training_args.restore_callback_states_from_checkpoint = True
    inputs = _training_inputs(args, training_args, train, evaluation)
    output_dir = Path(training_args.output_dir)
    checkpoint = _checkpoint_to_resume(output_dir, training_args.resume_from_checkpoint, inputs)
    trainer = classifier_trainer(train, evaluation, args.model, training_args, max_length=args.max_length,
                                 classifier_head=args.classifier_head, pooling=args.pooling)
    write_json(output_dir / INPUTS_NAME, inputs)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    trainer.save_state()
    lines = [f"trained on {len(real)} real + {len(synthetic)} synthetic rows, {result.global_step} steps"]
    if evaluation is not None:
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)
        where = f"{args.eval_split} split of {args.eval_dataset}" if not Path(args.eval_dataset).is_file() \
            else args.eval_dataset
        lines.append(f"evaluation on the {where}: accuracy {metrics['eval_accuracy']:.4f}, "
                     f"macro-F1 {metrics['eval_macro_f1']:.4f}")
    eval_card = _eval_source(args) if evaluation is not None else {}
    # A NoAug model (--real_only) used none of the synthetic rows: its card must not say it was augmented.
    provenance = None if args.real_only else config
    trainer.create_model_card(provenance=provenance, finetuned_from=hub_id_of(args.model), **eval_card)
    lines.append(f"saved to: {training_args.output_dir} (model, tokenizer, README.md model card)")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
