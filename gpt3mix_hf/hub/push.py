"""Publishing GPT3Mix artifacts: an augmented dataset, or a classifier trained on one, with its card and
provenance, as one commit to a Hub repository (`huggingface_hub.HfApi`).

Both helpers first write the exact repository folder and check it holds no secret; with `local_dir=` they stop
there, so you can look at what would be published (no token needed, nothing uploaded). The check is the same
either way: the dry run refuses exactly what the upload would.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.utils import logging

from ..credentials import check_dataset_has_no_secrets, check_folder_has_no_secrets
from ..provenance import CONFIG_NAME, as_config
from ..validation import check_arguments
from .cards import build_dataset_card, hub_id_of, model_card_from_folder, model_card_from_trainer
from .cards.common import saved_classifier_kind
from .cards.model_card import label_names_of

logger = logging.get_logger(__name__)

DEFAULT_MAX_SHARD_SIZE = "500MB"
# What a classifier push replaces in its repository: a full model's weights and config, an adapter, the provenance
# file. Left from an earlier push, an `adapter_config.json` beside new full weights would make transformers load
# the old adapter on its old base model, and an old provenance file would contradict a card that says there is none.
DATASET_FILES = ["data/*.parquet", CONFIG_NAME]
MODEL_FILES = ["config.json", "*.safetensors", "*.bin", "*.index.json", "adapter_config.json", CONFIG_NAME]


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
            # Reported: the repository's visibility changes because `private` was given explicitly.
            logger.warning(f"Making the existing {repo_type} repository {repo_id} "
                           f"{'private' if private else 'public'} (private={private}).")
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


def _publish(
    write,
    repo_id: str,
    repo_type: str,
    *,
    local_dir: str | Path | None,
    token: str | None,
    delete_patterns: list[str] | None = None,
    **upload_kwargs,
):
    """Write the repository folder with `write(folder)` into a staging folder and check it; then either copy it
    to `local_dir` (deleting what `delete_patterns` would delete on the Hub) or upload it as one commit. Nothing
    reaches `local_dir` or the Hub before the check passes."""
    with tempfile.TemporaryDirectory(prefix=f"gpt3mix-{repo_type}-") as staging:
        staging = Path(staging)
        write(staging)
        check_folder_has_no_secrets(staging, token, published=("README.md", CONFIG_NAME))
        if local_dir is None:
            _, commit = _upload(staging, repo_id, repo_type, token=token, delete_patterns=delete_patterns,
                                **upload_kwargs)
            return commit
        target = Path(local_dir)
        for pattern in delete_patterns or []:
            for stale in target.glob(pattern):
                stale.unlink()
        shutil.copytree(staging, target, dirs_exist_ok=True)
        logger.info(f"Wrote the repository folder of {repo_id} to {target}; nothing was uploaded.")
        return target


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
    """Publish a GPT3Mix dataset: parquet shards, a dataset card and `gpt3mix_config.json`, in one commit. The
    repository's earlier data shards and provenance file (`DATASET_FILES`) are deleted in that commit, so that the
    card, the provenance and the rows agree: publish several splits together, as a `DatasetDict`.

    Args:
        dataset (`Dataset` or `DatasetDict`): the synthetic rows (`augmenter.augment()`), or real + synthetic
            (`concatenate_with_real`); a `Dataset` is published as the split `split`. A dataset without a
            `soft_labels` column is published too, and its card says so.
        repo_id (`str`): `namespace/name`.
        provenance (`GPT3MixConfig`, path or `GPT3MixAugmenter`, *optional*): what made the data.
        split (`str`): the split name of a `Dataset`.
        private (`bool`, *optional*): `True` / `False` make the repository private / public, an existing one
            included (the change is logged); `None` leaves an existing repository as it is and creates a new one
            with the Hub's default (public).
        token (`str`, *optional*): default `HF_TOKEN` or the token saved by `hf auth login`. Never written to
            any file or log.
        local_dir (`str`, *optional*): write the repository folder there and upload nothing. It refuses what
            the upload refuses (a file holding a secret).
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
    check_arguments(push_augmented_dataset, {"private": private, "commit_message": commit_message,
                                             "revision": revision, "create_pr": create_pr}, owner="push")
    if not isinstance(dataset, Dataset | DatasetDict):
        raise TypeError(f"dataset must be a datasets.Dataset or DatasetDict, got {type(dataset).__name__}.")
    if local_dir is None:
        token = resolve_token(token)
    config = as_config(provenance)
    splits = dataset if isinstance(dataset, DatasetDict) else DatasetDict({split: dataset})
    for name, part in splits.items():
        names = getattr(part.features.get("label"), "names", None)
        if config is not None and names is not None and list(names) != list(config.task.label_names):
            raise ValueError(
                f"The provenance describes rows labelled {config.task.label_names}, but split {name!r} has the labels "
                f"{names}: pass the gpt3mix_config.json of the run that made these rows."
            )
    empty = [name for name, part in splits.items() if len(part) == 0]
    if empty:
        logger.warning(
            f"Publishing {repo_id} with no rows in split(s) {empty}: the augmentation wrote nothing there (see the "
            "report's failures), or the wrong dataset was given."
        )
    for name, part in splits.items():
        check_dataset_has_no_secrets(part, f"split {name!r}", token)
    card = build_dataset_card(dataset, repo_id, config, split=split, **card_kwargs)

    def write(folder: Path) -> None:
        write_dataset_folder(dataset, folder, split=split, max_shard_size=max_shard_size)
        if config is not None:
            config.save_pretrained(folder)
        card.save(folder / "README.md")

    return _publish(
        write,
        repo_id,
        "dataset",
        local_dir=local_dir,
        token=token,
        # The repository holds this upload only: older shards (another shard count, other splits) and an earlier
        # provenance file would sit beside rows they do not describe.
        delete_patterns=DATASET_FILES,
        private=private,
        commit_message=commit_message or "Upload GPT3Mix dataset with gpt3mix_hf",
        revision=revision,
        create_pr=create_pr,
    )


