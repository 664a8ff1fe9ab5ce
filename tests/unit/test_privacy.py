"""Masking personal data: worked examples, then properties over generated disguises (names,
NIK/KK numbers, phone numbers, e-mail addresses as citizens disguise them) embedded in random
Indonesian text, and ordinary text (dates, times, prices, RT/RW) that must come through as is."""

import re

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from shared.privacy import (
    EMAIL_MASK,
    IDENTITY_MASK,
    NAME_MASK,
    PHONE_MASK,
    mask_personal,
    name_parts,
)


@pytest.mark.parametrize(("written", "mask"), [
    ("O812-3456-7890", PHONE_MASK), ("0812 3456 7890", PHONE_MASK), ("0813.9876.5432", PHONE_MASK),
    ("+62 821-1111-2222", PHONE_MASK), ("62812-3456-7890", PHONE_MASK), ("(+62) 812 3456 7890", PHONE_MASK),
    ("08l2-3456-789O", PHONE_MASK), ("0 8 1 2 3 4 5 6 7 8 9 0", PHONE_MASK), ("(0736) 21234", PHONE_MASK),
    ("1771034502850003", IDENTITY_MASK), ("1771 0345 0285 0004", IDENTITY_MASK),
    ("177103-450285-0003", IDENTITY_MASK), ("l77l.O345.O285.OOO3", IDENTITY_MASK),
    ("siti@example.com", EMAIL_MASK), ("siti[at]example.com", EMAIL_MASK),
    ("siti at example dot com", EMAIL_MASK), ("siti(at)example(dot)com", EMAIL_MASK),
    ("siti.aminah @ yahoo . co . id", EMAIL_MASK), ("aminah {at} contoh [dot] go [dot] id", EMAIL_MASK),
])
def test_each_disguise_is_masked(written: str, mask: str) -> None:
    assert mask_personal(f"tolong hubungi {written} segera") == f"tolong hubungi {mask} segera"


def test_the_reporters_name_is_masked_in_any_spelling_but_not_inside_other_words() -> None:
    text = ("Saya Siti Aminah; SITI tinggal di sini, s.i.t.i dan S1t1, aminahnya pergi. "
            "Situasi di Jl. Sitinjau aman, bu di rumah.")
    assert mask_personal(text, names=["Siti Aminah"]) == (
        f"Saya {NAME_MASK}; {NAME_MASK} tinggal di sini, {NAME_MASK} dan {NAME_MASK}, {NAME_MASK} "
        "pergi. Situasi di Jl. Sitinjau aman, bu di rumah.")
    assert mask_personal("Budi bilang bu di rumah", names=["Budi"]) == f"{NAME_MASK} bilang bu di rumah"


def test_name_parts_skip_initials_and_particles() -> None:
    assert name_parts("M. Rizki bin Abdul") == ["Rizki", "Abdul"]


def test_masking_is_idempotent_even_for_a_reporter_named_like_a_placeholder() -> None:
    once = mask_personal("Saya Nama Disembunyikan, 0812-3456-7890", names=["Nama Disembunyikan"])
    assert once == f"Saya {NAME_MASK}, {PHONE_MASK}"
    assert mask_personal(once, names=["Nama Disembunyikan"]) == once


def test_a_date_or_year_in_front_of_a_number_stays() -> None:
    text = "30-11-2026 0812-3456-7890, tahun 2026 1771 0345 0285 0003, 28-11-2026 28-11-2026 10.30"
    assert mask_personal(text) == (f"30-11-2026 {PHONE_MASK}, tahun 2026 {IDENTITY_MASK}, "
                                   "28-11-2026 28-11-2026 10.30")


# --- properties -----------------------------------------------------------------------------

FILLER = [
    "jalan", "rusak", "di", "depan", "rumah", "saya", "sudah", "lama", "tidak", "diperbaiki",
    "tolong", "segera", "ditindaklanjuti", "lampu", "mati", "air", "pdam", "keruh", "sampah",
    "menumpuk", "warga", "mengeluh", "bau", "got", "tersumbat", "banjir", "kalau", "hujan", "pak",
    "bu", "kami", "mohon", "bantuan", "lo", "lho", "ibu", "titik", "rawan", "kelurahan",
    "kecamatan", "gang", "lorong", "belakang", "pasar", "sekolah", "puskesmas",
]
SEPARATORS = [" ", ", ", ": ", " - ", " (", ") "]
SYLLABLES = [c + v for c in "bcdfghjklmnprstwy" for v in "aiueo"]
MOBILE_PREFIXES = ["0811", "0812", "0813", "0821", "0822", "0852", "0853", "0857", "0878", "0896"]
PROVINCES = [11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63,
             64, 65, 71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 94]
LEET = {"i": "1", "a": "4", "o": "0", "e": "3", "s": "5"}


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def lookalikes(draw: st.DrawFn, number: str) -> str:
    """Some zeros typed as O and ones as l or I, keeping a real digit in every token."""
    chars = list(number)
    for i, char in enumerate(chars):
        if char in "01" and draw(st.integers(0, 4)) == 0:
            chars[i] = draw(st.sampled_from(["O", "o"] if char == "0" else ["l", "I"]))
    written = "".join(chars)
    assume(all(re.search(r"\d", token) for token in written.split()))
    return written


@st.composite
def grouped(draw: st.DrawFn, number: str, sizes: list[int]) -> str:
    separator = draw(st.sampled_from(["", " ", ".", "-", " - ", "  "]))
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at:at + size])
        at += size
    parts.append(number[at:])
    return separator.join(p for p in parts if p)


@st.composite
def names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.lists(st.sampled_from(SYLLABLES), min_size=2, max_size=3),
                          min_size=1, max_size=3))
    return " ".join("".join(p).capitalize() for p in parts)


