"""The quality measurements of synthetic rows, as `evaluate` modules shipped inside the package.

Each folder here is an `evaluate` measurement (`<name>/<name>.py`), loaded from its local path so that it works
offline: `evaluate.load(measurement_path("distinct_n"))`, or `load_measurement("distinct_n")`. Their inputs have
distinct names (`labels`, `texts`, `soft_labels`, ...) and their `_compute` takes the others' keyword arguments,
so `evaluate.combine` runs several on one call. `gpt3mix_hf.quality.quality_report` computes them all for the
rows of an augmentation.

Example:

>>> import evaluate
>>> from gpt3mix_hf.measurements import measurement_path
>>> text_quality = evaluate.combine([measurement_path("distinct_n"), measurement_path("text_length")])
>>> text_quality.compute(texts=["a fine film", "a dull film"], real_texts=["good"])
{'distinct_1': 0.6666666666666666, 'distinct_2': 1.0, 'distinct_3': 1.0, 'mean_words': 3.0, 'real_mean_words': 1.0,
 'length_ratio': 3.0}
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

MEASUREMENTS_DIR = Path(__file__).parent
MEASUREMENTS = (
    "label_balance",
    "label_agreement",
    "label_confidence",
    "parse_failures",
    "distinct_n",
    "text_copies",
    "recency",
    "text_length",
)


def measurement_path(name: str) -> str:
    """The local path of a measurement module, for `evaluate.load` / `evaluate.combine`."""
    if name not in MEASUREMENTS:
        raise ValueError(f"No gpt3mix_hf measurement {name!r}: choose one of {MEASUREMENTS}.")
    return str(MEASUREMENTS_DIR / name)


@cache
def load_measurement(name: str):
    """`evaluate.load` of a measurement module from its local path, kept in memory (no cache files)."""
    import evaluate

    return evaluate.load(measurement_path(name), module_type="measurement", keep_in_memory=True)


__all__ = ["MEASUREMENTS", "MEASUREMENTS_DIR", "load_measurement", "measurement_path"]
