"""Regeneration: the augmenter a `gpt3mix_config.json` describes, and the rows it makes again."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from transformers.utils import logging

from .augment_run import RunSettings
from .augmenter import GPT3MixAugmenter
from .backends.base import Backend
from .config import AugmenterConfig
from .data import align_label_names, check_columns
from .provenance import GPT3MixConfig, as_config, dataset_sha256

logger = logging.get_logger(__name__)


def make_augmenter(
    config: GPT3MixConfig | str | Path,
    *,
    dataset: Dataset | None = None,
    backend: Backend | None = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    check_data: bool = True,
    **backend_options,
) -> GPT3MixAugmenter:
    """The augmenter a provenance file describes, on the same real rows.

    Args:
        config (`GPT3MixConfig` or `str`): the provenance, or the path of its `gpt3mix_config.json` (or folder).
        dataset (`Dataset`, *optional*): the real rows; default: loaded as `data` says.
        backend (`Backend`, *optional*): the LM; default: rebuilt from the recorded identity with the
            backend's `from_identity`.
        data_dir (`str`, *optional*): where the benchmark's JSONL files are, instead of the recorded folder.
        device (`str`, *optional*): where to load a local LM.
        check_data (`bool`): refuse real rows whose hash differs from the recorded one.
        backend_options: passed to the backend's `from_identity`: a served backend needs `base_url=` (the
            file records no URL and no key) and takes `api_key_env=`.
    """
    config = as_config(config)
    source, label_names = config.data, config.task.label_names
    if dataset is None:
        dataset = source.load(data_dir)
    column = source.label_column
    check_columns(dataset, source.text_column, column, name="the real rows", rows=False)
    names = list(dataset.features[column].names)
    if names != label_names and sorted(names) == sorted(label_names):
        dataset = align_label_names(dataset, column, label_names)  # the same classes: by name
        names = label_names
    if names != label_names:
        raise ValueError(
            f"The real rows have labels {names}, the provenance file {label_names}: the label ids would not "
            "mean the same: regenerate from rows with the file's label_names."
        )
    if check_data and source.sha256 is not None:
        found = dataset_sha256(dataset, source.text_column, column)
        if found != source.sha256:
            raise ValueError(
                f"The real rows differ from those the dataset was made from ({len(dataset)} rows, sha256 "
                f"{found[:12]}..., recorded {source.num_rows} rows, {source.sha256[:12]}...): check the data "
                "folder, split and sub-sample, or pass check_data=False to generate from these rows anyway."
            )
    if backend is None:
        if config.backend.get("backend") == "transformers":
            # The local LM is rebuilt with the recorded batch size: it decides each prompt's padding.
            backend_options = {"batch_size": config.run.generation_batch_size, "device": device, **backend_options}
        backend = Backend.from_identity(config.backend, **backend_options)
    _warn_on_another_machine(config, getattr(backend, "machine", None))
    return GPT3MixAugmenter(
        backend, dataset, config.task.spec, config=AugmenterConfig(**config.augmenter.to_dict()),
        sampling=config.sampling, template=config.task.template, text_column=source.text_column, label_column=column,
    )


def _warn_on_another_machine(config: GPT3MixConfig, here: str | None) -> None:
    """Say when the rows are made again on another kind of machine than the one that made them (`machine_kind`
    of the backend, when it has one): bf16 rows depend on it, float32 rows on the kind of device (round-off)."""
    recorded, dtype = config.run.machine, config.backend.get("dtype")
    if recorded is None or here is None:
        return
    if RunSettings.rows_depend_on_it(dtype) and here != recorded:
        logger.warning(
            f"These rows were generated in {dtype} on another kind of machine ({recorded}; this is {here}): {dtype} "
            "rows are the same for the same settings on the same kind of machine only, so some texts may differ."
        )
    elif here.split(":")[0] != recorded.split(":")[0]:
        # float32 rows do not depend on the batching, but a CPU's and a GPU's kernels round differently.
        logger.warning(
            f"These rows were generated on {recorded}, and are made again on {here}: round-off may move a sampled "
            "token, so some texts may differ."
        )


def recorded_num_proc(config: GPT3MixConfig, backend: Backend) -> int | None:
    """The provenance's `num_proc`, or None (one process) where the backend's model is on a GPU, which forked
    worker processes cannot use: said in a warning (float32 rows do not depend on the processes; bf16 rows made
    on another kind of machine differ anyway)."""
    num_proc = config.run.num_proc
    if (num_proc or 1) > 1 and backend.uses_cuda:
        logger.warning(
            f"The rows were made with num_proc={num_proc} (the provenance's run section), whose forked worker "
            "processes cannot use CUDA, where the model is here: they are made again in one process. Load the LM "
            "with device='cpu' (gpt3mix augment: CUDA_VISIBLE_DEVICES=) to keep the recorded processes."
        )
        return None
    return num_proc


def regenerate(config: GPT3MixConfig | str | Path, **kwargs) -> Dataset:
    """Make the synthetic rows a provenance file describes again, with the recorded batch size and processes
    (keyword arguments as `make_augmenter`): with the same data, model and versions on the same kind of machine,
    the rows are identical (README, *Same seed, same data*). With the model on a GPU, the rows are made in one
    process (`recorded_num_proc`).

    Example:

    >>> synthetic = regenerate("outputs/sst2/gpt3mix_config.json", data_dir="data")
    """
    config = as_config(config)
    augmenter = make_augmenter(config, **kwargs)
    num_proc = recorded_num_proc(config, augmenter.backend)
    return augmenter.augment(batch_size=config.run.map_batch_size, num_proc=num_proc, load_from_cache_file=False)
