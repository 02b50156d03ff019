"""The synthetic rows of every augmentation method, made once per sub-sample and kept on disk.

GPT3Mix methods share one generation per sub-sample: the augmenter runs in soft mode with the paper's example
selection (`selection="uniform"`) and, when a calibrated method is asked for, with `calibrate=True`, which keeps
the LM's raw label distribution in `uncalibrated_soft_labels` beside the calibrated `soft_labels` (and the prior
divided out in `label_prior`). Each method
then reads its labels from the same texts (`derive_method_rows`):

- `gpt3mix-soft`: the LM's label distribution (uncalibrated);
- `gpt3mix-calibrated`: the distribution with the LM's content-free label prior divided out (Zhao et al., 2021);
- `gpt3mix-hard`: the paper's hard label, the argmax of the (uncalibrated) label distribution, one-hot;
- `gpt3mix-written`: the label the LM wrote after its text, one-hot (a variant, not the paper's), on the rows the
  shared generation kept: unlike the augmenter's `label_mode="written"`, which also keeps rows whose label
  scoring failed, it drops them, so that every GPT3Mix method trains on the same texts;
- `gpt3mix-debiased`: the label distribution averaged over the orders of the prompt's examples and divided by the
  task's mean label distribution over the pool (`label_mode="debiased"`, a variant, not the paper's). When it is
  asked for, the generation runs in that mode: the same texts and raw distributions as a soft-mode generation,
  plus its `order_averaged_soft_labels` and `debias_prior`.

A cache folder is finished when its `meta.json` exists (`gpt3mix_hf.state`); a folder made with other settings
is made again; a `FileLock` keeps two sweep processes from making the same rows.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from datasets import Dataset
from filelock import FileLock
from transformers.utils import logging

from ..augmenter import GPT3MixAugmenter
from ..backends.base import SamplingConfig
from ..config import AugmenterConfig
from ..data import training_features
from ..labeller import label_from_distribution
from ..labels import calibrate, one_hot
from ..selection import row_seed
from ..spec import TaskSpec
from ..state import json_round_trip, load_rows, save_rows
from .arguments import ExperimentArguments
from .records import finished_record

logger = logging.get_logger(__name__)

UNCALIBRATED_COLUMN = "uncalibrated_soft_labels"
PRIOR_COLUMN = "label_prior"
DEBIASED_COLUMNS = ("order_averaged_soft_labels", "debias_prior")


def level_name(level: float) -> str:
    return f"{level:g}"


def _raw_distributions(generation: Dataset) -> list[list[float]]:
    """The LM's uncalibrated label distribution of each row: `uncalibrated_soft_labels` where the augmenter
    filled it, else `soft_labels` (an augmenter without calibration writes only those)."""
    if UNCALIBRATED_COLUMN in generation.column_names:
        raw = [list(row) for row in generation[UNCALIBRATED_COLUMN]]
        if all(raw):
            return raw
    return [list(row) for row in generation["soft_labels"]]


def is_calibrated(generation: Dataset) -> bool:
    """Whether the rows were made with `calibrate=True`: each has the content-free prior that was divided out."""
    return PRIOR_COLUMN in generation.column_names and all(len(prior) for prior in generation[PRIOR_COLUMN])


def derive_method_rows(generation: Dataset, method: str) -> Dataset:
    """The rows of a GPT3Mix `method` (see the module docstring) from one soft-mode generation.

    Raises a `ValueError` for `gpt3mix-calibrated` when the generation was made without `calibrate=True`.
    """
    names = generation.features["label"].names
    if method == "gpt3mix-calibrated":
        if not is_calibrated(generation):
            raise ValueError(
                "This generation was made without calibrate=True: it has no calibrated soft labels. Make it again "
                "with the calibrated method in the sweep."
            )
        if all(column in generation.column_names for column in DEBIASED_COLUMNS):
            # A debiased generation's soft_labels are the debiased ones: calibrate its raw distributions here.
            calibrated = [calibrate(raw, list(prior))
                          for raw, prior in zip(_raw_distributions(generation), generation[PRIOR_COLUMN], strict=True)]
        else:
            calibrated = [list(row) for row in generation["soft_labels"]]
        rows = [label_from_distribution(row, "soft") for row in calibrated]
    elif method == "gpt3mix-debiased":
        if not all(column in generation.column_names for column in DEBIASED_COLUMNS):
            raise ValueError(
                "This generation was made without label_mode='debiased': it has no order-averaged label "
                "distributions. Make it again with gpt3mix-debiased in the sweep's methods."
            )
        rows = [label_from_distribution(calibrate(list(averaged), list(prior)), "soft") for averaged, prior
                in zip(generation["order_averaged_soft_labels"], generation["debias_prior"], strict=True)]
    elif method in ("gpt3mix-soft", "gpt3mix-hard"):
        mode = "hard" if method == "gpt3mix-hard" else "soft"
        rows = [label_from_distribution(row, mode) for row in _raw_distributions(generation)]
    elif method == "gpt3mix-written":
        rows = [(one_hot(int(label), len(names)), int(label)) for label in generation["written_label"]]
    else:
        raise ValueError(f"{method!r} is not a GPT3Mix method.")
    return Dataset.from_dict(
        {"text": list(generation["text"]), "label": [label for _, label in rows],
         "soft_labels": [soft for soft, _ in rows]},
        features=training_features(names),
    )


def _fingerprint(train: Dataset) -> dict:
    """The real rows an augmentation was made from, for the cache key."""
    return {"train_texts": list(train["text"]), "train_labels": list(train["label"])}


class Augmentations:
    """Makes (or loads) the synthetic rows of each method for a sub-sample; heavy models are loaded once.

    Args:
        args (`ExperimentArguments`): the sweep.
        spec (`TaskSpec`): what the GPT3Mix LM is told about the data.
        sampling (`SamplingConfig`): how the GPT3Mix LM samples.
        settings (`AugmenterConfig`): the GPT3Mix settings (k, ratio, selection, ...); the harness sets the label
            mode, calibration and seed of each generation.
        backend (`Backend`, *optional*): the GPT3Mix LM; default `TransformersBackend.from_pretrained(args.lm)`,
            loaded when a generation is first needed.
    """

    def __init__(self, args: ExperimentArguments, spec: TaskSpec, sampling: SamplingConfig,
                 settings: AugmenterConfig, backend=None):
        self.args, self.spec, self.sampling, self.settings = args, spec, sampling, settings
        self._backend = backend
        self._given_backend = backend is not None
        self._bt = None
        self._bt_error: str | None = None
        self.calibrate = "gpt3mix-calibrated" in args.methods
        self.debiased = "gpt3mix-debiased" in args.methods

    @property
    def whole_ratio(self) -> int:
        """The ratio as EDA and back-translation take it (`check_protocol_settings` made sure it is whole)."""
        return int(self.settings.ratio)

    @property
    def backend(self):
        if self._backend is None:
            from ..backends import TransformersBackend

            self._backend = TransformersBackend.from_pretrained(self.args.lm, batch_size=self.args.lm_batch_size)
        return self._backend

    def folder(self, family: str, split) -> Path:
        return (Path(self.args.output_dir) / "augmentations" / family / f"level={level_name(split.level)}"
                / f"data{split.index}")

    def bt_unavailable(self) -> str | None:
        """Why back-translation cannot run here (the models cannot be loaded), or None."""
        if self._bt is None and self._bt_error is None:
            from .baselines.backtranslation import BackTranslationAugmenter

            try:
                self._bt = BackTranslationAugmenter.from_pretrained(*self.args.bt_models)
            except (OSError, ValueError, ImportError) as error:
                self._bt_error = f"{type(error).__name__}: {error}".splitlines()[0][:500]
                logger.warning(f"Back-translation is unavailable: {self._bt_error}")
        return self._bt_error

    def synthetic(self, method: str, split) -> tuple[Dataset, dict]:
        """The synthetic rows (`text`, `label`, `soft_labels`) of `method` for `split`, and their provenance."""
        if method.startswith("gpt3mix"):
            generation, meta = self.gpt3mix(split)
            return derive_method_rows(generation, method), meta
        if method == "eda":
            return self._eda(split)
        if method == "bt":
            return self._backtranslation(split)
        raise ValueError(f"{method!r} makes no synthetic rows.")

    # -- GPT3Mix ------------------------------------------------------------------------------------------

    def gpt3mix_key(self, split) -> dict:
        """Everything that decides a sub-sample's generation; the default backend is named as given (its
        identity is only known once the model is loaded)."""
        return {
            "lm": self._backend.identity if self._given_backend else self.args.lm,
            "spec": self.spec.to_dict(), "augmenter": self.generation_settings(split).to_dict(),
            "sampling": self.sampling.to_dict(), **_fingerprint(split.train),
        }

    def generation_settings(self, split) -> AugmenterConfig:
        """The settings of `split`'s one generation, from which every GPT3Mix method's labels are derived."""
        return replace(
            self.settings, label_mode="debiased" if self.debiased else "soft", calibrate=self.calibrate,
            seed=row_seed(split.seed, 2) % 2**31,
        )

    def _load(self, folder: Path, key: dict) -> tuple[Dataset, dict] | None:
        loaded = load_rows(folder)
        if loaded is None:
            return None
        if loaded[1].get("config") != json_round_trip(key):
            logger.info(f"The augmentation cache in {folder} was made with other settings; making it again.")
            return None
        return loaded

    def _check_not_trained_on(self, folder: Path, split) -> None:
        """Refuse to make `split`'s generation again over rows that finished GPT3Mix runs were trained on: the
        methods' pairing ("the same texts") and the exported rows would no longer hold. The folder's settings
        check cannot see what decides the generation here: the label modes `--methods` asks for, and a backend
        passed in."""
        made = load_rows(folder)
        if made is None:
            return
        pattern = f"gpt3mix-*/level={level_name(split.level)}/data{split.index}-rep*.json"
        trained = sorted(path for path in (Path(self.args.output_dir) / "runs").glob(pattern)
                         if finished_record(path, warn=False) is not None)
        if trained:
            settings = made[1].get("config", {}).get("augmenter", {})
            raise ValueError(
                f"The GPT3Mix rows in {folder} were made with label_mode={settings.get('label_mode')!r}, "
                f"calibrate={settings.get('calibrate')!r} (or another backend), and {len(trained)} finished runs "
                f"were trained on them ({trained[0].relative_to(self.args.output_dir)}, ...). Making them again "
                "would pair those runs with other texts. Resume with the --methods the folder was made with (its "
                "experiment.json lists them), or give another --output_dir."
            )

    def cached(self, split) -> bool:
        """Whether the GPT3Mix generation for `split` is already made."""
        return self._load(self.folder("gpt3mix", split), self.gpt3mix_key(split)) is not None

    def gpt3mix(self, split) -> tuple[Dataset, dict]:
        folder, key = self.folder("gpt3mix", split), self.gpt3mix_key(split)
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Another sweep process may be making these rows: wait for it, then read what it wrote.
        with FileLock(str(folder) + ".lock"):
            cached = self._load(folder, key)
            if cached is not None:
                return cached
            self._check_not_trained_on(folder, split)
            augmenter = GPT3MixAugmenter(self.backend, split.train, self.spec, config=self.generation_settings(split),
                                         sampling=self.sampling)
            # Shards of 64 real rows (a full set of decoding slots, twice) are saved as they finish: an interrupted
            # generation resumes from them. Once the rows are saved they are deleted, so that a generation made
            # again with other settings does not find them.
            shards = folder.with_name(folder.name + ".shards")
            # 64 real rows a map batch, fixed: bf16 rows depend on it, and the cache key does not hold it.
            synthetic = augmenter.augment(batch_size=64, load_from_cache_file=False, checkpoint_dir=shards,
                                          shard_size=64)
            report = augmenter.report
            meta = {"config": key, "augmenter": augmenter.provenance(), "report": report.to_dict(),
                    "seconds": report.seconds}
            logger.info(
                f"GPT3Mix level {split.level:g} data {split.index}: {len(synthetic)} rows in {report.seconds:.0f} s "
                f"({report.samples_per_second:.2f} rows/s)."
            )
            save_rows(folder, synthetic, json_round_trip(meta))
            shutil.rmtree(shards, ignore_errors=True)
        return synthetic, json_round_trip(meta)

    # -- baselines ----------------------------------------------------------------------------------------

    def _baseline(self, family: str, split, key: dict, make, provenance=dict) -> tuple[Dataset, dict]:
        """Load or `make()` the rows of `family`; `provenance()` adds to the metadata of rows it makes."""
        folder = self.folder(family, split)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            cached = self._load(folder, key)
            if cached is not None:
                return cached
            start = time.perf_counter()
            synthetic = make()
            meta = json_round_trip({"config": key, "seconds": time.perf_counter() - start, **provenance()})
            save_rows(folder, synthetic, meta)
        return synthetic, meta

    def _eda(self, split) -> tuple[Dataset, dict]:
        from .baselines.eda import EDAAugmenter

        augmenter = EDAAugmenter(num_aug=self.whole_ratio, seed=row_seed(split.seed, 3) % 2**31)
        # The WordNet version is provenance, not part of the key: rows made where WordNet is installed are
        # trained on where it is not (nltk is only needed to make them).
        key = {**augmenter.settings(), **_fingerprint(split.train)}
        return self._baseline("eda", split, key, lambda: augmenter.augment(split.train),
                              provenance=lambda: {"wordnet": augmenter.config()["wordnet"]})

    def _backtranslation(self, split) -> tuple[Dataset, dict]:
        if self.bt_unavailable():
            raise RuntimeError(f"Back-translation is unavailable: {self._bt_error}")
        seed = row_seed(split.seed, 4) % 2**31
        key = {**self._bt.config(), "num_aug": self.whole_ratio, "seed": seed, **_fingerprint(split.train)}
        return self._baseline(
            "bt", split, key, lambda: self._bt.augment(split.train, num_aug=self.whole_ratio, seed=seed)
        )
