"""Every phrase of every rule found in one pass over the text (Aho-Corasick over tokens)."""

from bisect import bisect_right
from collections.abc import Sequence
from typing import Generic, NamedTuple, TypeVar

import ahocorasick

Payload = TypeVar("Payload")
_GAP = "\x00"  # between views; no pattern contains it, so no match spans two views


class Hit(NamedTuple, Generic[Payload]):  # a tuple: built by the thousand per second
    payload: Payload
    view: int
    start: int  # first token, inclusive
    end: int  # last token, inclusive


class TokenMatcher(Generic[Payload]):
    """Patterns are token sequences; a hit covers whole tokens only ("tps" never inside
    "tpst"). Several views of one text (surface words, stems) are searched in the same pass."""

    def __init__(self) -> None:
        self._automaton = ahocorasick.Automaton()
        self._built = False

    def add(self, tokens: Sequence[str], payload: Payload) -> None:
        """Register a pattern; adding the same tokens again replaces its payload."""
        if self._built:
            raise RuntimeError("the matcher is already built")
        if not tokens:
            raise ValueError("a pattern needs at least one token")
        key = " " + " ".join(tokens) + " "
        self._automaton.add_word(key, (len(tokens), payload))

    def payload(self, tokens: Sequence[str]) -> Payload | None:
        found = self._automaton.get(" " + " ".join(tokens) + " ", None)
        return None if found is None else found[1]

    def build(self) -> None:
        self._automaton.make_automaton()
        self._built = True

    def find(self, views: Sequence[Sequence[str]]) -> list[Hit[Payload]]:
        """All hits in all views (overlapping ones included), in order of their end."""
        if not self._built:
            raise RuntimeError("build the matcher first")
        text = " " + f" {_GAP} ".join(" ".join(tokens) for tokens in views) + " "
        firsts = []  # index, in the joined text, of each view's first token
        first = 0
        for tokens in views:
            firsts.append(first)
            first += len(tokens) + 1
        hits: list[Hit[Payload]] = []
        for end_char, (length, payload) in self._automaton.iter(text):
            last = text.count(" ", 0, end_char) - 1  # tokens are separated by single spaces
            view = bisect_right(firsts, last) - 1
            end = last - firsts[view]
            hits.append(Hit(payload, view, end - length + 1, end))
        return hits
