"""Publishing GPT3Mix artifacts: an augmented dataset, or a classifier trained on one, with its card and
provenance, as one commit to a Hub repository (`huggingface_hub.HfApi`).

Both helpers first write the exact repository folder; with `local_dir=` they stop there, so you can look at
what would be published (no token needed, nothing uploaded).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.utils import logging

from .cards import build_dataset_card, final_eval_results, model_card_for_model, model_card_from_trainer
from .provenance import CONFIG_NAME, as_config, save_config

logger = logging.get_logger(__name__)

DEFAULT_MAX_SHARD_SIZE = "500MB"


def check_repo_id(repo_id: str) -> str:
    """Refuse a repository id that is not `namespace/name` (a name alone would go to whoever the token belongs to,
    which is easy to get wrong when publishing)."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(
            f"repo_id must be 'namespace/name' (your user name or organisation, then the repository), got "
            f"{repo_id!r}: e.g. 'my-user/{str(repo_id).strip('/').split('/')[-1] or 'sst2-gpt3mix'}'."
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"repo_id {repo_id!r} is not a valid Hub repository id: {error}") from None
    return repo_id


def resolve_token(token: str | None) -> str:
    """The token to upload with: `token`, else `HF_TOKEN` or the one saved by `hf auth login`."""
    token = token or get_token()
    if not token:
        raise OSError(
            "No Hugging Face token found, so nothing can be uploaded. Log in with `hf auth login` (or the older "
            "`huggingface-cli login`), or set the HF_TOKEN environment variable to a token with write access. "
            "To only look at what would be published, pass local_dir=... (or --dry-run)."
        )
    return token


def _check_folder_has_no_token(folder: Path, token: str | None) -> None:
    """The token must never be published: refuse to upload any text file that contains it."""
    if not token:
        return
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".txt", ".yaml", ".yml", ".jinja", ""):
            if token in path.read_text(encoding="utf-8", errors="ignore"):
                raise ValueError(
                    f"{path.relative_to(folder)} contains your access token: nothing was uploaded. Remove the token "
                    "from the model config, tokenizer files or card arguments."
                )


def _num_shards(dataset: Dataset, max_shard_size: int | str) -> int:
    limit = convert_file_size_to_int(max_shard_size)
    return max(1, int(dataset.data.nbytes / limit) + 1) if len(dataset) else 1


def write_dataset_folder(
    dataset: Dataset | DatasetDict,
    folder: str | Path,
    *,
    split: str = "train",
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
) -> list[str]:
    """Write each split as `data/<split>-<i>-of-<n>.parquet` shards of at most about `max_shard_size` (the
    layout `Dataset.push_to_hub` uses); the features, `ClassLabel` names included, travel in the parquet
    schema and the card's `dataset_info`. Returns the paths written, relative to `folder`."""
    folder = Path(folder)
    splits = dataset if isinstance(dataset, DatasetDict) else DatasetDict({split: dataset})
    written = []
    for name, part in splits.items():
        if not re.fullmatch(r"[\w.]+", name):
            raise ValueError(f"Split name {name!r} must be letters, digits, '_' or '.' (it becomes a file name).")
        # Shards of an earlier write of this split would be loaded with the new ones.
        for stale in (folder / "data").glob(f"{name}-*.parquet"):
            stale.unlink()
        num_shards = _num_shards(part, max_shard_size)
        for index in range(num_shards):
            path = f"data/{name}-{index:05d}-of-{num_shards:05d}.parquet"
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            part.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(folder / path)
            written.append(path)
    return written


def _upload(
    folder: Path,
    repo_id: str,
    repo_type: str,
    *,
    token: str,
    private: bool | None,
    commit_message: str,
    delete_patterns: list[str] | None,
    revision: str | None,
    create_pr: bool,
):
    api = HfApi(token=token)
    repo = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if private is not None:
        # create_repo leaves an existing repository's visibility as it is: set it when it differs.
        info = api.repo_info(repo_id, repo_type=repo_type)
        if bool(getattr(info, "private", private)) != private:
            logger.info(f"Making {repo_type} repository {repo_id} {'private' if private else 'public'}.")
            api.update_repo_settings(repo_id, private=private, repo_type=repo_type)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type=repo_type,
        commit_message=commit_message,
        delete_patterns=delete_patterns,
        revision=revision,
        create_pr=create_pr,
    )
    logger.info(f"Published {repo_type} {repo_id}: {getattr(commit, 'commit_url', commit)}")
    return repo, commit


# The hyper-parameters shown on a card, from a saved `training_args.json` (names as in TrainingArguments).
_CARD_HYPERPARAMETERS = (
    "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "seed", "optim", "weight_decay", "lr_scheduler_type", "warmup_steps", "num_train_epochs", "max_steps",
    "early_stopping_patience", "metric_for_best_model",
)
_LOSS_FIELDS = ("loss_type", "temperature", "synthetic_weight")


