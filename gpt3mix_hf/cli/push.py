"""`gpt3mix push-dataset` and `gpt3mix push-model`: publish an augmented dataset or a trained classifier, with its
card and provenance. `--dry-run` writes the exact repository folder locally and uploads nothing.

The token comes from `hf auth login` or the HF_TOKEN environment variable, never from a flag (a flag would
leave it in the shell history and the process list).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset, DatasetDict
from transformers.utils import logging

from ..hub.push import push_augmented_dataset, push_classifier
from ..provenance import CONFIG_NAME, GPT3MixConfig
from ..state import load_saved_rows
from ..validation import check_fields

logger = logging.get_logger(__name__)


@dataclass
class PushArguments:
    repo_id: str = field(metadata={"help": "The repository to publish to, 'namespace/name'."})
    dry_run: bool = field(
        default=False, metadata={"help": "Write the repository folder (see --local_dir) and upload nothing."}
    )
    local_dir: str | None = field(
        default=None, metadata={"help": "With --dry_run: where to write the folder (default: a new temporary folder)."}
    )
    private: bool | None = field(
        default=None, metadata={"help": "Make the repository private (true) or public (false); default: unchanged."}
    )
    commit_message: str | None = field(default=None, metadata={"help": "The commit message."})
    config: str | None = field(
        default=None, metadata={"help": f"The provenance file; default: the {CONFIG_NAME} in or beside the folder."}
    )
    license: str | None = field(
        default=None,
        metadata={"help": "The Hub's licence id for the card, e.g. 'mit' (see "
                  "huggingface.co/docs/hub/repositories-licenses); 'other' with --license_name and --license_link."},
    )
    license_name: str | None = field(default=None, metadata={"help": "With --license other: the licence's name."})
    license_link: str | None = field(default=None, metadata={"help": "With --license other: a link to its text."})
    language: str | None = field(
        default=None, metadata={"help": "Language of the texts, for the card's metadata, e.g. en (default: none)."}
    )

    def __post_init__(self):
        check_fields(self)


@dataclass
class DatasetArguments:
    dataset_dir: str = field(
        metadata={
            "help": "A dataset saved with save_to_disk, or the output_dir of `gpt3mix augment` (its synthetic/ "
            "folder is published)."
        }
    )
    with_real: bool = field(
        default=False,
        metadata={"help": "Publish the real rows (the real/ folder beside synthetic/) with the synthetic ones."},
    )
    pretty_name: str | None = field(default=None, metadata={"help": "The dataset's title on its card."})
    max_shard_size: str = field(default="500MB", metadata={"help": "Largest parquet shard."})

    def __post_init__(self):
        check_fields(self)


@dataclass
class ModelArguments:
    model_dir: str = field(
        metadata={
            "help": "A classifier saved with save_pretrained (with its tokenizer); what the Trainer and `gpt3mix "
            "train` wrote beside it (gpt3mix_training.json or training_args.bin, trainer_state.json, "
            "test_results.json / eval_results.json) goes into the card."
        }
    )
    dataset_id: str | None = field(default=None, metadata={"help": "Hub id of the training data, for the card."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the encoder it was fine-tuned from."})
    eval_dataset: str | None = field(
        default=None, metadata={"help": "Hub id of the data the results were measured on (default: as recorded)."}
    )
    eval_split: str | None = field(
        default=None, metadata={"help": "Split the results were measured on (default: as recorded)."}
    )

    def __post_init__(self):
        check_fields(self)


def arguments(name: str) -> tuple[type, ...]:
    if name == "push-dataset":
        return PushArguments, DatasetArguments
    return PushArguments, ModelArguments


def _find_config(args: PushArguments, folder: Path) -> GPT3MixConfig | None:
    if args.config is not None:
        return GPT3MixConfig.from_pretrained(args.config)
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / CONFIG_NAME).exists():
            return GPT3MixConfig.from_pretrained(candidate / CONFIG_NAME)
    return None


def _rows_folder(args: DatasetArguments) -> Path:
    folder = Path(args.dataset_dir)
    if not folder.exists():
        raise FileNotFoundError(f"No folder {folder}: give the folder written by save_to_disk or `gpt3mix augment`.")
    return folder / "synthetic" if (folder / "synthetic").is_dir() else folder


def _load_dataset(args: DatasetArguments, synthetic_dir: Path, config: GPT3MixConfig | None) -> Dataset | DatasetDict:
    fix = "give the folder written by save_to_disk or `gpt3mix augment`, whole"
    dataset = load_saved_rows(synthetic_dir, fix)
    if args.with_real:
        from ..data import concatenate_with_real

        real_dir = synthetic_dir.parent / "real"
        if not real_dir.is_dir():
            raise FileNotFoundError(f"--with_real needs the real rows in {real_dir}, as `gpt3mix augment` saves them.")
        # The real rows keep the dataset's own column names, which the provenance records.
        columns = {"text_column": config.data.text_column, "label_column": config.data.label_column} if config else {}
        dataset = concatenate_with_real(load_saved_rows(real_dir, fix), dataset, **columns)
    return dataset


def _report(folder: Path, dry_run: bool, repo_id: str, commit) -> None:
    if dry_run:
        files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
        sys.stdout.write(f"dry run: nothing uploaded. The repository {repo_id} would hold ({folder}):\n")
        sys.stdout.writelines(f"  {name}\n" for name in files)
        sys.stdout.write(f"Read the card: {folder / 'README.md'}\n")
    else:
        sys.stdout.write(f"published: {getattr(commit, 'commit_url', commit)}\n")


def run(name: str, args: PushArguments, specific) -> int:
    local_dir = None
    if args.dry_run:
        local_dir = Path(args.local_dir or tempfile.mkdtemp(prefix=f"gpt3mix-{name}-"))
    elif args.local_dir is not None:
        sys.stderr.write("--local_dir is for --dry_run; without it, the folder is uploaded and not kept.\n")
        return 2
    card_kwargs = {"license": args.license, "license_name": args.license_name, "license_link": args.license_link,
                   "language": args.language}
    if name == "push-dataset":
        folder = _rows_folder(specific)
        config = _find_config(args, folder)
        if config is None and folder.name == "synthetic" and (folder.parent / "real").is_dir():
            # A `gpt3mix augment` folder whose config (written last) is missing: its rows may be cut off.
            raise FileNotFoundError(
                f"{folder.parent} has no {CONFIG_NAME}, which `gpt3mix augment` writes last: run the same augment "
                "again (it resumes), or name the provenance with --config."
            )
        if config is not None and config.report is None:
            logger.warning(f"{CONFIG_NAME} holds no report of the run: the card shows no quality report.")
        elif config is not None and not config.report.quality and (folder.parent / "real").is_dir():
            # A folder made before the quality report existed: measure its rows now, for the card.
            from .report import folder_quality

            config.report = replace(config.report, quality=folder_quality(folder.parent)[0])
        dataset = _load_dataset(specific, folder, config)
        result = push_augmented_dataset(
            dataset,
            args.repo_id,
            provenance=config,
            private=args.private,
            local_dir=local_dir,
            commit_message=args.commit_message,
            max_shard_size=specific.max_shard_size,
            pretty_name=specific.pretty_name,
            **card_kwargs,
        )
    else:
        folder = Path(specific.model_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"No folder {folder}: give the folder the classifier was saved to.")
        result = push_classifier(
            folder,
            args.repo_id,
            provenance=_find_config(args, folder),
            dataset_id=specific.dataset_id,
            eval_dataset_id=specific.eval_dataset,
            # Another evaluation dataset than the recorded one: its recorded name would go with the new id.
            eval_dataset_name=specific.eval_dataset,
            eval_split=specific.eval_split,
            base_model=specific.base_model,
            private=args.private,
            local_dir=local_dir,
            commit_message=args.commit_message,
            **card_kwargs,
        )
    _report(local_dir or folder, args.dry_run, args.repo_id, result)
    return 0
