"""`gpt3mix augment`: augment a labelled dataset with GPT3Mix (a local transformers LM, or one served through an
OpenAI-compatible API such as vLLM, or TGI) and save it with its provenance.

The API key of a served LM is read from an environment variable (`--api_key_env` names which), never from a
flag: a flag would stay in the shell history and the process list, and could reach the provenance file.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from datasets.utils.logging import disable_progress_bar
from transformers.utils import logging

from ..augment_run import DEFAULT_MAP_BATCH_SIZE
from ..augmenter import GPT3MixAugmenter
from ..backends.base import SamplingConfig
from ..backends.served.auth import check_base_url
from ..backends.served.config import ServedConfig
from ..config import AugmenterConfig
from ..data import DataArguments
from ..models import DEFAULT_LM
from ..provenance import CONFIG_NAME, GPT3MixConfig
from ..quality import format_quality
from ..regeneration import make_augmenter, recorded_num_proc
from ..spec import TaskSpecArguments, task_spec
from ..state import check_folder_path, write_text
from ..validation import check_fields

BACKENDS = ("transformers", "openai", "tgi")
SERVED = ("openai", "tgi")
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "tgi": "HF_TOKEN"}
DTYPES = ("auto", "float32", "bfloat16", "float16")

logger = logging.get_logger(__name__)


@dataclass
class AugmentArguments:
    output_dir: str = field(metadata={"help": "Where the augmented dataset, its config and failures are saved."})
    backend: str = field(
        default="transformers",
        metadata={"help": "The LM: a local transformers model, or one served through an OpenAI-compatible API "
                  "(vLLM, ...) or TGI.", "choices": list(BACKENDS)},
    )
    model: str | None = field(
        default=None,
        metadata={"help": f"transformers: a Hub id, a local folder or '{DEFAULT_LM}' (the default). openai/tgi: the "
                  "served model's name (default: the one the server serves)."},
    )
    model_revision: str | None = field(default=None, metadata={"help": "transformers: the LM's Hub revision."})
    dtype: str = field(
        default="auto",
        metadata={"help": "transformers: the LM's dtype; auto: bfloat16 on a GPU or a CPU with bf16 matrix "
                  "instructions (AVX512_BF16/AMX), float32 elsewhere. The config records the dtype used.",
                  "choices": list(DTYPES)},
    )
    base_url: str | None = field(
        default=None, metadata={"help": "openai/tgi: the server, e.g. http://127.0.0.1:8000/v1."}
    )
    api_key_env: str | None = field(
        default=None,
        metadata={"help": "openai/tgi: the environment variable holding the API key (default: OPENAI_API_KEY for "
                  "openai, HF_TOKEN for tgi; unset: no key)."},
    )
    generation_batch_size: int | None = field(
        default=None,
        metadata={"help": "transformers: decoding slots (default: 64 on CPU, 128 on GPU; with --config the recorded "
                  "number)."},
    )
    map_batch_size: int | None = field(
        default=None,
        metadata={"help": "Real rows per Dataset.map batch (one continuous-batching run of the LM); default: the LM's "
                  f"decoding slots, at least {DEFAULT_MAP_BATCH_SIZE}, or with --config the recorded one."},
    )
    num_proc: int | None = field(
        default=None,
        metadata={"help": "Processes for Dataset.map: for a local LM on the CPU or a served LM (forked processes "
                  "cannot use CUDA, so a local LM on a GPU refuses it)."},
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "Switch progress bars off."})
    config: str | None = field(
        default=None,
        metadata={"help": "Regenerate from a gpt3mix_config.json: its settings replace the data, task, sampling and "
                  "augmentation flags (giving one of those too is an error). A served LM is reached again at "
                  "--base_url (the file records its model, not its URL)."},
    )

    def __post_init__(self):
        check_fields(self)
        for name in ("generation_batch_size", "map_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.backend in SERVED and self.base_url is None and self.config is None:
            raise ValueError(
                f"--backend {self.backend} needs --base_url, the server's address (e.g. http://127.0.0.1:8000/v1)."
            )
        if self.base_url is not None:
            check_base_url(self.base_url)  # a key in it is refused before any data is read
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ValueError(
                f"--api_key_env {self.api_key_env}: the environment variable {self.api_key_env} is not set (or is "
                f"empty) in this shell: export {self.api_key_env}=<the key>, or leave --api_key_env out for a "
                "server without a key."
            )


def arguments(name: str) -> tuple[type, ...]:
    # ServedConfig's fields are the served backends' flags (--max_concurrency, --timeout, --cache_path, ...).
    return DataArguments, TaskSpecArguments, SamplingConfig, AugmenterConfig, AugmentArguments, ServedConfig


def served_backend(kind: str, base_url: str, *, model: str | None, api_key_env: str | None, served: ServedConfig,
                   identity: dict | None = None):
    """An `OpenAIBackend` or `TGIBackend` (rebuilt from a provenance `identity` when given). The backend reads
    its key from the environment variable `api_key_env` itself, in every `map(num_proc=...)` worker too: the
    key is never a flag, never pickled."""
    from ..backends import OpenAIBackend, TGIBackend

    backend_class = OpenAIBackend if kind == "openai" else TGIBackend
    variable = api_key_env or DEFAULT_KEY_ENV[kind]
    if not os.environ.get(variable):
        logger.warning(f"{variable} is not set: no API key is sent to {base_url}. A server that needs one answers "
                       f"401: then export {variable}=<the key> (or name another variable with --api_key_env).")
    settings = {"config": served, "api_key_env": variable if os.environ.get(variable) else None}
    if identity is not None:
        return backend_class.from_identity(identity, base_url=base_url, **settings)
    return backend_class(base_url, model=model, **settings)


def _backend(args: AugmentArguments, served: ServedConfig):
    if args.backend == "transformers":
        from ..backends.local.transformers import TransformersBackend

        name = args.model or DEFAULT_LM
        if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
            raise FileNotFoundError(f"No model folder {name}: give --model a folder, a Hub id or '{DEFAULT_LM}'.")
        return TransformersBackend.from_pretrained(
            name, revision=args.model_revision, dtype=args.dtype,
            batch_size=args.generation_batch_size,
        )
    return served_backend(args.backend, args.base_url, model=args.model, api_key_env=args.api_key_env,
                          served=served)


def _check_nothing_else_given(given: list) -> None:
    """With --config the file decides the data, task, sampling and augmentation: a flag of those that differs
    from its default would be ignored, so it is refused."""
    changed = []
    for arguments in given:
        defaults = type(arguments)()  # as made from no flags, so a default __post_init__ normalises is not "given"
        for item in fields(arguments):
            if item.name == "data_dir":  # the recorded folder is a path on the machine that made the data
                continue
            if getattr(arguments, item.name) != getattr(defaults, item.name):
                changed.append(f"--{item.name}")
    if changed:
        raise ValueError(
            f"--config regenerates with the file's settings, so {', '.join(changed)} would be ignored: leave "
            f"{'it' if len(changed) == 1 else 'them'} out, or augment without --config to use other settings."
        )


def _from_config(args: AugmentArguments, given: DataArguments, served: ServedConfig):
    # The file names the LM (its identity, dtype and commit included): a flag that picks another would be ignored.
    other_lm = [f"--{name}" for name in ("model", "model_revision") if getattr(args, name) is not None]
    other_lm += ["--dtype"] if args.dtype != "auto" else []
    if other_lm:
        raise ValueError(
            f"--config regenerates with the LM the file records, so {', '.join(other_lm)} would be ignored. To "
            "make the rows with another copy of that LM (e.g. a local folder), call gpt3mix_hf.provenance."
            "regenerate(config, backend=TransformersBackend.from_pretrained(folder, dtype=...)) in Python."
        )
    config = GPT3MixConfig.from_pretrained(args.config)
    recorded = {item.name: getattr(config.data, item.name) for item in fields(DataArguments)}
    data_args = DataArguments(**recorded)
    if given.data_dir is not None:
        # The recorded folder is a path on the machine that made the data.
        data_args.data_dir = given.data_dir
    dataset = data_args.load()
    kind = config.backend.get("backend")
    backend = None
    if kind in SERVED:
        if args.base_url is None:
            raise ValueError(
                f"The data was made by the {kind!r} server model {config.backend.get('model')!r}; a provenance file "
                "records no server address: pass --base_url of a server that serves it."
            )
        backend = served_backend(kind, args.base_url, model=None, api_key_env=args.api_key_env, served=served,
                                 identity=config.backend)
    options = {} if args.generation_batch_size is None or backend is not None else {
        "batch_size": args.generation_batch_size}
    augmenter = make_augmenter(config, dataset=dataset, backend=backend, **options)
    # The recorded batching unless a flag gives another: float32 rows do not depend on it, bf16 rows do.
    map_batch_size = args.map_batch_size or config.run.map_batch_size
    # Processes decide which rows decode together: bf16 rows depend on it (RunSettings).
    num_proc = args.num_proc if args.num_proc is not None else recorded_num_proc(config, augmenter.backend)
    return augmenter, dataset, recorded, map_batch_size, num_proc


def run(name: str, data_args: DataArguments, task: TaskSpecArguments, sampling: SamplingConfig,
        settings: AugmenterConfig, args: AugmentArguments, served: ServedConfig) -> int:
    if args.disable_tqdm:
        disable_progress_bar()
    check_folder_path(args.output_dir, "--output_dir")  # before the LM is loaded and the rows are made
    served_flags = [f"--{name}" for name in ("base_url", "api_key_env") if getattr(args, name) is not None]
    served_flags += [f"--{item.name}" for item in fields(served) if getattr(served, item.name) != item.default]
    if args.backend == "transformers" and served_flags and args.config is None:
        raise ValueError(
            f"{', '.join(served_flags)} {'is' if len(served_flags) == 1 else 'are'} for a served LM: add --backend "
            "openai (vLLM and other OpenAI-compatible servers) or --backend tgi, with --base_url."
        )
    if args.config is not None:
        _check_nothing_else_given([data_args, task, sampling, settings])
        augmenter, dataset, data, map_batch_size, num_proc = _from_config(args, data_args, served)
    else:
        dataset = data_args.load()
        label_names = list(dataset.features[data_args.label_column].names)
        augmenter = GPT3MixAugmenter(
            _backend(args, served), dataset, task_spec(task, label_names, data_args.dataset), config=settings,
            sampling=sampling, text_column=data_args.text_column, label_column=data_args.label_column,
        )
        data, map_batch_size, num_proc = vars(data_args), args.map_batch_size, args.num_proc
    output_dir = Path(args.output_dir)
    synthetic = augmenter.augment(
        dataset, batch_size=map_batch_size, num_proc=num_proc, checkpoint_dir=output_dir / "checkpoints"
    )
    report = augmenter.report
    # The provenance is made (and checked for credentials) before anything is saved: a folder is never left with
    # rows and no config.
    data = {key: value for key, value in data.items() if key not in ("num_rows", "sha256")}
    config = GPT3MixConfig.from_augmenter(augmenter, dataset, data=data, map_batch_size=map_batch_size,
                                          num_proc=num_proc)
    # gpt3mix_config.json is written last and marks the folder whole: an earlier run's is removed first, so a run
    # stopped while saving leaves no config beside other rows (`train` and `push-dataset` refuse such a folder).
    (output_dir / CONFIG_NAME).unlink(missing_ok=True)
    # One shard even for 0 rows: datasets cannot load back a folder saved without one.
    synthetic.save_to_disk(output_dir / "synthetic", num_shards=1 if len(synthetic) == 0 else None)
    dataset.save_to_disk(output_dir / "real")
    write_text(output_dir / "failures.jsonl", "".join(json.dumps(row) + "\n" for row in report.failures))
    config.save_pretrained(output_dir)
    sys.stdout.write(
        f"rows written: {report.rows_written} of {report.rows_requested} "
        f"({report.failed_rows} rows failed every attempt)\n"
        f"parse failures: {report.parse_failures} ({report.parse_failure_rate:.1%} of generations)\n"
        f"tokens generated: {report.generated_tokens}\n"
        f"seconds: {report.seconds:.1f}\n"
        f"samples per second: {report.samples_per_second:.2f}\n"
        f"quality of the synthetic rows (`gpt3mix report {output_dir}` prints it again):\n"
        f"{format_quality(report.quality or {}, augmenter.label_names)}\n"
        f"saved to: {output_dir}\n"
    )
    return 0
