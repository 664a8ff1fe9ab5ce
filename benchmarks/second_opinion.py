"""What the statistical second opinion costs the router, in the same run:

    python -m benchmarks.second_opinion --n 5000

The rules alone against rules plus second opinion, in consumer-sized batches (the router asks
the model once per batch). The model is trained as the router trains it, on the settings'
`second_opinion_training` (the packaged Kota Bengkulu corpus by default); the complaints
are benchmarks.routing's (seed texts with words dropped, filler, typos). Shown for the default
gate (settle TRIAGE, check every confident decision) and for one that only settles TRIAGE.
"""

import argparse
import collections
import time
from collections.abc import Sequence

from benchmarks.routing import RULEBOOK, complaints
from services.router.domain import Decision, route
from services.router.labels import for_training
from services.router.opinion_training import pairs
from services.router.rulebook import Rulebook, load_rulebook
from services.router.second_opinion import Gate, Reviewer, complaint_text, train
from shared.settings import Settings


def measure(book: Rulebook, reviewer: Reviewer, inputs: Sequence[tuple[str, str | None]],
            batch: int) -> tuple[float, float, list[Decision], list[Decision]]:
    """Seconds spent routing and seconds spent asking the model, batch by batch in the same
    loop (so a machine busy with other work slows both alike), and the decisions before and
    after the second opinion."""
    routing = asking = 0.0
    plain: list[Decision] = []
    reviewed: list[Decision] = []
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        began = time.perf_counter()
        decided = [(route(book, text, title), complaint_text(text, title)) for text, title in chunk]
        routed = time.perf_counter()
        reviewed += reviewer.review(book, decided)
        asking += time.perf_counter() - routed
        routing += routed - began
        plain += [d for d, _ in decided]
    return routing, asking, plain, reviewed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50, help="complaints per consumer batch")
    args = parser.parse_args()
    book = load_rulebook(RULEBOOK)
    route(book, "kompilasi")
    started = time.perf_counter()
    settings = Settings()
    training = [e for path in settings.second_opinion_training for e in for_training(path)]
    model = train(pairs(training), fallback=book.fallback)
    assert model is not None
    print(f"model {model.version}: {model.examples} examples, trained in "
          f"{time.perf_counter() - started:.1f} s")
    inputs = list(complaints(args.n))
    default = Gate(agree=settings.second_opinion_agree_probability,
                   dispute=settings.second_opinion_dispute_probability,
                   confident=settings.second_opinion_confident,
                   certain=settings.second_opinion_certain)
    settle_only = Gate(agree=default.agree, dispute=default.dispute, confident=default.confident,
                       certain=default.confident)
    for name, gate in (("default gate", default), ("TRIAGE only", settle_only)):
        routing, asking, plain, reviewed = measure(book, Reviewer(gate, model), inputs, args.batch)
        asked = sum(gate.question(d, book.fallback) is not None for d in plain)
        verdicts = collections.Counter(d.explanation.second_opinion.verdict for d in reviewed
                                       if d.explanation.second_opinion)
        print(f"{name:26} routing {routing:6.2f} s ({len(plain) / routing:5.0f}/s), second opinion "
              f"{asking:5.2f} s: {100 * asking / routing:+5.1f}%; asked for {asked} "
              f"({100 * asked / len(plain):.1f}%): "
              + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))

if __name__ == "__main__":
    main()
