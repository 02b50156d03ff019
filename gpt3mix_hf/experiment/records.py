"""The run records of a sweep on disk: reading a finished one, the settings each records, and the check that one
`output_dir` only ever holds runs made with one set of settings (so that its runs pair up)."""

from __future__ import annotations

import os
from pathlib import Path

from transformers.utils import logging

from ..backends.base import SamplingConfig
from ..config import AugmenterConfig
from ..state import json_round_trip, read_json, write_json
from .arguments import GPT3MIX_METHODS, ExperimentArguments

logger = logging.get_logger(__name__)

OK = "ok"

# The arguments that say which runs to make or how to show progress, not how a run is made: the calls that fill
# one output_dir may differ in these. `lm_batch_size` only sets decoding slots: fp32 rows are the same whatever it
# is, bf16 rows may differ by a rounding (README *Same seed, same data*), and every method of a data seed shares
# that seed's one generation either way.
GRID_FIELDS = ("output_dir", "levels", "methods", "data_seeds", "repeats", "augment_only", "skip_uncached",
               "disable_tqdm", "lm_batch_size")


def run_settings(args: ExperimentArguments, settings: AugmenterConfig, sampling: SamplingConfig) -> dict:
    """Every setting of a run, as its JSON records them."""
    return json_round_trip({**args.to_dict(), "augmenter": settings.to_dict(), "sampling": sampling.to_dict()})


def _differences(made: dict, given: dict, method: str) -> list[str]:
    """The settings (dotted names) in which a finished run of `method`, made with `made`, differs from this call's
    `given`. Compared: the names both have (a setting added or dropped by a later version of the package is not a
    difference) that `method`'s runs depend on (NoAug's do not depend on the LM, e.g.)."""
    made, given = _flatten(made), _flatten(given)
    differ = []
    for name in sorted(made.keys() & given.keys()):
        if not _depends_on(method, name):
            continue
        old, new = made[name], given[name]
        if name == "data_dir" and old and new:
            # "../shared/data" and "/work/shared/data" are one folder: compared as resolved paths.
            old, new = os.path.realpath(old), os.path.realpath(new)
        if old != new:
            differ.append(f"{name}: {made[name]!r} there, {given[name]!r} now")
    return differ


def _flatten(settings: dict) -> dict:
    """`{"augmenter": {"ratio": 5.0}}` as `{"augmenter.ratio": 5.0}` (run settings nest one level deep)."""
    flat = {}
    for name, value in settings.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


# Settings only the methods that prompt an LM depend on; EDA, back-translation and the step-matched control depend
# on one augmenter setting, the ratio (how many rows per real row).
_LM_SETTINGS = ("lm", "k", "preset", "text_type", "label_type", "verbalizer", "sampling")
_RATIO_ONLY = ("noaug-repeated", "eda", "bt")


def _depends_on(method: str, name: str) -> bool:
    """Whether the runs of `method` depend on the (dotted) setting `name`."""
    top, _, key = name.partition(".")
    if top in GRID_FIELDS or (top in _LM_SETTINGS and method not in GPT3MIX_METHODS):
        return False
    if top == "bt_models":
        return method == "bt"
    if top == "augmenter":
        return method in GPT3MIX_METHODS or (method in _RATIO_ONLY and key == "ratio")
    return True


def check_same_settings(output_dir: Path, given: dict) -> None:
    """Refuse to add runs to `output_dir` if its finished runs were made with other settings: the summary pairs
    every run of a level with the same data seed's runs of the other methods, which only means something when
    nothing but the method differs."""
    for path in sorted((output_dir / "runs").rglob("*.json")):
        # A cut-off record is run again, so it is not compared (and the grid's own read warns about it).
        record = finished_record(path, warn=False)
        if record is None:
            continue
        differ = _differences(record.get("settings", {}), given, record["method"])
        if differ:
            where = f"{record['method']}, level {record['level']:g}, data seed {record['data_index']}"
            raise ValueError(
                f"{output_dir} holds runs made with other settings ({where}: {'; '.join(differ)}). Their runs would "
                "not pair up with this call's: give the same settings to resume it, or another --output_dir."
            )


# What names a sweep's task rather than its protocol.
TASK_FIELDS = ("preset", "text_type", "label_type", "verbalizer", "spec", "dataset", "dataset_config", "revision",
               "data_dir", "text_column", "label_column", "test_split")


def sweep_differences(first: Path, second: Path, ignore: tuple[str, ...] = GRID_FIELDS) -> list[str]:
    """The settings (dotted names, but for the `ignore`d ones) in which the sweeps in the folders `first` and
    `second` differ, as their `experiment.json` files record them: `"name: <first> / <second>"`."""
    settings = []
    for folder in (first, second):
        path = Path(folder) / "experiment.json"
        if not path.exists():
            raise FileNotFoundError(f"{folder} has no experiment.json: is it a sweep's --output_dir?")
        settings.append(_flatten(read_json(path)))
    a, b = settings
    return [f"{name}: {a.get(name)!r} / {b.get(name)!r}" for name in sorted(a.keys() | b.keys())
            if name.partition(".")[0] not in ignore and a.get(name) != b.get(name)]


def write_experiment(output_dir: Path, settings: dict) -> None:
    """`experiment.json`: the settings of every run in `output_dir` (`check_same_settings` keeps them one), with
    the grid of every call that filled it: the union of levels and methods, the most data seeds and repeats."""
    path = output_dir / "experiment.json"
    if path.exists():
        before = read_json(path)
        settings = {
            **settings,
            "levels": sorted(set(before.get("levels", [])) | set(settings["levels"])),
            "methods": [*settings["methods"], *(m for m in before.get("methods", []) if m not in settings["methods"])],
            **{name: max(before.get(name, 0), settings[name]) for name in ("data_seeds", "repeats")},
        }
    write_json(path, settings)


def finished_record(path: Path, warn: bool = True) -> dict | None:
    """The record of a finished run at `path`, or None (absent, unfinished or cut off: it is run again, with a
    warning where `warn`)."""
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except ValueError as error:
        if warn:
            logger.warning(f"{error} Running it again.")
        return None
    if record.get("record_version", 1) < 2 and record.get("method") == "gpt3mix-hard":
        # Its run was of the label the LM wrote (`gpt3mix-written` now, as `summary.load_runs` reads it): it would
        # stand for a run of today's gpt3mix-hard (the LM's most likely label), which would never be made.
        raise ValueError(
            f"{path} is a run of the label the LM wrote, recorded under its old name gpt3mix-hard (before "
            "record_version 2): resuming would take it for a run of today's gpt3mix-hard. Move "
            f"{path.parent.parent} to runs/gpt3mix-written, or give another --output_dir."
        )
    return record if record.get("status") == OK else None
