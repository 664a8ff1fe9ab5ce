"""Masking personal data in the text of anonymous and confidential complaints. Pure functions.

Citizens sign their complaints even when they ask for anonymity, and they disguise contact
details the way people do on chat apps: "O812-3456-7890" with a letter O, "siti[at]example.com",
"siti at example dot com", a NIK in groups of four. Everything here hides such details from the
agencies and the public while leaving the rest of the complaint readable: dates, times, prices,
RT/RW and house numbers must come through unchanged, because agencies act on them.

Masking is idempotent (masking masked text changes nothing): the router masks again what intake
already masked, for events written by older or other producers.
"""

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

NAME_MASK = "[nama disembunyikan]"
EMAIL_MASK = "[email disembunyikan]"
PHONE_MASK = "[nomor disembunyikan]"
IDENTITY_MASK = "[NIK/KK disembunyikan]"
_PLACEHOLDER = re.compile(r"(\[(?:nama|email|nomor|NIK/KK) disembunyikan\])")

# --- e-mail addresses, plain and disguised --------------------------------------------------

_OPEN, _CLOSE = r"[\[\(\{<]", r"[\]\)\}>]"
_AT = (rf"(?:\s*(?:@|\uff20|{_OPEN}\s*(?:at|et|@)\s*{_CLOSE})\s*"  # @, [at], (at), {@} ...
       r"|\s+(?:at|et)\s+)")  # "siti at example dot com"
_DOT_TIGHT = r"\."
_DOT_LOOSE = (rf"(?:\s*(?:\.|{_OPEN}\s*(?:dot|titik|\.)\s*{_CLOSE})\s*"
              r"|\s+(?:dot|titik)\s+)")
# After a spaced or spelled-out dot the last label must be a known domain ending, so that
# "kirim ke siti@example.com. Lalu ..." does not swallow the next sentence.
_TLDS = (r"(?:com|net|org|id|co|ac|go|sch|or|web|my|biz|info|io|me|xyz|edu|gov|mil|online|site"
         r"|store|tech|app|dev|cloud|email|mail)")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(
    rf"(?<![\w.+-])[a-z0-9._%+-]*[a-z0-9]{_AT}{_LABEL}"
    rf"(?:(?:{_DOT_TIGHT}|{_DOT_LOOSE}){_LABEL})*"
    rf"(?:{_DOT_TIGHT}[a-z]{{2,24}}|{_DOT_LOOSE}{_TLDS})(?![\w@])",
    re.IGNORECASE)

# --- phone, NIK and KK numbers ----------------------------------------------------------------

