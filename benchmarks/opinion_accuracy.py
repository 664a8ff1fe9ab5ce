"""How often the statistical second opinion alone names the right agency:

    python -m benchmarks.opinion_accuracy [--training FILE ...] [SET ...]

The model is trained as the router trains it (the settings' `second_opinion_training`, the
packaged Kota Bengkulu corpus by default; the desk's examples are left out) and asked for its
first choice on every line of each labelled set (default: tests/data/routing-*.jsonl). A set
that is also a training file is refused: a model is not measured on what it learnt. Lines
labelled TRIAGE are counted apart, since the model never answers TRIAGE (it is where the rules'
doubt goes, not a label).
"""

import argparse
import time
from pathlib import Path

from services.router.labels import for_training, read_labelled
from services.router.opinion_training import pairs
from services.router.second_opinion import complaint_text, train
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--training", type=Path, action="append", default=None)
    args = parser.parse_args()
    training: list[Path] = args.training or Settings().second_opinion_training
    sets: list[Path] = args.sets or sorted((ROOT / "tests" / "data").glob("routing-*.jsonl"))
    learnt = {path.resolve() for path in training}
    started = time.perf_counter()
    model = train(pairs([e for path in training for e in for_training(path)]))
    assert model is not None
    print(f"model {model.version}: {model.examples} examples from "
          f"{', '.join(p.name for p in training)}, trained in {time.perf_counter() - started:.1f} s")
    print(f"{'set':28} {'lines':>5} {'accuracy':>8} {'no TRIAGE':>9} {'quick':>6}")
    for path in sets:
        if path.resolve() in learnt:
            print(f"{path.name:28} refused: it is a training file")
            continue
        examples = read_labelled(path)
        texts = [complaint_text(e.text, e.title) for e in examples]
        full = [o.first[0] for o in model.opinions(texts)]
        quick = [o.first[0] for o in model.opinions(texts, quick=True)]
        right = [e.agency == f for e, f in zip(examples, full, strict=True)]
        decidable = [r for e, r in zip(examples, right, strict=True) if e.agency != "TRIAGE"]
        quick_right = sum(e.agency == q for e, q in zip(examples, quick, strict=True))
        print(f"{path.name:28} {len(examples):5} {sum(right) / len(examples):8.3f} "
              f"{sum(decidable) / max(len(decidable), 1):9.3f} {quick_right / len(examples):6.3f}")


if __name__ == "__main__":
    main()