def read_classifier_folder(folder: str | Path) -> tuple[Any, Any, dict]:
    """A saved classifier, its tokenizer (None if the folder has none) and what its card can say about its
    training, from the files the Trainer writes beside it: `training_args.json` (hyper-parameters and the
    soft-label loss), `trainer_state.json` (training log), `test_results.json` or `eval_results.json`
    (`Trainer.save_metrics`). Returns keyword arguments for `push_classifier`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.modelcard import parse_log_history

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} has no config.json: save the classifier there with save_pretrained().")
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    has_tokenizer = any((folder / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    tokenizer = AutoTokenizer.from_pretrained(folder) if has_tokenizer else None
    inputs: dict[str, Any] = {}
    if (folder / "training_args.json").exists():
        saved = json.loads((folder / "training_args.json").read_text())
        # max_steps=-1 means "train num_train_epochs": not a setting worth showing.
        shown = [name for name in _CARD_HYPERPARAMETERS if saved.get(name) is not None and saved.get(name) != -1]
        inputs["hyperparameters"] = {name: saved[name] for name in shown}
        inputs["loss"] = {name: saved[name] for name in _LOSS_FIELDS if name in saved}
    log_history = []
    if (folder / "trainer_state.json").exists():
        log_history = json.loads((folder / "trainer_state.json").read_text()).get("log_history") or []
        _, lines, _ = parse_log_history(log_history)
        inputs["training_log"] = lines or []
    for name, split in (("test_results.json", "test"), ("eval_results.json", "validation")):
        if (folder / name).exists():
            inputs["eval_results"] = json.loads((folder / name).read_text())
            inputs["eval_split"] = split
            break
    else:
        state = json.loads((folder / "trainer_state.json").read_text()) if log_history else {}
        results = final_eval_results(log_history, state.get("best_global_step"))
        if results:
            inputs["eval_results"], inputs["eval_split"] = results, "validation"
    return model, tokenizer, inputs


def push_augmented_dataset(
    dataset: Dataset | DatasetDict,
    repo_id: str,
    *,
    provenance: Any = None,
    split: str = "train",
    private: bool | None = None,
    token: str | None = None,
    local_dir: str | Path | None = None,
    commit_message: str | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    revision: str | None = None,
    create_pr: bool = False,
    **card_kwargs,
):
    """Publish a GPT3Mix dataset: parquet shards, a dataset card and `gpt3mix_config.json`, in one commit.

    Args:
        dataset (`Dataset` or `DatasetDict`): the synthetic rows (`augmenter.augment()`), or real + synthetic
            (`concatenate_with_real`); a `Dataset` is published as the split `split`. A dataset without a
            `soft_labels` column is published too, and its card says so.
        repo_id (`str`): `namespace/name`.
        provenance (`dict`, path or `GPT3MixAugmenter`, *optional*): what made the data (`build_config`).
        split (`str`): the split name of a `Dataset`.
        private (`bool`, *optional*): the repository's visibility; an existing repository is changed to match.
            `None` keeps an existing repository as it is and creates a public one.
        token (`str`, *optional*): default `HF_TOKEN` or the token saved by `hf auth login`. Never written to
            any file or log.
        local_dir (`str`, *optional*): write the repository folder there and upload nothing.
        commit_message (`str`, *optional*): default "Upload GPT3Mix dataset with gpt3mix_hf".
        max_shard_size (`int` or `str`): the largest parquet shard, e.g. `"500MB"`.
        card_kwargs: `license`, `language`, `pretty_name`, `source_datasets`, `tags`, `num_sample_rows`
            (see `GPT3MixDatasetCardData`).

    Returns:
        The `CommitInfo` of the upload, or the `Path` of `local_dir`.

    Example:

    >>> push_augmented_dataset(synthetic, "me/sst2-gpt3mix", provenance=augmenter, license="mit")
    >>> push_augmented_dataset(synthetic, "me/sst2-gpt3mix", provenance=augmenter, local_dir="preview")
    """
    check_repo_id(repo_id)
    if not isinstance(dataset, Dataset | DatasetDict):
        raise TypeError(f"dataset must be a datasets.Dataset or DatasetDict, got {type(dataset).__name__}.")
    if local_dir is None:
        token = resolve_token(token)
    config = as_config(provenance)
    card = build_dataset_card(dataset, repo_id, config, split=split, **card_kwargs)
    with tempfile.TemporaryDirectory(prefix="gpt3mix-dataset-") as staging:
        folder = Path(local_dir) if local_dir is not None else Path(staging)
        folder.mkdir(parents=True, exist_ok=True)
        files = write_dataset_folder(dataset, folder, split=split, max_shard_size=max_shard_size)
        if config is not None:
            save_config(config, folder / CONFIG_NAME)
        card.save(folder / "README.md")
        _check_folder_has_no_token(folder, token)
        if local_dir is not None:
            logger.info(f"Wrote the repository folder of {repo_id} to {folder} ({len(files)} data files); "
                        "nothing was uploaded.")
            return folder
        splits = list(dataset) if isinstance(dataset, DatasetDict) else [split]
        _, commit = _upload(
            folder,
            repo_id,
            "dataset",
            token=token,
            private=private,
            commit_message=commit_message or "Upload GPT3Mix dataset with gpt3mix_hf",
            # Replace this upload's splits: older shards of them (another shard count) must go.
            delete_patterns=[f"data/{name}-*.parquet" for name in splits],
            revision=revision,
            create_pr=create_pr,
        )
        return commit


def push_classifier(
    model_or_trainer,
    repo_id: str,
    *,
    tokenizer=None,
    provenance: Any = None,
    dataset_id: str | None = None,
    eval_results: dict[str, float] | None = None,
    private: bool | None = None,
    token: str | None = None,
    local_dir: str | Path | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    **card_kwargs,
):
    """Publish a trained classifier: weights, config, tokenizer, a model card and (with `provenance`) the
    `gpt3mix_config.json` of its training data, in one commit.

    Args:
        model_or_trainer: a trained `PreTrainedModel` (then pass `tokenizer`), or the `Trainer` /
            `GPT3MixTrainer` that trained it: its model, tokenizer (`processing_class`), hyper-parameters,
            soft-label loss settings and evaluation results are read from it.
        repo_id (`str`): `namespace/name`.
        tokenizer (*optional*): the tokenizer, when a model is given.
        provenance (`dict`, path or `GPT3MixAugmenter`, *optional*): how the training data was made.
        dataset_id (`str`, *optional*): the Hub id of the training data (e.g. the `push_augmented_dataset` repo).
        eval_results (`dict[str, float]`, *optional*): metric -> value (e.g. `trainer.evaluate(test)`); from a
            trainer, the last evaluation in its log is used when this is not given.
        private, token, local_dir, commit_message, revision, create_pr: as `push_augmented_dataset`.
        card_kwargs: `base_model`, `model_name`, `eval_split`, `eval_dataset_id`, `eval_dataset_name`, `license`,
            `language`, `tags`, and for a bare model `hyperparameters`, `loss`, `training_log`
            (see `GPT3MixModelCardData`).

    Returns:
        The `CommitInfo` of the upload, or the `Path` of `local_dir`.

    Example:

    >>> push_classifier(trainer, "me/minilm-sst2-gpt3mix", dataset_id="me/sst2-gpt3mix", provenance=config)
    """
    from transformers import PreTrainedModel, Trainer

    check_repo_id(repo_id)
    if local_dir is None:
        token = resolve_token(token)
    config = as_config(provenance)
    if isinstance(model_or_trainer, Trainer):
        trainer = model_or_trainer
        model = trainer.model
        tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
        card = model_card_from_trainer(
            trainer, model_id=repo_id, provenance=config, dataset_id=dataset_id, eval_results=eval_results,
            **card_kwargs,
        )
    elif isinstance(model_or_trainer, PreTrainedModel):
        model = model_or_trainer
        card = model_card_for_model(
            model, model_id=repo_id, provenance=config, dataset_id=dataset_id, eval_results=eval_results,
            **card_kwargs,
        )
    else:
        raise TypeError(
            f"push_classifier takes a transformers PreTrainedModel or Trainer, got {type(model_or_trainer).__name__}."
        )
    if tokenizer is None:
        logger.warning(f"No tokenizer given: {repo_id} will hold the model only, and pipeline() cannot load it.")
    with tempfile.TemporaryDirectory(prefix="gpt3mix-model-") as staging:
        folder = Path(local_dir) if local_dir is not None else Path(staging)
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        if config is not None:
            save_config(config, folder / CONFIG_NAME)
        card.save(folder / "README.md")
        _check_folder_has_no_token(folder, token)
        if local_dir is not None:
            logger.info(f"Wrote the repository folder of {repo_id} to {folder}; nothing was uploaded.")
            return folder
        _, commit = _upload(
            folder,
            repo_id,
            "model",
            token=token,
            private=private,
            commit_message=commit_message or "Upload GPT3Mix-trained classifier with gpt3mix_hf",
            delete_patterns=None,
            revision=revision,
            create_pr=create_pr,
        )
        return commit