# Letters people type for digits ("O812", "08l2"), read as digits only inside a token that
# already holds a real digit, so words like "lo" or "Ibu" are never numbers.
_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "l": "1", "I": "1", "|": "1"})
_TOKEN = re.compile(r"\S+")
_DIGIT = re.compile(r"\d")
# A run of digit groups joined by short separators: "0812 - 3456.7890", "(0736) 21234".
_BETWEEN = r"(?:\)?[ \t.\-]{1,3}\(?|\)\(?|\()"
_RUN = re.compile(rf"(?<![\w+])\+?\(?\+?\d+(?:{_BETWEEN}\d+)*\)?")
_GROUP = re.compile(r"\d+")
_PRICE_BEFORE = re.compile(r"rp\.?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class _Group:
    start: int
    end: int
    digits: str


def _looks_like_phone(groups: list[_Group]) -> bool:
    """Indonesian phone numbers: mobile 08xx (10-13 digits), landline 0 + area code (9-12),
    each also with +62 or 62 instead of the 0. Dates and times ("08-12-2026 10.30") start with
    two short groups and are not phones; digits typed one by one are."""
    digits = "".join(g.digits for g in groups)
    lengths = [len(g.digits) for g in groups]
    if digits.startswith("62"):
        digits = "0" + digits[2:]
        lengths = lengths[1:] if lengths[0] == 2 else [lengths[0] - 2, *lengths[1:]]
    if len(digits) < 2 or digits[0] != "0" or digits[1] == "0":
        return False
    one_by_one = all(n == 1 for n in lengths)
    if not one_by_one and len(lengths) > 1 and lengths[0] <= 2 and lengths[1] <= 2:
        return False
    if digits[1] == "8":
        return 10 <= len(digits) <= 13
    return 9 <= len(digits) <= 12


# Province codes (the first two digits of a NIK or KK number), from Aceh (11) to Papua (9x).
_PROVINCES = frozenset({*range(11, 20), 21, *range(31, 37), *range(51, 54), *range(61, 66),
                        *range(71, 77), 81, 82, *range(91, 98)})


def _looks_like_identity(groups: list[_Group]) -> bool:
    """A NIK or KK number: 16 digits, region, date (day +40 for women in a NIK), serial.
    Sixteen digits in one piece always count; grouped ones must have that structure, so that
    a date or a year in front of a phone number is not read as one."""
    digits = "".join(g.digits for g in groups)
    if len(digits) != 16:
        return False
    if len(groups) == 1:
        return True
    day, month = int(digits[6:8]), int(digits[8:10])
    return (int(digits[:2]) in _PROVINCES and (1 <= day <= 31 or 41 <= day <= 71)
            and 1 <= month <= 12)


def _is_date(groups: list[_Group], separators: list[str]) -> bool:
    """dd-mm-yyyy, dd.mm.yy, yyyy-mm-dd, with the same separator twice."""
    if separators[0] != separators[1]:
        return False
    sizes = [len(g.digits) for g in groups]
    values = [int(g.digits) for g in groups]
    if sizes[0] <= 2 and sizes[1] <= 2 and sizes[2] in (2, 4):
        (day, month, year), year_size = values, sizes[2]
    elif sizes[0] == 4 and sizes[1] <= 2 and sizes[2] <= 2:
        (year, month, day), year_size = values, 4
    else:
        return False
    return 1 <= day <= 31 and 1 <= month <= 12 and (year_size == 2 or 1900 <= year <= 2099)


def _is_time(groups: list[_Group], separator: str) -> bool:
    """10.30, 7.05: hours and minutes."""
    hours, minutes = groups
    return (separator.strip() == "." and len(hours.digits) <= 2 and len(minutes.digits) == 2
            and int(hours.digits) <= 24 and int(minutes.digits) <= 59)


def _dates_and_times(text: str, groups: list[_Group]) -> set[int]:
    """Indices of groups that form dates or times: no number to mask may include them. A time
    or a date with a two-digit year counts only when not joined to further groups by its own
    separator: "17.08.12.450285.0003" is a NIK, not 17 August 2012."""
    separators = [text[a.end:b.start] for a, b in itertools.pairwise(groups)]

    def standalone(first: int, last: int) -> bool:
        inside = separators[first]
        return ((first == 0 or separators[first - 1] != inside)
                and (last == len(groups) - 1 or separators[last] != inside))

    marked: set[int] = set()
    i = 0
    while i < len(groups):
        three, two = groups[i:i + 3], groups[i:i + 2]
        if (len(three) == 3 and _is_date(three, separators[i:i + 2])
                and (len(three[2].digits) == 4 or standalone(i, i + 2))):
            marked.update((i, i + 1, i + 2))
            i += 3
        elif len(two) == 2 and _is_time(two, separators[i]) and standalone(i, i + 1):
            marked.update((i, i + 1))
            i += 2
        else:
            i += 1
    return marked


def _kind(groups: list[_Group]) -> str | None:
    if _looks_like_identity(groups):
        return IDENTITY_MASK
    return PHONE_MASK if _looks_like_phone(groups) else None


def _best_cover(groups: list[_Group], blocked: set[int]) -> list[tuple[int, int, str]]:
    """The numbers in a run of digit groups: the split that covers the most digits with
    phone and NIK/KK numbers (then the fewest numbers), never taking a date or a time. Two
    numbers side by side ("0812-3456-7890 0813 9876 5432") are read as two, not as a NIK
    made of one's tail and the other's head."""
    n = len(groups)
    best: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (digits covered, -numbers) from i on
    choice: list[tuple[int, str] | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i] = best[i + 1]
        size = 0
        for j in range(i + 1, n + 1):
            size += len(groups[j - 1].digits)
            if j - 1 in blocked or size > 16:  # no phone or NIK number is longer
                break
            kind = _kind(groups[i:j])
            if kind and (score := (size + best[j][0], best[j][1] - 1)) > best[i]:
                best[i], choice[i] = score, (j, kind)
    found, i = [], 0
    while i < n:
        picked = choice[i]
        if picked is None:
            i += 1
        else:
            found.append((i, *picked))
            i = picked[0]
    return found


def _numbers_in_run(text: str, run: re.Match[str]) -> list[tuple[int, int, str]]:
    """Spans to mask inside one run of digit groups; "30-11-2026 0812-3456-7890" keeps its
    date and loses its phone number."""
    groups = [_Group(run.start() + g.start(), run.start() + g.end(), g.group())
              for g in _GROUP.finditer(run.group())]
    spans = []
    for i, j, mask in _best_cover(groups, _dates_and_times(text, groups)):
        start, end = groups[i].start, groups[j - 1].end
        # The "+" or "(" that opens a number, and the ")" that closes it, go with it.
        while start > run.start() and text[start - 1] in "+(":
            start -= 1
        if end < run.end() and text[end] == ")":
            end += 1
        spans.append((start, end, mask))
    return spans


def _digits_view(text: str) -> str:
    """The text with look-alike letters read as digits inside tokens that hold digits; the
    same length as the text, so positions carry over."""
    return _TOKEN.sub(lambda t: t.group().translate(_LOOKALIKES) if _DIGIT.search(t.group())
                      else t.group(), text)


def mask_numbers(text: str) -> str:
    """Phone numbers, and 16-digit NIK and KK numbers, however grouped."""
    view = _digits_view(text)
    spans = [span for run in _RUN.finditer(view)
             if not _PRICE_BEFORE.search(view[max(0, run.start() - 6):run.start()])
             for span in _numbers_in_run(view, run)]
    for start, end, mask in reversed(spans):
        text = text[:start] + mask + text[end:]
    return text


def mask_emails(text: str) -> str:
    return _EMAIL.sub(EMAIL_MASK, text)


# --- the reporter's name --------------------------------------------------------------------

# Parts of a name that are not names themselves (bin/binti: son/daughter of).
_NOT_NAMES = frozenset({"bin", "binti", "bt", "bte", "van", "der", "den", "de", "al", "el", "dan"})
_LEET = {"a": "a4@", "e": "e3", "i": "i1!|", "o": "o0", "s": "s5$", "t": "t7", "g": "g9",
         "b": "b8", "l": "l1|", "z": "z2"}
_NAME_SEP = r"[ .\-_*]?"


def name_parts(name: str) -> list[str]:
    """The words of a name worth masking: three letters or more, not particles."""
    parts = re.findall(r"[^\W\d_]+", name)
    return [p for p in dict.fromkeys(parts) if len(p) >= 3 and p.lower() not in _NOT_NAMES]


def _letter(char: str) -> str:
    return "[" + re.escape(_LEET.get(char.lower(), char.lower())) + "]"


def _part_pattern(part: str) -> str:
    # The same separator between every letter ("S i t i", "S.i.t.i") or none: "bu di" is not
    # "Budi", while "B-u-d-i" is.
    letters = [_letter(c) for c in part]
    return (rf"{letters[0]}(?P<sep>{_NAME_SEP})" + "(?P=sep)".join(letters[1:])
            + r"(?:nya|lah|pun|ku)?")


def mask_name(text: str, name: str) -> str:
    """Every part of the reporter's name, in any case, spelled with spaces or dots between the
    letters or with look-alike digits; a full name becomes one placeholder."""
    for part in sorted(name_parts(name), key=len, reverse=True):
        pattern = re.compile(rf"(?<![\w@]){_part_pattern(part)}(?![\w@])", re.IGNORECASE)
        text = _outside_placeholders(text, partial(pattern.sub, NAME_MASK))
    return re.sub(rf"{re.escape(NAME_MASK)}(?:\s+{re.escape(NAME_MASK)})+", NAME_MASK, text)


# --- all together ---------------------------------------------------------------------------

def _outside_placeholders(text: str, mask: Callable[[str], str]) -> str:
    """Apply ``mask`` to the text between placeholders, so masking is idempotent and a name
    like "Nama" never eats into "[nama disembunyikan]"."""
    parts = _PLACEHOLDER.split(text)
    return "".join(part if i % 2 else mask(part) for i, part in enumerate(parts))


def mask_personal(text: str, *, names: Iterable[str] = ()) -> str:
    """The text with e-mail addresses, phone numbers, NIK/KK numbers and the given names
    masked. E-mails first: their local part often holds the name."""
    text = _outside_placeholders(text, mask_emails)
    text = _outside_placeholders(text, mask_numbers)
    for name in names:
        text = mask_name(text, name)
    return text


def mask_optional(text: str | None, *, names: Iterable[str] = ()) -> str | None:
    return None if text is None else mask_personal(text, names=names)
