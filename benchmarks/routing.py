"""Routing throughput on one core: the engine against a naive baseline, in the same run.

    python -m benchmarks.routing --n 100000

Complaints are generated from the labelled sets in tests/data (smoke, and dev when present):
each one a seed text with words dropped, filler added, numbers changed and typos made, so the
caches see new words the way real traffic brings them. The baseline normalises the same way
but tries every phrase of every rule one by one (substring search), as the first router did.
"""

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from services.router.domain import route
from services.router.rulebook import Rule, Rulebook, load_rulebook
from services.router.text import normalise

ROOT = Path(__file__).resolve().parents[1]
RULEBOOK = ROOT / "services" / "router" / "rulebooks" / "kota-bengkulu.yaml"
SEEDS = [ROOT / "tests" / "data" / "routing-smoke.jsonl", ROOT / "tests" / "data" / "routing-dev.jsonl"]
FILLER = ["mohon segera ditindaklanjuti", "pak", "bu", "terima kasih", "sudah lama sekali",
          "tolong dong", "di RT {n} RW {m}", "sejak {n} hari yang lalu", "warga sangat resah",
          "kami sudah lapor ke kelurahan tapi belum ada respon", "gimana ini pemkot",
          "dekat masjid", "depan rumah no {n}", "sudah {n} bulan", "mohon perhatiannya"]


def seeds() -> list[tuple[str, str | None]]:
    rows = []
    for path in SEEDS:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    rows.append((row["text"], row.get("title")))
    return rows


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1:]
    if kind < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + rng.choice("aiueonrstkgml") + word[i + 1:]


def complaints(n: int, seed: int = 2026) -> Iterator[tuple[str, str | None]]:
    rng = random.Random(seed)
    base = seeds()
    for _ in range(n):
        text, title = rng.choice(base)
        words = [w for w in text.split() if rng.random() > 0.08]
        words = [typo(w, rng) if rng.random() < 0.05 else w for w in words]
        for _ in range(rng.randrange(0, 3)):
            filler = rng.choice(FILLER).format(n=rng.randrange(1, 40), m=rng.randrange(1, 12))
            words.insert(rng.randrange(0, len(words) + 1), filler)
        if rng.random() < 0.1:
            words = [w.upper() for w in words]
        yield " ".join(words), title if rng.random() < 0.6 else None


class NaiveRouter:
    """Every phrase of every rule tried one by one on the normalised text."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rules: list[tuple[str, Rule, list[str], list[list[str]], list[str]]] = [
            (agency.code, rule, [normalise(p) for p in rule.any],
             [[normalise(p) for p in g] for g in rule.groups()], [normalise(p) for p in rule.none])
            for agency in rulebook.agencies for rule in agency.rules]

    def route(self, text: str, title: str | None) -> str:
        body = normalise(f"{title or ''} {text}")
        scores: dict[str, float] = {}
        for code, rule, any_, groups, none in self.rules:
            if any(p in body for p in none):
                continue
            if not all(any(p in body for p in group) for group in groups):
                continue
            hits = [p for p in any_ if p in body]
            if any_ and not hits:
                continue
            scores[code] = scores.get(code, 0.0) + rule.weight * len(hits)
        return max(scores, key=lambda c: scores[c]) if scores else "TRIAGE"


def measure(name: str, decide: Callable[[str, str | None], object],
            inputs: list[tuple[str, str | None]]) -> None:
    latencies = []
    started = time.perf_counter()
    for text, title in inputs:
        begin = time.perf_counter_ns()
        decide(text, title)
        latencies.append(time.perf_counter_ns() - begin)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{name:9} {len(inputs):7d} decisions in {elapsed:6.2f} s: "
          f"{len(inputs) / elapsed:8.0f} decisions/s, p50 {cuts[49] / 1000:7.1f} us, "
          f"p99 {cuts[98] / 1000:7.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="complaints for the engine")
    parser.add_argument("--baseline-n", type=int, default=None,
                        help="complaints for the naive baseline (default: same as --n)")
    args = parser.parse_args()
    started = time.perf_counter()
    rulebook = load_rulebook(RULEBOOK)
    route(rulebook, "kompilasi")  # compile once, as the service does at start-up
    phrases = sum(len(r.phrases()) for a in rulebook.agencies for r in a.rules)
    rules = sum(len(a.rules) for a in rulebook.agencies)
    print(f"rulebook {rulebook.version}: {len(rulebook.agencies)} agencies, {rules} rules, "
          f"{phrases} phrases; loaded and compiled in {time.perf_counter() - started:.2f} s")
    inputs = list(complaints(args.n))
    measure("engine", lambda text, title: route(rulebook, text, title), inputs)
    naive = NaiveRouter(rulebook)
    measure("baseline", naive.route, inputs[:args.baseline_n or args.n])


if __name__ == "__main__":
    main()
