"""Hot reload: a changed rulebook file is swapped in whole; a broken one is refused with its
reason and the rulebook already serving goes on serving."""

import os
from pathlib import Path

import pytest

from services.router.flows import Router
from services.router.reload import RulebookReloader
from services.router.rulebook import Rulebook, load_rulebook
from shared.settings import Settings
from tests.unit.support import write_yaml


def book(*codes: str) -> dict[str, object]:
    agencies: list[dict[str, object]] = [{"code": "TRIAGE", "name": "Meja", "authority": "internal"}]
    agencies += [{"code": c, "name": c, "authority": "kota",
                  "rules": [{"id": f"{c.lower()}.r", "any": [c.lower()]}]} for c in codes]
    return {"tenant": "test", "agencies": agencies}


def touch_later(path: Path) -> None:
    # Same-second rewrites must still look changed, whatever the file system's resolution.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


class Created:
    def __init__(self) -> None:
        self.queues: list[list[str]] = []

    async def __call__(self, rulebook: Rulebook) -> None:
        self.queues.append(rulebook.codes)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return write_yaml(tmp_path, book("DLH"), "rulebook.yaml")


def reloader_for(path: Path) -> tuple[RulebookReloader, Created]:
    created = Created()
    return RulebookReloader(path, Router(Settings(), load_rulebook(path)), created), created


async def test_unchanged_file_is_not_reloaded(path: Path) -> None:
    reloader, created = reloader_for(path)
    assert await reloader.check() is False
    assert created.queues == []


async def test_a_changed_rulebook_is_swapped_in(path: Path) -> None:
    reloader, created = reloader_for(path)
    old = reloader.router.rulebook.version
    write_yaml(path.parent, book("DLH", "PUPR"), path.name)
    touch_later(path)
    assert await reloader.check() is True
    assert reloader.router.rulebook.codes == ["TRIAGE", "DLH", "PUPR"]
    assert reloader.router.rulebook.version != old
    assert created.queues == [["TRIAGE", "DLH", "PUPR"]]  # queues exist before routing to them
    assert reloader.status()["last_error"] is None


async def test_an_invalid_rulebook_is_refused_and_the_old_one_serves(path: Path) -> None:
    reloader, created = reloader_for(path)
    old = reloader.router.rulebook
    path.write_text("tenant: test\nagencies:\n  - {code: dlh, name: x, authority: kota}\n")
    touch_later(path)
    assert await reloader.check() is False
    assert reloader.router.rulebook is old
    assert created.queues == []
    error = str(reloader.status()["last_error"])
    assert error.startswith(f"{path}"), error
    assert "code" in error
    # Reported once; a fixed file is then picked up.
    assert await reloader.check() is False
    write_yaml(path.parent, book("DLH", "DINSOS"), path.name)
    touch_later(path)
    assert await reloader.check() is True
    assert "DINSOS" in reloader.router.rulebook.codes
    assert reloader.status()["last_error"] is None


async def test_a_missing_file_is_refused(path: Path) -> None:
    reloader, _ = reloader_for(path)
    path.unlink()
    assert await reloader.check() is False
    assert "cannot read" in str(reloader.status()["last_error"])
    assert reloader.router.rulebook.codes == ["TRIAGE", "DLH"]


async def test_a_changed_lexicon_reloads_the_rulebook_that_includes_it(tmp_path: Path) -> None:
    lexicon = write_yaml(tmp_path, {"slang": {"smph": "sampah"}}, "lexicon.yaml")
    path = write_yaml(tmp_path, {**book("DLH"), "include": {"lexicon": lexicon.name}}, "rulebook.yaml")
    reloader, _ = reloader_for(path)
    old = reloader.router.rulebook.version
    write_yaml(tmp_path, {"slang": {"smph": "sampah", "dlh": "dlh"}}, lexicon.name)
    touch_later(lexicon)
    assert await reloader.check() is True
    assert reloader.router.rulebook.version != old


async def test_each_tenant_reloads_its_own_rulebook(tmp_path: Path) -> None:
    home_path = write_yaml(tmp_path, book("DLH"), "home.yaml")
    other_path = write_yaml(tmp_path, book("DIKBUD"), "other.yaml")
    router = Router(Settings(), load_rulebook(home_path),
                    others={"provinsi-x": load_rulebook(other_path)})
    home_book = router.rulebook
    created = Created()
    reloader = RulebookReloader(other_path, router, created, tenant="provinsi-x")
    write_yaml(tmp_path, book("DIKBUD", "SAMSAT"), other_path.name)
    touch_later(other_path)
    assert await reloader.check() is True
    assert router.book("provinsi-x").codes == ["TRIAGE", "DIKBUD", "SAMSAT"]
    assert router.rulebook is home_book  # the home tenant's rulebook is untouched
    assert reloader.status()["tenant"] == "provinsi-x"
    assert created.queues == [["TRIAGE", "DIKBUD", "SAMSAT"]]
