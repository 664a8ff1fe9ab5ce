"""The statistical second opinion: a linear model over word and character n-grams (scikit-learn),
trained on labelled complaints (a development set and the desk's examples, never a holdout).

The rules decide; the model only weighs in (``weigh``, pure):
- the rules are unsure (TRIAGE) and the model's first choice is the rules' first candidate with
  at least ``agree`` probability: that candidate gets the ticket;
- the rules are confident and the model puts another agency first with at least ``dispute``
  probability: the decision stands and is flagged for the triage desk to review;
- otherwise nothing changes. Every consulted decision carries the opinion in its explanation.

Two fits of the same examples serve (``OpinionModel``): the full one, over word and character
n-grams, settles TRIAGE (rare, and where typos and slang matter most); a quick one, over words
and word pairs only, makes the disagreement check on confident decisions (most complaints), where
the character n-grams would cost about as much as routing itself. The model is asked only where
the gate says (``Gate.question``), and scored without scikit-learn's per-call machinery
(``_Scorer``, held equal to the pipeline by a test).
"""

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, cast

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from services.router.domain import Decision
from services.router.rulebook import Rulebook
from shared.contracts import SecondOpinion

Question = Literal["settle", "check"]


@dataclass(frozen=True)
class Gate:
    """When the model may weigh in (settings second_opinion_*)."""

    agree: float = 0.5  # TRIAGE becomes a decision when the model agrees this strongly
    dispute: float = 0.8  # a confident decision is flagged when the model disagrees this strongly
    confident: float = 0.5  # rule confidence at or above which a decision counts as confident
    certain: float = 1.0  # from this confidence on the disagreement check is skipped

    def question(self, decision: Decision, fallback: str) -> Question | None:
        """What the model is asked: to settle a TRIAGE that has candidates, to check a
        confident decision, or nothing."""
        if decision.agency.code == fallback:
            return "settle" if decision.explanation.candidates else None
        confidence = decision.explanation.confidence
        return "check" if self.confident <= confidence < self.certain else None


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


_WORD = re.compile(r"\w\w+")
CHAR_SIZES = (3, 4, 5)


def word_grams(text: str) -> list[str]:
    """Words (two letters or more) and word pairs, lower case."""
    tokens = _WORD.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


def char_grams(text: str) -> list[str]:
    """Character 3- to 5-grams inside each word padded with a space ("sampahh" still shares
    " sam", "samp", "ampa" with "sampah"): what carries typos and slang."""
    return [padded[i:i + n] for word in _WORD.findall(text.lower()) for padded in (f" {word} ",)
            for n in CHAR_SIZES for i in range(len(padded) - n + 1)]


def word_and_char_grams(text: str) -> list[str]:
    """Both kinds in one vocabulary (one vectoriser: scikit-learn's FeatureUnion would cost a
    thread pool's start per call). A short word equal to a character n-gram shares its column,
    which a linear model does not mind."""
    return word_grams(text) + char_grams(text)


class _Scorer:
    """A fitted pipeline's predict_proba for one complaint, from the same analyser, vocabulary,
    idf weights and coefficients. scikit-learn's transform pays several milliseconds of checks
    and sparse-matrix building per call, more than routing the complaint; here a complaint costs
    its n-grams and a few array operations. A unit test holds the two equal."""

    def __init__(self, pipeline: Pipeline) -> None:
        vectorizer: TfidfVectorizer = pipeline.named_steps["features"]
        model: LogisticRegression = pipeline.named_steps["model"]
        self.analyse = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.weights = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).T)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)

    def probabilities(self, text: str) -> list[float]:
        vocabulary = self.vocabulary
        known = [(vocabulary[gram], n) for gram, n in Counter(self.analyse(text)).items()
                 if gram in vocabulary]
        decision = self.intercept.copy()
        if known:
            columns = np.fromiter((c for c, _ in known), dtype=np.int64, count=len(known))
            counts = np.fromiter((n for _, n in known), dtype=np.float64, count=len(known))
            values = (1.0 + np.log(counts)) * self.idf[columns]  # sublinear tf times idf
            values /= np.sqrt(values @ values)  # l2
            decision += values @ self.weights[columns]
        if len(decision) == 1:  # two agencies: one logistic, for the second
            second = float(1.0 / (1.0 + np.exp(-decision[0])))
            return [1.0 - second, second]
        shifted = np.exp(decision - decision.max())
        return [float(p) for p in shifted / shifted.sum()]


class OpinionModel:
    """The two fitted classifiers (``full`` and ``quick``) and what they were trained on."""

    def __init__(self, full: Pipeline, quick: Pipeline, *, examples: int, version: str) -> None:
        self.full, self.quick = full, quick
        self.examples = examples
        self.version = version
        self._scorers = {"full": _Scorer(full), "quick": _Scorer(quick)}

    @property
    def agencies(self) -> list[str]:
        return [str(c) for c in self.full.classes_]

    def opinions(self, texts: Sequence[str], *, quick: bool = False) -> list[Opinion]:
        pipeline = self.quick if quick else self.full
        scorer = self._scorers["quick" if quick else "full"]
        classes = [str(c) for c in pipeline.classes_]
        out = []
        for text in texts:
            ranked = sorted(zip(classes, scorer.probabilities(text), strict=True),
                            key=lambda item: -item[1])
            out.append(Opinion(tuple((c, round(p, 3)) for c, p in ranked[:5])))
        return out

    def save(self, path: Path) -> None:
        joblib.dump({"full": self.full, "quick": self.quick, "examples": self.examples,
                     "version": self.version}, path)

    @classmethod
    def load(cls, path: Path) -> "OpinionModel":
        # A model file is written by `disposisi rules train-model` on the operator's machine;
        # like any pickle it must come from a trusted place.
        stored = cast(dict[str, Any], joblib.load(path))
        return cls(stored["full"], stored["quick"], examples=int(stored["examples"]),
                   version=str(stored["version"]))


def train(examples: Iterable[tuple[str, str]], *, fallback: str = "TRIAGE") -> OpinionModel | None:
    """Fit on (complaint text, agency) pairs; None when there is nothing to tell apart (fewer
    than two agencies). TRIAGE is never a label: it is where the rules' doubt goes."""
    pairs = sorted({(text, agency) for text, agency in examples if agency != fallback})
    if len({agency for _, agency in pairs}) < 2:
        return None
    texts, agencies = [t for t, _ in pairs], [a for _, a in pairs]
    full = Pipeline([("features", TfidfVectorizer(analyzer=word_and_char_grams, sublinear_tf=True)),
                     ("model", LogisticRegression(C=20.0, max_iter=2000))]).fit(texts, agencies)
    quick = Pipeline([("features", TfidfVectorizer(analyzer=word_grams, sublinear_tf=True)),
                      ("model", LogisticRegression(C=20.0, max_iter=2000))]).fit(texts, agencies)
    version = hashlib.sha256(repr(pairs).encode()).hexdigest()[:12]
    return OpinionModel(full, quick, examples=len(pairs), version=version)


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
        for kind in ("settle", "check"):
            asked = [i for i, (decision, _) in enumerate(decided)
                     if self.gate.question(decision, rulebook.fallback) == kind]
            opinions = model.opinions([decided[i][1] for i in asked], quick=kind == "check")
            for i, opinion in zip(asked, opinions, strict=True):
                out[i] = weigh(rulebook, out[i], opinion, self.gate, model.version)
        return out
