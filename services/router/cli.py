"""`disposisi route` and `disposisi rules check`: the router's decisions and rulebook from a terminal.

Only the router's public API is used: ``load_rulebook``, the ``Rulebook`` model and
``domain.route``; so the command explains exactly what the service would decide.
"""

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.router import desk_cli
from services.router.domain import Decision, route
from services.router.evaluation import Tally
from services.router.lint import lint
from services.router.rulebook import Rulebook, load_rulebook
from shared.contracts import Channel, Location, describe_errors
from shared.settings import Settings

if TYPE_CHECKING:
    from services.router.second_opinion import Reviewer

EXPECTABLE = ("agency", "priority", "category")

_ROUTE_EPILOG = """\
Batch mode: --jsonl FILE (or - for stdin) reads one JSON object per line with "id", "text" and
optional "title", "location", "channel"; it writes one JSON object per line to stdout with "id",
"agency", "priority", "category", "confidence", "candidates" and "explanation". A bad line is
reported on stderr with its line number and the run goes on; the exit status is then 1.

With --expect FIELD (agency, priority or category) every input line must also carry FIELD, the
expected answer, and a report follows: accuracy, triage rate, a per-label precision / recall /
support table, the confidently-wrong rate (decided, not triaged, and wrong), the pairs of labels
most often confused and, when lines carry a "priority" label, the missed-urgent rate (labelled
urgent, not made urgent) and the wrong-urgent rate (made urgent, labelled otherwise). The
report goes to stderr, so stdout stays pure JSON lines; with --report-only the JSON lines are
not written and the report goes to stdout (as JSON with --json).

With --second-opinion the statistical second opinion weighs in as the router would have it
(settings second_opinion_*): a model is trained first on the settings' `second_opinion_training`
files (the packaged training corpus by default; --training FILE instead, repeatable), never on
the file being routed, and the report adds how often it settled a TRIAGE or disputed a decision.
"""


# ------------------------------------------------------------------ the parser

