"""Routing accuracy against expected answers: the report of `disposisi route --expect`.

Besides accuracy, the triage rate and a per-label table it counts what costs most: answers
routed confidently to the wrong agency (not to the complaint desk, where a person looks again),
the pairs of labels most often confused, and, where the lines carry a priority label, urgent
complaints the router did not make urgent (missed-urgent) apart from ones it made urgent
needlessly (wrong-urgent): a wrong urgent is cheap, a missed one is not."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

NO_ANSWER = "-"  # how a missing category (or expectation) shows in the report
URGENT = "urgent"
CONFUSIONS_SHOWN = 10


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class Tally:
    """Expected against given answers, for accuracy and a per-label table."""

    fallback: str
    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (id, expected, given)
    triaged: int = 0
    confidently_wrong: int = 0
    priorities: list[tuple[str, str]] = field(default_factory=list)  # (expected, given)

    def add(self, row_id: object, expected: str | None, given: str | None, *, agency: str,
            priority: tuple[str, str] | None = None) -> None:
        """One line: its expected and given answer, the agency it went to, and (when the line
        carries a priority label) the expected and given priority."""
        self.pairs.append((str(row_id), expected or NO_ANSWER, given or NO_ANSWER))
        triaged = agency == self.fallback
        self.triaged += triaged
        self.confidently_wrong += (expected or NO_ANSWER) != (given or NO_ANSWER) and not triaged
        if priority is not None:
            self.priorities.append(priority)

    @property
    def accuracy(self) -> float:
        return sum(e == g for _, e, g in self.pairs) / len(self.pairs) if self.pairs else 0.0

    @property
    def triage_rate(self) -> float:
        return self.triaged / len(self.pairs) if self.pairs else 0.0

    @property
    def confidently_wrong_rate(self) -> float:
        """Lines decided (not sent to the complaint desk) and wrong, of all lines."""
        return self.confidently_wrong / len(self.pairs) if self.pairs else 0.0

    def urgent_rates(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """(missed, labelled urgent) and (made urgent needlessly, labelled otherwise); None
        without priority labels."""
        if not self.priorities:
            return None
        urgent = [given for expected, given in self.priorities if expected == URGENT]
        other = [given for expected, given in self.priorities if expected != URGENT]
        return ((sum(g != URGENT for g in urgent), len(urgent)),
                (sum(g == URGENT for g in other), len(other)))

    def confusions(self) -> list[tuple[str, str, int]]:
        """(expected, given, how often), the most frequent first."""
        counted = Counter((e, g) for _, e, g in self.pairs if e != g)
        return [(e, g, n) for (e, g), n in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))]

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
        lines.append(f"confidently wrong: {self.confidently_wrong_rate:.3f} "
                     f"({self.confidently_wrong} decided, not triaged, and wrong)")
        if (rates := self.urgent_rates()) is not None:
            (missed, urgent), (needless, other) = rates
            lines.append(f"missed urgent: {_rate(missed, urgent):.3f} ({missed} of {urgent} "
                         f"labelled urgent)  wrong urgent: {_rate(needless, other):.3f} "
                         f"({needless} of {other} labelled otherwise)")
        confusions = self.confusions()
        if confusions:
            lines.append("confused (expected -> given: lines):")
            lines += [f"  {e} -> {g}: {n}" for e, g, n in confusions[:CONFUSIONS_SHOWN]]
        if show_misses:
            lines.append("misses (id: expected -> given):")
            lines += [f"  {row_id}: {e} -> {g}" for row_id, e, g in self.misses()]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        rates = self.urgent_rates()
        urgent: dict[str, Any] = {}
        if rates is not None:
            (missed, labelled), (needless, other) = rates
            urgent = {"missed_urgent_rate": round(_rate(missed, labelled), 4),
                      "missed_urgent": missed, "labelled_urgent": labelled,
                      "wrong_urgent_rate": round(_rate(needless, other), 4),
                      "wrong_urgent": needless, "labelled_not_urgent": other}
        return {
            "lines": len(self.pairs), "accuracy": round(self.accuracy, 4),
            "triage_rate": round(self.triage_rate, 4),
            "confidently_wrong_rate": round(self.confidently_wrong_rate, 4),
            "confidently_wrong": self.confidently_wrong, **urgent,
            "confusions": [{"expected": e, "given": g, "lines": n} for e, g, n in self.confusions()],
            "labels": {label: {"precision": round(p, 4), "recall": round(r, 4), "support": n}
                       for label, (p, r, n) in self.per_label().items()},
            "misses": [{"id": i, "expected": e, "given": g} for i, e, g in self.misses()],
        }
