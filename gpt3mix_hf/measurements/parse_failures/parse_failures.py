"""Share of an LM's generations that could not be read as a row (an `evaluate` measurement)."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """The parse-failure rate of a GPT3Mix run: generations that did not parse (no text, no label
word, ...) over all generations. Each kept row counts its failed attempts plus the one that parsed; rows dropped
after every attempt failed are passed as `dropped_failures` (their failed generations)."""

_KWARGS_DESCRIPTION = """
Args:
    failed_attempts (`list[int]`): failed generations before each kept row's accepted one.
    dropped_failures (`int`, *optional*, defaults to 0): failed generations of rows that were dropped.
Returns:
    parse_failures (`int`): generations that did not parse.
    parse_failure_rate (`float`): of all generations (0.0 when there were none).
Examples:
    >>> failures = evaluate.load("gpt3mix_hf/measurements/parse_failures")
    >>> failures.compute(failed_attempts=[0, 2, 0], dropped_failures=4)
    {'parse_failures': 6, 'parse_failure_rate': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ParseFailures(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"failed_attempts": datasets.Value("int64")}),
        )

    def _compute(self, failed_attempts, dropped_failures=0, **kwargs):
        failures = int(np.sum(failed_attempts, dtype=np.int64)) + int(dropped_failures)
        generations = len(failed_attempts) + failures
        return {"parse_failures": failures, "parse_failure_rate": failures / generations if generations else 0.0}
