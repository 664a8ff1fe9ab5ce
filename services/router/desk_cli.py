"""`disposisi rules suggest | apply-suggestion | train-model`: learning from the desk's
corrections, from a terminal. Suggestions are a file for a person to review; only
`apply-suggestion` (or a hand edit) changes the rulebook, which the router then hot-reloads."""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pymongo.errors import PyMongoError

from services.router.label_store import LabelStore
from services.router.labels import Example, LabelledSetError, desk_examples, for_training, read_labelled
from services.router.rulebook import Rulebook, load_rulebook
from services.router.rulebook_patch import SuggestionError, apply_suggestions
from services.router.suggest import as_patch, combined, effect_dict
from services.router.suggest_conditions import suggest_all
from shared import mongo
from shared.settings import Settings, redact_url

COMMANDS = ("suggest", "apply-suggestion", "train-model")
DEFAULT_SETS = "tests/data/routing-*.jsonl"  # the project's labelled sets, from a checkout
# A blind set is only measured: a suggestion kept or dropped by its effect on a blind set would
# tune the rulebook on that set, so the default leaves blind sets out (--labelled can name one).
BLIND_SET = "routing-blind*.jsonl"

HEADER = """\
# Rulebook changes suggested by `disposisi rules suggest` from the complaint desk's corrections.
# Nothing changes until a person applies them: `disposisi rules apply-suggestion THIS-FILE`
# (an entry set to `apply: false` is left out; entries that would lower the accuracy or raise
# the TRIAGE rate of any labelled set start at false), or edits the rulebook by hand.
"""


def add_commands(rules: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    proposal = rules.add_parser("suggest", help="propose rulebook changes from the desk's "
                                                "labelled examples (a YAML patch to review)")
    proposal.add_argument("--rulebook", type=Path, help="rulebook YAML (default: the settings')")
    proposal.add_argument("--since", type=_instant, help="only examples corrected since (ISO date)")
    proposal.add_argument("--min-support", type=int, default=3, metavar="N",
                          help="examples a change needs behind it (default 3)")
    proposal.add_argument("--output", type=Path, help="write the patch here (default: stdout)")
    proposal.add_argument("--labelled", type=Path, action="append", default=None, metavar="FILE",
                          help=f"labelled JSON-lines set to measure on; repeatable "
                               f"(default: {DEFAULT_SETS} except {BLIND_SET})")
    proposal.add_argument("--desk-file", type=Path, metavar="FILE",
                          help="desk examples from a JSON-lines file instead of the store")
    apply = rules.add_parser("apply-suggestion",
                             help="apply a reviewed suggestion file to the rulebook file")
    apply.add_argument("file", type=Path)
    apply.add_argument("--rulebook", type=Path, help="rulebook YAML (default: the settings')")
    model = rules.add_parser("train-model", help="train the second opinion into a model file "
                                                 "(DISPOSISI_SECOND_OPINION_MODEL)")
    model.add_argument("--output", type=Path, required=True)
    model.add_argument("--labelled", type=Path, action="append", default=None, metavar="FILE",
                       help="training set; repeatable (default: the settings' "
                            "second_opinion_training, the packaged training corpus); "
                            "holdout and blind sets are refused")
    model.add_argument("--no-desk", action="store_true", help="leave out the desk's examples")
    model.add_argument("--rulebook", type=Path, help="rulebook YAML (default: the settings')")


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    path = args.rulebook or settings.rulebook
    try:
        if args.rules_command == "apply-suggestion":
            return _apply(path, args.file)
        book = load_rulebook(path)
        if args.rules_command == "train-model":
            return _train(settings, book, args)
        return _suggest(settings, book, path, args)
    except (SuggestionError, LabelledSetError, OSError) as error:
        print(f"disposisi rules {args.rules_command}: {error}", file=sys.stderr)
        return 2
    except PyMongoError as error:
        print(f"disposisi rules {args.rules_command}: cannot read the desk's examples from the "
              f"store ({redact_url(settings.mongodb_url)}): {type(error).__name__}", file=sys.stderr)
        return 2


def _suggest(settings: Settings, book: Rulebook, path: Path, args: argparse.Namespace) -> int:
    desk = (read_labelled(args.desk_file) if args.desk_file
            else asyncio.run(_stored(settings, since=args.since)))
    files = args.labelled if args.labelled is not None else default_sets(Path())
    sets = {file.name: read_labelled(file) for file in files}
    found = suggest_all(book, desk, sets, min_support=args.min_support)
    measured = {"desk": desk, **sets}
    patch: dict[str, Any] = {
        "tenant": book.tenant, "rulebook": str(path), "rulebook_version": book.version,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "desk_examples": len(desk), "min_support": args.min_support,
        "suggestions": [as_patch(s, n) for n, s in enumerate(found, start=1)],
        "combined_effect": effect_dict(combined(book, [s for s in found if s.harmless], measured)),
    }
    text = HEADER + yaml.safe_dump(patch, allow_unicode=True, sort_keys=False, width=100)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"{len(found)} suggestion(s) from {len(desk)} desk example(s) written to {args.output}",
              file=sys.stderr)
    else:
        print(text)
    return 0


def default_sets(checkout: Path) -> list[Path]:
    """The checkout's labelled sets a suggestion is measured on: every one but the blind ones."""
    return sorted(p for p in checkout.glob(DEFAULT_SETS) if not p.match(BLIND_SET))


def _apply(path: Path, file: Path) -> int:
    done = apply_suggestions(path, file)
    print(f"applied {', '.join(done.applied) or 'nothing'}"
          + (f"; already in the rulebook: {', '.join(done.unchanged)}" if done.unchanged else "")
          + (f"; left out (apply: false): {', '.join(done.skipped)}" if done.skipped else "")
          + f"; {path} is now version {done.version} (the router reloads it by itself)")
    return 0


def _train(settings: Settings, book: Rulebook, args: argparse.Namespace) -> int:
    # scikit-learn loads in about a second: only the command that needs it pays for it.
    from services.router.opinion_training import pairs
    from services.router.second_opinion import train

    files: Sequence[Path] = (args.labelled if args.labelled is not None
                             else settings.second_opinion_training)
    examples = [e for file in files for e in for_training(file)]
    if not args.no_desk:
        examples += asyncio.run(_stored(settings, since=None))
    model = train(pairs(examples), fallback=book.fallback)
    if model is None:
        print("disposisi rules train-model: fewer than two agencies to tell apart", file=sys.stderr)
        return 1
    model.save(args.output)
    print(f"model {model.version}: {model.examples} examples, {len(model.agencies)} agencies, "
          f"written to {args.output}")
    return 0


async def _stored(settings: Settings, *, since: datetime | None) -> list[Example]:
    client = mongo.connect(settings)
    try:
        docs = await LabelStore(mongo.database(client, settings)).examples(settings.tenant, since=since)
    finally:
        await client.close()
    return desk_examples(docs)


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
