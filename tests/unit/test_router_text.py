"""Indonesian text handling: folding, stretched letters, reduplication, slang, stems, typos."""

import pytest

from services.router.text import (
    Lexicon,
    Normaliser,
    TypoFixer,
    default_lexicon,
    normalise,
    shared_stemmer,
    words,
)

NORMALISER = Normaliser(default_lexicon())


def tokens(text: str) -> list[str]:
    return NORMALISER.tokens(text)


def test_words_fold_case_accents_and_punctuation() -> None:
    assert words("  Café ÉLITE, naïve!! (RT 03)") == ["cafe", "elite", "naive", "rt", "03"]


def test_words_split_letters_from_digits() -> None:
    assert words("SMPN4 jual gas 3kg") == ["smpn", "4", "jual", "gas", "3", "kg"]


@pytest.mark.parametrize(("typed", "meant"), [
    ("bauuu", "bau"), ("tolooong", "tolong"), ("SAMPAHHHH", "sampah"), ("maaf", "maaf")])
def test_words_squeeze_stretched_letters_but_keep_real_doubles(typed: str, meant: str) -> None:
    assert words(typed) == [meant]


def test_normalise_pads_for_whole_word_search() -> None:
    assert normalise("Jalan RUSAK") == " jalan rusak "
    assert normalise("?!") == "  "


@pytest.mark.parametrize(("text", "expected"), [
    ("lubang-lubang", ["lubang"]),
    ("anak anak sekolah", ["anak", "sekolah"]),
    ("kafe remang2", ["kafe", "remang"]),
    ("kebut-kebutan", ["kebut", "kebutan"]),  # not a plain repetition: kept
    ("RT 2 2", ["rt", "2", "2"]),  # numbers are not reduplication
])
def test_reduplication_collapses_to_one_word(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("yg gk diangkut", "yang tidak diangkut"),
    ("sdh 3 hr ga ngalir", "sudah 3 hari tidak mengalir"),
    ("jln rusak bgt dgn lubang", "jalan rusak banget dengan lubang"),
    ("kmrn & skrg tdk ada", "kemarin sekarang tidak ada"),
    ("Jl. Merapi", "jalan merapi"),
    ("dirawat di RS", "dirawat di rumah sakit"),
])
def test_slang_and_abbreviations_become_standard_words(text: str, expected: str) -> None:
    assert " ".join(tokens(text)) == expected


def test_some_doubled_words_are_words_of_their_own() -> None:
    assert tokens("oleh-oleh khas bengkulu") == ["oleh", "oleh", "khas", "bengkulu"]
    assert tokens("dibuat oleh warga") == ["dibuat", "oleh", "warga"]


def test_bengkulu_malay_nyo_ending_reads_as_nya() -> None:
    # corpus7: "lubangnyo besak" matched no rule at all; the slang list named three -nyo words.
    assert tokens("lubangnyo besak2 petugasnyo") == ["lubangnya", "besar", "petugasnya"]
    assert tokens("katonyo") == ["katanya"]  # the slang list still wins
    assert tokens("nyo") == ["nyo"]  # no root: not a suffixed word
    assert Normaliser(Lexicon()).tokens("lubangnyo") == ["lubangnyo"]  # a lexicon without endings


def test_everyday_ke_passives_read_as_ter() -> None:
    assert tokens("anak kekunci di mobil, ketimpa pohon") == [
        "anak", "terkunci", "di", "mobil", "tertimpa", "pohon"]


def test_a_tenant_lexicon_replaces_the_default() -> None:
    own = Normaliser(Lexicon(slang={"pam": "pdam"}))
    assert own.tokens("air pam yg mati") == ["air", "pdam", "yg", "mati"]


def test_stems_strip_affixes_and_are_cached() -> None:
    stemmer = shared_stemmer()
    assert stemmer.stem("sampahnya") == "sampah"
    assert stemmer.stem("kebanjiran") == "banjir"
    assert stemmer.stem("2026") == "2026"
    assert stemmer.stem("sampahnya") == "sampah"  # second time from the cache
    assert "makam" in stemmer.roots


def fixer(*vocabulary: str) -> TypoFixer:
    return TypoFixer(vocabulary, shared_stemmer(), min_length=5)


@pytest.mark.parametrize(("typed", "meant"), [
    ("sampha", "sampah"),  # two letters swapped
    ("menumpk", "menumpuk"),  # one letter missing
    ("puskesmaz", "puskesmas"),
    ("drainasee", "drainase"),
])
def test_small_typos_in_longer_words_are_fixed(typed: str, meant: str) -> None:
    assert fixer("sampah", "menumpuk", "puskesmas", "drainase").fix(typed) == meant


def test_real_words_and_short_tokens_are_not_corrected() -> None:
    typo = fixer("makam", "sampah", "lampu", "pasar")
    assert typo.fix("malam") is None  # a real word, one letter away from "makam"
    assert typo.fix("lampunya") is None  # its stem is a rule word: not a typo
    assert typo.fix("psar") is None  # shorter than min_length
    assert typo.fix("sampah") is None  # already a rule word
    assert typo.fix("xyzzyq") is None  # nothing near


def test_longer_words_tolerate_two_edits_short_ones_one() -> None:
    typo = fixer("pemadaman", "lampu")
    assert typo.fix("pemadamn") == "pemadaman"
    assert typo.fix("pmadamn") is None  # seven letters allow one edit; this needs two
    assert typo.fix("pemadamna") == "pemadaman"
    assert typo.fix("lamxx") is None


@pytest.mark.parametrize(("typed", "word"), [
    ("ngamuk", "nyamuk"),  # an informal verb, not a mosquito: the first two letters differ
    ("ribets", "ributs"),  # one substitution in a short word: too many real words nearby
    ("password", "passport"),  # two substitutions
])
def test_corrections_that_would_change_the_meaning_are_refused(typed: str, word: str) -> None:
    assert fixer(word).fix(typed) is None
