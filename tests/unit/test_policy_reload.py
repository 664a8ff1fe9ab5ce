"""What a policy reload accepts: the whole policy is checked before it may serve (its holidays
files included), and no calendar stored tickets may name disappears."""

import shutil
from pathlib import Path

import pytest

from services.sla.policy import PolicyError, load_policy
from services.sla.policy_reload import _load_whole, policy_files

POLICIES = Path(__file__).resolve().parents[2] / "services" / "sla" / "policies"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    for name in ("default.yaml", "holidays-kota-bengkulu.yaml"):
        shutil.copy(POLICIES / name, tmp_path / name)
    return tmp_path / "default.yaml"


def test_the_policy_and_its_holidays_file_are_watched(policy: Path) -> None:
    files = policy_files(policy, load_policy(policy))
    assert [f.name for f in files] == ["default.yaml", "holidays-kota-bengkulu.yaml"]


def test_an_unchanged_policy_loads_with_the_same_version(policy: Path) -> None:
    serving = load_policy(policy)
    _, first = _load_whole(policy, serving)
    _, again = _load_whole(policy, serving)
    assert first == again
    (policy.parent / "holidays-kota-bengkulu.yaml").write_text("add: []\nremove: []\n# edited\n")
    _, edited = _load_whole(policy, serving)
    assert edited != first, "a holidays file change is a policy change"


def test_a_broken_holidays_file_is_refused_before_it_serves(policy: Path) -> None:
    serving = load_policy(policy)
    (policy.parent / "holidays-kota-bengkulu.yaml").write_text("add: [not-a-date]\n")
    with pytest.raises(PolicyError, match=r"holidays-kota-bengkulu\.yaml"):
        _load_whole(policy, serving)


def test_a_calendar_stored_tickets_may_name_cannot_be_dropped(policy: Path) -> None:
    serving = load_policy(policy)
    text = policy.read_text()
    policy.write_text(text.replace("  always:", "  nonstop:").replace("calendar: always",
                                                                      "calendar: nonstop"))
    with pytest.raises(PolicyError, match="calendars always are still used"):
        _load_whole(policy, serving)
