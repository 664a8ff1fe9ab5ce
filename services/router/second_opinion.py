"""The statistical second opinion: a linear model over word and character n-grams (scikit-learn),
trained on labelled complaints (a development set and the desk's examples, never a holdout).

The rules decide; the model only weighs in (``weigh``, pure):
- the rules are unsure (TRIAGE) and the model's first choice is the rules' first candidate with
  at least ``agree`` probability: that candidate gets the ticket;
- the rules are confident and the model puts another agency first with at least ``dispute``
  probability: the decision stands and is flagged for the triage desk to review;
- otherwise nothing changes. Every consulted decision carries the opinion in its explanation.

The model is asked in batches (one call per consumer batch): one complaint at a time, the
library's per-call overhead would cost more than routing itself.
"""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from services.router.domain import Decision
from services.router.rulebook import Rulebook
from shared.contracts import SecondOpinion

MIN_EXAMPLES_PER_AGENCY = 1


@dataclass(frozen=True)
class Gate:
    """When the model may weigh in (settings second_opinion_*)."""

    agree: float = 0.5  # TRIAGE becomes a decision when the model agrees this strongly
    dispute: float = 0.8  # a confident decision is flagged when the model disagrees this strongly
    confident: float = 0.5  # rule confidence at or above which a decision counts as confident
    # Above this the rules' lead and evidence are both so strong that asking costs more time
    # than the rare dispute is worth (the model takes about as long as routing itself).
    certain: float = 0.8

    def asks(self, decision: Decision, fallback: str) -> bool:
        """Whether the model is consulted: the rules were unsure (TRIAGE with candidates), or
        confident without being certain (the disagreement check)."""
        if decision.agency.code == fallback:
            return bool(decision.explanation.candidates)
        return self.confident <= decision.explanation.confidence < self.certain


@dataclass(frozen=True)
class Opinion:
    ranked: tuple[tuple[str, float], ...]  # (agency, probability), best first

    @property
    def first(self) -> tuple[str, float]:
        return self.ranked[0]

    def probability(self, code: str) -> float:
        return next((p for c, p in self.ranked if c == code), 0.0)


def complaint_text(text: str, title: str | None) -> str:
    return f"{title}. {text}" if title else text


class OpinionModel:
    """A fitted classifier and what it was trained on."""

    def __init__(self, pipeline: Pipeline, *, examples: int, version: str) -> None:
        self.pipeline = pipeline
        self.examples = examples
        self.version = version

    @property
    def agencies(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def opinions(self, texts: Sequence[str]) -> list[Opinion]:
        if not texts:
            return []
        rows = self.pipeline.predict_proba(list(texts))
        classes = self.agencies
        out = []
        for row in rows:
            ranked = sorted(zip(classes, (float(p) for p in row), strict=True),
                            key=lambda item: -item[1])
            out.append(Opinion(tuple((c, round(p, 3)) for c, p in ranked[:5])))
        return out

    def save(self, path: Path) -> None:
        joblib.dump({"pipeline": self.pipeline, "examples": self.examples,
                     "version": self.version}, path)

    @classmethod
    def load(cls, path: Path) -> "OpinionModel":
        # A model file is written by `disposisi rules train-model` on the operator's machine;
        # like any pickle it must come from a trusted place.
        stored = cast(dict[str, Any], joblib.load(path))
        return cls(stored["pipeline"], examples=int(stored["examples"]), version=str(stored["version"]))


def train(examples: Iterable[tuple[str, str]], *, fallback: str = "TRIAGE") -> OpinionModel | None:
    """Fit on (complaint text, agency) pairs; None when there is nothing to tell apart (fewer
    than two agencies). TRIAGE is never a label: it is where the rules' doubt goes."""
    pairs = sorted({(text, agency) for text, agency in examples if agency != fallback})
    if len({agency for _, agency in pairs}) < 2:
        return None
    features = FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
    ])
    pipeline = Pipeline([("features", features),
                         ("model", LogisticRegression(C=20.0, max_iter=2000))])
    pipeline.fit([t for t, _ in pairs], [a for _, a in pairs])
    version = hashlib.sha256(repr(pairs).encode()).hexdigest()[:12]
    return OpinionModel(pipeline, examples=len(pairs), version=version)


def weigh(rulebook: Rulebook, decision: Decision, opinion: Opinion, gate: Gate,
          model_version: str) -> Decision:
    """The decision after the second opinion (see the module's docstring)."""
    explanation = decision.explanation
    rules_choice = (explanation.candidates[0].agency if explanation.candidates
                    else decision.agency.code)
    model_choice, probability = opinion.first
    note = SecondOpinion(agency=model_choice, probability=probability,
                         rules_choice_probability=opinion.probability(rules_choice),
                         verdict="agrees" if model_choice == rules_choice else "differs",
                         model_version=model_version)
    if decision.agency.code == rulebook.fallback:
        if explanation.candidates and note.verdict == "agrees" and probability >= gate.agree:
            return _settled(rulebook, decision, note.model_copy(update={"verdict": "decided"}))
        return _noted(decision, note, f"; second opinion: {model_choice} ({probability:.2f})")
    confident = explanation.confidence >= gate.confident
    if confident and model_choice != decision.agency.code and probability >= gate.dispute:
        disputed = note.model_copy(update={"verdict": "disputes", "review": True})
        return _noted(decision, disputed, (
            f"; the second opinion strongly disagrees ({model_choice} {probability:.2f}, "
            f"{decision.agency.code} {note.rules_choice_probability:.2f}): for the desk to review"))
    return _noted(decision, note, "")


def _settled(rulebook: Rulebook, decision: Decision, note: SecondOpinion) -> Decision:
    first = decision.explanation.candidates[0]
    agency = rulebook.agency(first.agency)
    category = next((rule.category for rule in agency.rules if rule.id in first.rule_ids
                     and rule.category), None)
    doubt = decision.explanation.reason.split(": the complaint desk decides")[0]
    reason = (f"{agency.code}: the rules were unsure ({doubt}) and the second opinion also puts "
              f"{agency.code} first ({note.probability:.2f})")
    explanation = decision.explanation.model_copy(update={
        "rule_ids": first.rule_ids, "score": first.score, "reason": reason, "second_opinion": note})
    return replace(decision, agency=agency, category=category, explanation=explanation)


def _noted(decision: Decision, note: SecondOpinion, said: str) -> Decision:
    explanation = decision.explanation.model_copy(update={
        "second_opinion": note, "reason": decision.explanation.reason + said})
    return replace(decision, explanation=explanation)


class Reviewer:
    """The serving model (swapped whole when retrained) and the gate it is held to."""

    def __init__(self, gate: Gate, model: OpinionModel | None = None) -> None:
        self.gate = gate
        self.model = model

    def review(self, rulebook: Rulebook, decided: Sequence[tuple[Decision, str]]) -> list[Decision]:
        """Each (decision, complaint text) weighed by the model where the gate asks it; the
        model sees the whole batch's questions in one call."""
        model = self.model  # one model for the whole batch, even if swapped meanwhile
        out = [decision for decision, _ in decided]
        if model is None:
            return out
        asked = [i for i, (decision, _) in enumerate(decided)
                 if self.gate.asks(decision, rulebook.fallback)]
        opinions = model.opinions([decided[i][1] for i in asked])
        for i, opinion in zip(asked, opinions, strict=True):
            out[i] = weigh(rulebook, out[i], opinion, self.gate, model.version)
        return out
