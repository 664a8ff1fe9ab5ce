"""The console's languages: Bahasa Indonesia (the source text of every string) and English
(a gettext catalog, ``locale/en/LC_MESSAGES/messages.po``, compiled to ``.mo`` and shipped in
the package). Each request speaks the language of the ``disposisi_lang`` cookie (the switch on
every page), else the browser's Accept-Language, else Indonesian; pages, live fragments,
labels and messages of the request all read it from one context variable.

Catalog upkeep (README, "Console languages")::

    pybabel extract -F services/console/babel.cfg -o services/console/locale/messages.pot .
    pybabel update -i services/console/locale/messages.pot -d services/console/locale
    pybabel compile -d services/console/locale
"""

import contextvars
import gettext as gettext_module  # the module; `gettext` here is the function below
from functools import cache
from pathlib import Path

from jinja2 import Environment
from starlette.types import ASGIApp, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT = "id"
LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
COOKIE = "disposisi_lang"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("console_language", default=DEFAULT)


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "extract, translate later"
    """Marks a string for the catalog where it is defined; translated where it is shown."""
    return message


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The switch's choice if it is a language we have; else the first of the browser's
    languages (by q) we have; else Indonesian."""
    if cookie in LANGUAGES:
        assert cookie is not None
        return cookie
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            wanted.append((-quality, index, primary))
    return min(wanted)[2] if wanted else DEFAULT


@cache
def translations(language: str) -> gettext_module.NullTranslations:
    if language == DEFAULT:  # the source strings are Indonesian
        return gettext_module.NullTranslations()
    return gettext_module.translation(DOMAIN, LOCALE_DIR, languages=[language])


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    """A message of the code (a flash, an error) in the request's language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def install(env: Environment) -> None:
    """The templates' ``_()`` and ``{% trans %}`` (newstyle: autoescaped, ``%(name)s``
    placeholders) answer in the language of the request being rendered."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(languages=LANGUAGES, current_language=current_language)


class LanguageMiddleware:
    """Sets the request's language before any handler or template runs (plain ASGI, so a
    streamed response, the live pages' events, renders in it too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        token = _current.set(choose_language(_cookie(headers.get("cookie", "")),
                                             headers.get("accept-language")))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip()
    return None
