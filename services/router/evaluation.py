"""Routing accuracy against expected answers: the report of `disposisi route --expect`."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

NO_ANSWER = "-"  # how a missing category (or expectation) shows in the report


@dataclass
class Tally:
    """Expected against given answers, for accuracy and a per-label table."""

    fallback: str
    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (id, expected, given)
    triaged: int = 0

    def add(self, row_id: object, expected: str | None, given: str | None, *, agency: str) -> None:
        self.pairs.append((str(row_id), expected or NO_ANSWER, given or NO_ANSWER))
        self.triaged += agency == self.fallback

    @property
    def accuracy(self) -> float:
        return sum(e == g for _, e, g in self.pairs) / len(self.pairs) if self.pairs else 0.0

    @property
    def triage_rate(self) -> float:
        return self.triaged / len(self.pairs) if self.pairs else 0.0

    def per_label(self) -> dict[str, tuple[float, float, int]]:
        """label -> (precision, recall, support); a label never right scores 0, not undefined."""
        expected = Counter(e for _, e, _ in self.pairs)
        given = Counter(g for _, _, g in self.pairs)
        right = Counter(e for _, e, g in self.pairs if e == g)
        return {label: (right[label] / given[label] if given[label] else 0.0,
                        right[label] / expected[label] if expected[label] else 0.0, expected[label])
                for label in sorted({*expected, *given})}

    def misses(self) -> list[tuple[str, str, str]]:
        return [pair for pair in self.pairs if pair[1] != pair[2]]

    def report(self, *, show_misses: bool) -> str:
        lines = [f"lines: {len(self.pairs)}  accuracy: {self.accuracy:.3f}  "
                 f"triage rate: {self.triage_rate:.3f} ({self.triaged} to {self.fallback})",
                 f"{'label':<14} {'precision':>9} {'recall':>7} {'support':>8}"]
        lines += [f"{label:<14} {p:>9.2f} {r:>7.2f} {n:>8}" for label, (p, r, n) in self.per_label().items()]
        if show_misses:
            lines.append("misses (id: expected -> given):")
            lines += [f"  {row_id}: {e} -> {g}" for row_id, e, g in self.misses()]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": len(self.pairs), "accuracy": round(self.accuracy, 4),
            "triage_rate": round(self.triage_rate, 4),
            "labels": {label: {"precision": round(p, 4), "recall": round(r, 4), "support": n}
                       for label, (p, r, n) in self.per_label().items()},
            "misses": [{"id": i, "expected": e, "given": g} for i, e, g in self.misses()],
        }
