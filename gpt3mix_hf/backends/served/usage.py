"""`UsageReport`: what a served backend has cost so far, and how its soft labels were scored."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class UsageReport:
    """What a served backend has cost so far: every request sent (probes included), every answer read from the
    cache, and how the soft labels were scored (exactly, or from the top-k alternatives).

    Example:

    >>> synthetic = augmenter.augment()
    >>> print(backend.usage.summary())
    412 requests sent (3 failed tries, 3 retries), 0 answered from the cache, 81234 prompt + 9120 completion ...
    """

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    retries: int = 0
    seconds: float = 0.0
    rows_scored_exactly: int = 0
    rows_scored_top_k: int = 0
    top_k_label_mass_sum: float = 0.0
    rows_missing_labels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def record_top_k(self, mass: float, missing: int):
        """One row scored from the top-k alternatives: `mass` covered by the labels, `missing` labels not seen."""
        self.rows_scored_top_k += 1
        self.top_k_label_mass_sum += mass
        self.rows_missing_labels += int(missing > 0)

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests sent ({self.failures} failed tries, {self.retries} retries), "
            f"{self.cache_hits} answered from the cache, {self.prompt_tokens} prompt + {self.completion_tokens} "
            f"completion tokens, {self.seconds:.1f} s."
        ]
        if self.rows_scored_top_k:
            mean_mass = self.top_k_label_mass_sum / self.rows_scored_top_k
            lines.append(
                f"Soft labels of {self.rows_scored_top_k} rows are approximate: the server cannot score prompt "
                f"tokens, so they come from the top-k alternatives at the label position (mean label mass "
                f"covered {mean_mass:.3f}; {self.rows_missing_labels} rows had a label outside the top k, "
                "given its largest possible probability). See the label_mass column."
            )
        return "\n".join(lines)