def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `route` and `rules` on the `disposisi` command."""
    route_cmd = commands.add_parser(
        "route", help="route a complaint (or a JSON-lines file) and explain the decision",
        epilog=_ROUTE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    route_cmd.add_argument("text", nargs="?", help="the complaint text")
    route_cmd.add_argument("--title", help="the complaint's title")
    route_cmd.add_argument("--rulebook", type=Path, help="rulebook YAML (default: the settings')")
    route_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")
    route_cmd.add_argument("--jsonl", metavar="FILE", help="route every line of FILE ('-' = stdin)")
    route_cmd.add_argument("--expect", choices=EXPECTABLE, help="compare with this field of each line")
    route_cmd.add_argument("--report-only", action="store_true",
                           help="with --expect: print only the report, to stdout")
    route_cmd.add_argument("--misses", action="store_true",
                           help="with --expect: list every line whose answer differs")
    route_cmd.add_argument("--exclude", action="append", default=[], metavar="CODE",
                           help="agency that must not be chosen (a re-route); repeatable")
    route_cmd.add_argument("--second-opinion", action="store_true",
                           help="let the second opinion weigh in, trained on the training files")
    route_cmd.add_argument("--training", type=Path, action="append", default=None, metavar="FILE",
                           help="with --second-opinion: labelled set to train on instead of the "
                                "settings' second_opinion_training; repeatable")
    rules_cmd = commands.add_parser("rules", help="inspect a rulebook")
    rules_sub = rules_cmd.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser(
        "check", help="lint a rulebook; exit 0 without errors, 1 with errors, 2 if it cannot load")
    check.add_argument("--rulebook", type=Path, help="rulebook YAML (default: the settings')")
    desk_cli.add_commands(rules_sub)


def run(args: argparse.Namespace) -> int:
    """Run `route` or `rules check`; a RulebookError propagates to the caller (exit 2)."""
    if args.command == "rules" and args.rules_command in desk_cli.COMMANDS:
        return desk_cli.run(args)
    rulebook = load_rulebook(args.rulebook or Settings().rulebook)
    if args.command == "rules":
        return _check(rulebook)
    if problem := _misused(args):
        print(f"disposisi route: {problem}", file=sys.stderr)
        return 2
    reviewer = None
    if args.second_opinion:
        reviewer = _reviewer(rulebook, args)
        if reviewer is None:
            return 2
    if args.jsonl is not None:
        return _route_lines(rulebook, args, reviewer)
    request = RouteRequest(text=args.text, title=args.title)
    decision = _reviewed(reviewer, rulebook, request,
                         decide(rulebook, request, exclude=frozenset(args.exclude)))
    print(json.dumps(decision_json(rulebook, decision), ensure_ascii=False, indent=2) if args.json
          else render(rulebook, decision))
    return 0


def _misused(args: argparse.Namespace) -> str | None:
    if (args.text is None) == (args.jsonl is None):
        return "give the complaint TEXT or --jsonl FILE (one of them)"
    if args.jsonl is None and (args.expect or args.report_only or args.misses):
        return "--expect, --report-only and --misses need --jsonl"
    if (args.report_only or args.misses) and not args.expect:
        return "--report-only and --misses need --expect FIELD"
    if args.training is not None and not args.second_opinion:
        return "--training needs --second-opinion"
    return None


# ------------------------------------------------------------------ the second opinion

def _reviewer(rulebook: Rulebook, args: argparse.Namespace) -> "Reviewer | None":
    """The second opinion trained on the training files; None (said on stderr) when it cannot
    be: a file that cannot be read, the routed file among them, or fewer than two agencies."""
    # scikit-learn loads in about a second: only a run that asks for the model pays for it.
    from services.router.labels import LabelledSetError, for_training
    from services.router.opinion_training import pairs
    from services.router.second_opinion import Gate, Reviewer, train

    settings = Settings()
    files: list[Path] = args.training if args.training is not None else settings.second_opinion_training
    routed = None if args.jsonl in (None, "-") else Path(args.jsonl).resolve()
    if routed is not None and any(_same_file(file, routed) for file in files):
        print(f"disposisi route: {args.jsonl} is a training file of the second opinion; "
              f"a model is not measured on what it learnt", file=sys.stderr)
        return None
    try:
        model = train(pairs([e for file in files for e in for_training(file)]),
                      fallback=rulebook.fallback)
    except (OSError, LabelledSetError) as error:
        print(f"disposisi route: second opinion: {error}", file=sys.stderr)
        return None
    if model is None:
        print("disposisi route: second opinion: fewer than two agencies to train on", file=sys.stderr)
        return None
    print(f"second opinion {model.version}: trained on {model.examples} examples from "
          f"{', '.join(file.name for file in files)}", file=sys.stderr)
    return Reviewer(Gate(agree=settings.second_opinion_agree_probability,
                         dispute=settings.second_opinion_dispute_probability,
                         confident=settings.second_opinion_confident,
                         certain=settings.second_opinion_certain), model)


def _same_file(training: Path, routed: Path) -> bool:
    """The routed file is this training file, or a copy of it (train7 is packaged as a copy of
    tests/data/routing-train7.jsonl)."""
    if training.resolve() == routed:
        return True
    try:
        return (training.stat().st_size == routed.stat().st_size
                and training.read_bytes() == routed.read_bytes())
    except OSError:
        return False  # a missing training file is reported when it is read


def _reviewed(reviewer: "Reviewer | None", rulebook: Rulebook, request: "RouteRequest",
              decision: Decision) -> Decision:
    if reviewer is None:
        return decision
    from services.router.second_opinion import complaint_text

    return reviewer.review(rulebook, [(decision, complaint_text(request.text, request.title))])[0]


def _verdicts(decisions: Counter[str]) -> str:
    return ("second opinion: " + (", ".join(f"{verdict} {n}" for verdict, n in sorted(decisions.items()))
                                  or "not asked"))


# ------------------------------------------------------------------ one decision

class RouteRequest(BaseModel):
    """One complaint to route; fields other than these (expected answers, notes) are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str | int | None = None
    text: str = Field(min_length=1, max_length=4000)
    title: str | None = None
    location: Location | None = None
    channel: Channel | None = None


def decide(rulebook: Rulebook, request: RouteRequest, *, exclude: frozenset[str] = frozenset()) -> Decision:
    return route(rulebook, request.text, request.title, location=request.location,
                 channel=request.channel, exclude=exclude)


def decision_json(rulebook: Rulebook, decision: Decision) -> dict[str, Any]:
    return {
        "agency": decision.agency.code, "agency_name": decision.agency.name,
        "authority": decision.agency.authority, "priority": decision.priority.value,
        "category": decision.category, "tenant": rulebook.tenant,
        "explanation": decision.explanation.model_dump(mode="json"),
    }


