"""The console's languages: which one a request gets, the English catalog covers every string
the code and templates mark, the shipped .mo is the compiled .po, and labels, ages and dates
come out in English while dates stay in the tenant's timezone."""

import gettext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.console import domain, i18n

CONSOLE = Path(__file__).resolve().parents[2] / "services" / "console"
PO = CONSOLE / "locale" / "en" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


@pytest.mark.parametrize(("cookie", "accept", "chosen"), [
    (None, None, "id"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR, en;q=0.5, id;q=0.8", "id"),  # by q, not by order
    (None, "fr, de", "id"),
    (None, "en;q=0", "id"),
    (None, "en;q=abc, id;q=0.1", "id"),
    ("en", "id", "en"),  # the switch wins over the browser
    ("xx", "en", "en"),  # an unknown cookie is ignored
])
def test_the_language_of_a_request(cookie: str | None, accept: str | None, chosen: str) -> None:
    assert i18n.choose_language(cookie, accept) == chosen


def _extracted() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(str(CONSOLE), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def test_every_marked_string_has_an_english_translation() -> None:
    with PO.open("rb") as po:
        catalog = read_po(po)
    translated = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in catalog if m.id}
    marked = _extracted()
    assert len(marked) > 150
    missing = sorted(str(m) for m in marked if not translated.get(m))
    assert not missing, f"run the catalog commands in services/console/i18n.py; untranslated: {missing}"
    fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
    assert not fuzzy


def test_the_shipped_mo_is_the_compiled_po() -> None:
    with PO.open("rb") as po:
        catalog = read_po(po)
    shipped = gettext.translation(i18n.DOMAIN, i18n.LOCALE_DIR, languages=["en"])
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, str):
            assert shipped.gettext(message.id) == message.string, message.id
        else:
            plural = message.string
            assert isinstance(plural, tuple | list)
            assert shipped.ngettext(message.id[0], message.id[1], 2) == plural[1]


def test_english_labels_ages_and_dates_in_the_tenants_timezone() -> None:
    token = i18n._current.set("en")
    try:
        now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        assert i18n.gettext(domain.status_label("needs_info")) == "Waiting for the reporter"
        assert domain.age("2026-11-27T12:00:00Z", now, i18n.gettext, i18n.ngettext) == "3 days"
        assert domain.age("2026-11-30T11:00:00Z", now, i18n.gettext, i18n.ngettext) == "1 hour"
        assert domain.age("2026-11-30T11:59:30Z", now, i18n.gettext, i18n.ngettext) == "just now"
        assert domain.local_time("2026-11-30T17:30:00Z", "Asia/Jakarta", i18n.gettext) == \
            "1 December 2026 00.30 WIB"
    finally:
        i18n._current.reset(token)
    assert domain.age("2026-11-27T12:00:00Z", now, i18n.gettext, i18n.ngettext) == "3 hari"
    assert domain.local_time("2026-11-30T17:30:00Z", "Asia/Jakarta", i18n.gettext) == \
        "1 Desember 2026 00.30 WIB"