@st.composite
def name_as_written(draw: st.DrawFn, name: str) -> str:
    part = draw(st.sampled_from([name, *name.split()]))
    style = draw(st.sampled_from(["as is", "lower", "upper", "spaced", "leet"]))
    if style == "lower":
        return part.lower()
    if style == "upper":
        return part.upper()
    if style == "spaced":
        separator = draw(st.sampled_from([" ", ".", "-"]))
        return " ".join(separator.join(word) for word in part.split())
    if style == "leet":
        return "".join(LEET.get(c, c) if draw(st.booleans()) else c for c in part)
    return part


@st.composite
def identity_numbers(draw: st.DrawFn) -> str:
    day = draw(st.one_of(st.integers(1, 31), st.integers(41, 71)))
    number = (f"{draw(st.sampled_from(PROVINCES))}{draw(digits(4))}{day:02d}"
              f"{draw(st.integers(1, 12)):02d}{draw(digits(2))}{draw(digits(4))}")
    sizes = draw(st.sampled_from([[16], [4, 4, 4], [6, 6], [2, 2, 2, 6]]))
    return draw(lookalikes(draw(grouped(number, sizes))))


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 5)) == 0:  # a landline in Bengkulu
        area = draw(st.sampled_from(["0736", "0737", "0739"]))
        written = f"({area}) {draw(digits(draw(st.integers(5, 6))))}"
        return draw(lookalikes(written))
    number = draw(st.sampled_from(MOBILE_PREFIXES)) + draw(digits(draw(st.integers(6, 9))))
    country = draw(st.sampled_from(["0", "+62 ", "+62", "62", "(+62) "]))
    national = number[1:]
    sizes = draw(st.sampled_from([[3, 4, 4], [3, 4], [4, 4], [len(national)], [1] * len(national)]))
    body = draw(grouped(national, sizes))
    written = ("0" + body) if country == "0" else country + body
    if sizes[0] == 1 and country == "0":
        written = "0 " + body
    return draw(lookalikes(written))


@st.composite
def emails(draw: st.DrawFn, name: str) -> str:
    local = draw(st.sampled_from([name.split()[0].lower(), name.lower().replace(" ", "."),
                                  name.lower().replace(" ", "_") + draw(digits(2))]))
    domain = draw(st.sampled_from(["gmail.com", "yahoo.co.id", "example.com", "bengkulukota.go.id",
                                   "mail.contoh.org"]))
    at = draw(st.sampled_from(["@", " @ ", "[at]", "(at)", "{at}", " at ", "[@]", " [at] ", "(@)"]))
    labels = domain.split(".")
    written = labels[0]
    for label in labels[1:]:
        written += draw(st.sampled_from([".", " dot ", "[dot]", "(dot)", " titik ", " . ", " (dot) "]))
        written += label
    return local + at + written


@st.composite
def complaints_with_secrets(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    name = draw(names())
    secrets = draw(st.lists(st.one_of(name_as_written(name), identity_numbers(), phone_numbers(),
                                      emails(name)), min_size=1, max_size=5))
    pieces = draw(st.lists(st.sampled_from(FILLER), min_size=1, max_size=30))
    for secret in secrets:
        pieces.insert(draw(st.integers(0, len(pieces))), secret)
    text = pieces[0]
    for piece in pieces[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + piece
    return text, name, secrets


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(complaints_with_secrets())
# A name written "nama" (syllables na + ma) is masked, but its placeholder says "nama" too
# (found by Hypothesis in a run): secrets are looked for outside the placeholders.
@example(("nama jalan", "Nama", ["nama"]))
def test_generated_disguises_never_survive_masking(case: tuple[str, str, list[str]]) -> None:
    text, name, secrets = case
    masked = mask_personal(text, names=[name])
    unmasked = re.sub(r"\[[^]]*disembunyikan\]", "", masked)
    assert [s for s in secrets if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", unmasked)] == [], masked
    assert not re.search(r"\d|@|\uff20", masked), masked
    words = set(re.findall(r"\w+", unmasked.lower()))
    assert [p for p in name_parts(name) if p.lower() in words] == [], masked
    assert mask_personal(masked, names=[name]) == masked


ORDINARY = st.sampled_from([
    "28-11-2026", "28/11/2026", "28.11.2026", "2026-11-28", "28 November 2026", "tanggal 08-12-2026",
    "08 12 2026", "pukul 10.30", "pukul 07:15", "jam 08.00-16.00", "Rp 50.000", "Rp1.500.000,-",
    "Rp 2,5 juta", "Rp. 628.500.000", "RT 03/RW 05", "RT.003/RW.005", "RT 3 RW 5", "No. 12",
    "no 7A", "3 kali", "2 minggu", "KM 5", "kode pos 38221", "50%", "tahun 2025", "BD 1234 AB",
    "17 08 1945", "28-11-26", "2026-11-28", "07.30", "lantai 2", "blok O", "gang 1",
    "nomor rumah 0012", "sejak 2019 2020", "ukuran 120 x 80 cm",
])


@settings(max_examples=400)
@given(st.lists(st.one_of(st.sampled_from(FILLER), ORDINARY), min_size=1, max_size=30),
       st.lists(st.sampled_from(SEPARATORS), min_size=30, max_size=30), names())
def test_ordinary_text_is_never_masked(pieces: list[str], separators: list[str], name: str) -> None:
    text = pieces[0] + "".join(sep + piece for sep, piece in zip(separators, pieces[1:], strict=False))
    assume(not any(p.lower() in text.lower() for p in name_parts(name)))
    assert mask_personal(text, names=[name]) == text