def render(rulebook: Rulebook, decision: Decision) -> str:
    """The decision as a civil servant would read it."""
    why = decision.explanation
    candidates = [f"{c.agency} {c.score:g}" + (f" ({', '.join(c.rule_ids)})" if c.rule_ids else "")
                  for c in why.candidates[:3]]
    lines = [
        ("Agency", f"{decision.agency.code} - {decision.agency.name}"),
        ("Authority", decision.agency.authority),
        ("Priority", decision.priority.value),
        ("Category", decision.category or "-"),
        ("Confidence", f"{why.confidence:.2f} (score {why.score:g})"),
        ("Matched", ", ".join(repr(t) for t in why.matched_terms) or "-"),
        ("Rules", ", ".join(why.rule_ids) or "-"),
        ("Candidates", "; ".join(candidates) or "-"),
        ("Reason", why.reason or "-"),
        ("Rulebook", f"{rulebook.tenant} version {rulebook.version}"),
    ]
    return "\n".join(f"{label + ':':<12} {value}" for label, value in lines)


# ------------------------------------------------------------------ JSON lines

@dataclass
class _Line:
    number: int
    request: RouteRequest | None = None
    expected: str | None = None
    problem: str | None = None
    priority: str | None = None  # the line's priority label, when it has one


def read_lines(stream: Iterable[str], expect: str | None) -> Iterator[_Line]:
    """Parse each non-blank line; a bad one carries its problem instead of a request."""
    for number, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            yield _Line(number, problem=f"not valid JSON: {error.msg} (column {error.colno})")
            continue
        if not isinstance(data, dict):
            yield _Line(number, problem=f"expected a JSON object, got {type(data).__name__}")
            continue
        try:
            request = RouteRequest.model_validate(data)
        except ValidationError as error:
            yield _Line(number, problem=describe_errors(error.errors()))
            continue
        if expect is not None and expect not in data:
            yield _Line(number, problem=f"{expect}: missing (--expect {expect})")
        elif expect is not None and not isinstance(data[expect], str | None):
            yield _Line(number, problem=f"{expect}: expected a string or null to compare with")
        else:
            label = data.get("priority")
            yield _Line(number, request, data.get(expect) if expect else None,
                        priority=label if isinstance(label, str) else None)


def _route_lines(rulebook: Rulebook, args: argparse.Namespace, reviewer: "Reviewer | None") -> int:
    exclude = frozenset(args.exclude)
    verdicts: Counter[str] = Counter()
    tally = Tally(fallback=rulebook.fallback)
    bad = 0
    try:
        stream_context = _open(args.jsonl)
    except OSError as error:
        print(f"disposisi route: cannot read {args.jsonl}: {error.strerror}", file=sys.stderr)
        return 2
    with stream_context as stream:
        for line in read_lines(stream, args.expect):
            if line.request is None:
                bad += 1
                print(f"disposisi route: line {line.number}: {line.problem}", file=sys.stderr)
                continue
            decision = _reviewed(reviewer, rulebook, line.request,
                                 decide(rulebook, line.request, exclude=exclude))
            if decision.explanation.second_opinion is not None:
                verdicts[decision.explanation.second_opinion.verdict] += 1
            if not args.report_only:
                print(json.dumps(_line_json(line.request, decision), ensure_ascii=False))
            if args.expect:
                priority = (None if line.priority is None
                            else (line.priority, decision.priority.value))
                tally.add(line.request.id, line.expected, _answer(decision, args.expect),
                          agency=decision.agency.code, priority=priority)
    if args.expect:
        report = tally.report(show_misses=args.misses)
        if reviewer is not None:
            report += "\n" + _verdicts(verdicts)
        if args.report_only and args.json:
            print(json.dumps({**tally.as_json(), **({"second_opinion": dict(verdicts)}
                                                   if reviewer is not None else {})},
                             ensure_ascii=False, indent=2))
        else:
            print(report, file=sys.stdout if args.report_only else sys.stderr)
    return 1 if bad else 0


def _open(name: str) -> AbstractContextManager[TextIO]:
    # stdin is borrowed, not owned: the with-block must not close it
    return nullcontext(sys.stdin) if name == "-" else open(name, encoding="utf-8")


def _answer(decision: Decision, expect: str) -> str | None:
    if expect == "agency":
        return decision.agency.code
    if expect == "priority":
        return decision.priority.value
    return decision.category


def _line_json(request: RouteRequest, decision: Decision) -> dict[str, Any]:
    why = decision.explanation
    return {
        "id": request.id, "agency": decision.agency.code, "priority": decision.priority.value,
        "category": decision.category, "confidence": why.confidence,
        "candidates": [c.model_dump(mode="json") for c in why.candidates],
        "explanation": why.model_dump(mode="json", exclude={"candidates"}),
    }


def _check(rulebook: Rulebook) -> int:
    findings = lint(rulebook)
    for finding in findings:
        print(finding)
    errors = sum(f.severity == "error" for f in findings)
    print(f"{rulebook.tenant} version {rulebook.version}: {errors} error(s), "
          f"{len(findings) - errors} warning(s)")
    return 1 if errors else 0
