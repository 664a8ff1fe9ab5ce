"""Every phrase of every rule found in one pass over the text (Aho-Corasick over tokens)."""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import ahocorasick

Payload = TypeVar("Payload")
_GAP = "\x00"  # between views; no pattern contains it, so no match spans two views


@dataclass(frozen=True)
class Hit(Generic[Payload]):
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
        parts: list[str] = []
        starts: list[int] = []  # character offset of every token of the joined text
        owners: list[tuple[int, int]] = []  # (view, index in view) of every token
        offset = 1
        for view, tokens in enumerate(views):
            if view:
                parts.append(_GAP)
                starts.append(offset)
                owners.append((-1, -1))
                offset += 2
            for index, token in enumerate(tokens):
                parts.append(token)
                starts.append(offset)
                owners.append((view, index))
                offset += len(token) + 1
        text = " " + " ".join(parts) + " "
        hits: list[Hit[Payload]] = []
        if not parts:
            return hits
        for end_char, (length, payload) in self._automaton.iter(text):
            last = bisect_right(starts, end_char - 1) - 1
            view, end = owners[last]
            hits.append(Hit(payload, view, end - length + 1, end))
        return hits
