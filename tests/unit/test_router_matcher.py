"""The one-pass matcher: whole tokens, overlaps, several views of one text."""

import pytest

from services.router.matcher import Hit, TokenMatcher


def matcher(*patterns: str) -> TokenMatcher[str]:
    built: TokenMatcher[str] = TokenMatcher()
    for pattern in patterns:
        built.add(pattern.split(), pattern)
    built.build()
    return built


def spans(hits: list[Hit[str]]) -> list[tuple[str, int, int, int]]:
    return sorted((h.payload, h.view, h.start, h.end) for h in hits)


def test_hits_cover_whole_tokens_only() -> None:
    found = matcher("tps", "lampu jalan").find([["tpst", "lampu", "jalanan", "tps"]])
    assert spans(found) == [("tps", 0, 3, 3)]


def test_overlapping_and_nested_hits_are_all_reported() -> None:
    found = matcher("lampu jalan", "jalan", "jalan mati").find([["lampu", "jalan", "mati"]])
    assert spans(found) == [("jalan", 0, 1, 1), ("jalan mati", 0, 1, 2), ("lampu jalan", 0, 0, 1)]


def test_every_occurrence_is_found() -> None:
    found = matcher("sampah").find([["sampah", "dan", "sampah"]])
    assert spans(found) == [("sampah", 0, 0, 0), ("sampah", 0, 2, 2)]


def test_views_are_searched_in_one_pass_with_their_own_positions() -> None:
    found = matcher("banjir", "air banjir").find(
        [["kebanjiran", "lagi"], ["air", "banjir", "lagi"]])
    assert spans(found) == [("air banjir", 1, 0, 1), ("banjir", 1, 1, 1)]


def test_no_hit_spans_two_views() -> None:
    found = matcher("rusak parah").find([["jalan", "rusak"], ["parah"]])
    assert found == []


def test_empty_text_and_empty_views() -> None:
    assert matcher("x").find([[]]) == []
    assert matcher("x").find([[], ["x"]])[0].view == 1


def test_payload_lookup_and_replacement() -> None:
    built: TokenMatcher[int] = TokenMatcher()
    built.add(["a", "b"], 1)
    built.add(["a", "b"], 2)
    assert built.payload(["a", "b"]) == 2
    assert built.payload(["b"]) is None


def test_misuse_is_refused() -> None:
    built: TokenMatcher[int] = TokenMatcher()
    with pytest.raises(ValueError, match="at least one token"):
        built.add([], 1)
    with pytest.raises(RuntimeError, match="build"):
        built.find([["a"]])
    built.add(["a"], 1)
    built.build()
    with pytest.raises(RuntimeError, match="already built"):
        built.add(["b"], 2)
