"""What the services read at run time besides code (templates, the compiled English catalog,
reply templates, vendored scripts, the API docs' assets) is in pyproject's package data, so a
clean `pip install .` (the Dockerfile's, CI's) has it: each such file matches a pattern."""

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDED = [("services.console", "templates"), ("services.console", "static"),
          ("services.console", "locale"), ("services.console", "reply_templates"),
          ("shared", "static/swagger-ui")]


def _patterns() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    return found


@pytest.mark.parametrize(("package", "folder"), NEEDED)
def test_every_runtime_file_is_package_data(package: str, folder: str) -> None:
    base = ROOT / package.replace(".", "/")
    files = [p.relative_to(base).as_posix() for p in (base / folder).rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc", ".po", ".pot")]
    assert files, f"nothing under {folder}"
    left_out = [f for f in files if not any(fnmatch(f, pattern) for pattern in _patterns()[package])]
    assert not left_out, f"add to [tool.setuptools.package-data] {package}: {left_out}"


def test_the_english_catalog_is_shipped_compiled() -> None:
    assert (ROOT / "services/console/locale/en/LC_MESSAGES/messages.mo").is_file()