def _load_classifier(folder: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if saved_classifier_kind(folder) == "adapter":
        try:
            from peft import AutoPeftModelForSequenceClassification
        except ImportError as error:
            raise ImportError(f"{folder} holds a peft adapter: pip install 'gpt3mix_hf[peft]'") from error
        model = AutoPeftModelForSequenceClassification.from_pretrained(folder)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    has_tokenizer = any((folder / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    return model, AutoTokenizer.from_pretrained(folder) if has_tokenizer else None


def _is_peft_model(model) -> bool:
    """A `peft` model (a LoRA adapter on a classifier): published as its adapter files, which transformers loads
    with peft installed. peft is an optional extra, so it is only imported when it is there."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def push_classifier(
    model_or_trainer,
    repo_id: str,
    *,
    tokenizer=None,
    provenance: Any = None,
    private: bool | None = None,
    token: str | None = None,
    local_dir: str | Path | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    **card_kwargs,
):
    """Publish a trained classifier: weights, config, tokenizer, a model card and (with `provenance`) the
    `gpt3mix_config.json` of its training data, in one commit. The repository's earlier weights, configs, adapter
    and provenance file (`MODEL_FILES`) are deleted in that commit, so nothing of an earlier model is left beside
    this one.

    Args:
        model_or_trainer: the `Trainer` / `GPT3MixTrainer` that trained it (its model, tokenizer, hyper-parameters,
            soft-label loss settings and evaluations are read from it: `model_card_from_trainer`), a folder saved
            with `save_pretrained` (with what the Trainer wrote beside it: `gpt3mix_training.json` or
            `training_args.bin`, `trainer_state.json` and results files: `model_card_from_folder`), or a
            `PreTrainedModel` or `peft` model (then pass `tokenizer`).
        repo_id (`str`): `namespace/name`.
        tokenizer (*optional*): the tokenizer; default: the trainer's `processing_class` or the folder's.
        provenance (`GPT3MixConfig`, path or `GPT3MixAugmenter`, *optional*): how the training data was made.
        private, token, local_dir, commit_message, revision, create_pr: as `push_augmented_dataset`.
        card_kwargs: the fields of `GPT3MixModelCardData`: `dataset_id` (the Hub id of the training data),
            `eval_results` (metric -> value, e.g. `trainer.evaluate(test)`), `base_model`, `model_name`,
            `eval_split`, `eval_dataset_id`, `license`, `language`, `tags`, ...

    Returns:
        The `CommitInfo` of the upload, or the `Path` of `local_dir`.

    Example:

    >>> push_classifier(trainer, "me/minilm-sst2-gpt3mix", dataset_id="me/sst2-gpt3mix", provenance=config)
    """
    from transformers import PreTrainedModel, Trainer

    check_repo_id(repo_id)
    check_arguments(push_augmented_dataset, {"private": private, "commit_message": commit_message,
                                             "revision": revision, "create_pr": create_pr}, owner="push")
    trainer = card_folder = None
    if isinstance(model_or_trainer, Trainer):
        trainer, model = model_or_trainer, model_or_trainer.model
        tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
    elif isinstance(model_or_trainer, PreTrainedModel) or _is_peft_model(model_or_trainer):
        model = model_or_trainer
    elif isinstance(model_or_trainer, str | Path) and Path(model_or_trainer).is_dir():
        card_folder = Path(model_or_trainer)
        model, found_tokenizer = _load_classifier(card_folder)
        tokenizer = tokenizer if tokenizer is not None else found_tokenizer
    else:
        raise TypeError(
            "push_classifier takes a transformers PreTrainedModel or Trainer, or the folder of a saved classifier; "
            f"got {model_or_trainer!r:.80}."
        )
    if _is_peft_model(model):
        base = next(iter(model.peft_config.values())).base_model_name_or_path
        if base and Path(base).expanduser().exists():
            logger.warning(
                f"The adapter's base model is the local folder {base}: whoever loads {repo_id} needs it. Publish the "
                "base model and set base_model_name_or_path in the adapter's config to its Hub id."
            )
    if local_dir is None:
        token = resolve_token(token)
    config = as_config(provenance)
    if tokenizer is None:
        logger.warning(f"No tokenizer given: {repo_id} will hold the model only, and pipeline() cannot load it.")

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        if config is not None:
            config.save_pretrained(folder)
        if trainer is not None:
            card = model_card_from_trainer(trainer, model_id=repo_id, provenance=config, **card_kwargs)
        else:
            if card_kwargs.get("base_model") is None:
                card_kwargs["base_model"] = hub_id_of(getattr(model.config, "_name_or_path", None))
            card_kwargs.setdefault("label_names", label_names_of(model.config))
            card = model_card_from_folder(card_folder or folder, model_id=repo_id, provenance=config, **card_kwargs)
        card.save(folder / "README.md")

    return _publish(
        write,
        repo_id,
        "model",
        local_dir=local_dir,
        token=token,
        private=private,
        commit_message=commit_message or "Upload GPT3Mix-trained classifier with gpt3mix_hf",
        delete_patterns=MODEL_FILES,
        revision=revision,
        create_pr=create_pr,
    )
