"""The SLA policy file: durations, targets (first match wins), validation messages."""

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.sla.calendar import AlwaysOpen, WorkingDays
from services.sla.policy import Policy, PolicyError, load_policy, parse_duration
from tests.unit.support import refusal, write_yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "services" / "sla" / "policies" / "default.yaml"
DEMO = ROOT / "examples" / "policy-demo.yaml"
DAY = 86400.0


# --- durations -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    ("5s", 5.0), ("30m", 1800.0), ("4h", 14400.0), ("5d", 432000.0), ("1.5h", 5400.0),
    (" 3 d ", 3 * DAY), (7, 7.0), (2.5, 2.5), (0, 0.0),
])
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5", "5w", "five days", "", "-5s", "5 d s", "d5", None])
def test_parse_duration_refuses_bad_values_naming_them(value: object) -> None:
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(value)
    assert repr(value) in str(caught.value)


# --- the shipped policies ------------------------------------------------------------------

def test_default_policy_loads() -> None:
    policy = load_policy(DEFAULT)
    assert policy.timezone == "Asia/Jakarta"
    assert policy.legal_ceiling_days == 60
    assert [t.name for t in policy.targets] == ["emergency", "urgent", "triage", "normative"]
    assert len(policy.escalation) == 6
    assert isinstance(policy.calendar("working_days"), WorkingDays)
    assert isinstance(policy.calendar("always"), AlwaysOpen)


def test_default_policy_normative_tier() -> None:
    normative = load_policy(DEFAULT).target_for({"agency": "DLH", "priority": "normal"})
    assert normative.name == "normative"
    assert normative.calendar == "working_days"
    assert normative.response == 5 * DAY
    assert normative.resolution == 14 * DAY


def test_demo_policy_is_24x7_with_a_five_second_response() -> None:
    policy = load_policy(DEMO)
    target = policy.target_for({"agency": "DLH", "priority": "normal"})
    assert target.name == "demo"
    assert target.response == 5.0
    assert target.resolution == 60.0
    assert isinstance(policy.calendar(target.calendar), AlwaysOpen)
    assert [(lvl.clock, lvl.level, lvl.at) for lvl in policy.escalation] == \
        [("response", 1, 0.75), ("response", 2, 1.0), ("resolution", 1, 1.0)]


@pytest.mark.parametrize(("ticket", "name"), [
    ({"agency": "DAMKAR", "priority": "normal"}, "emergency"),
    ({"agency": "BPBD", "priority": "low"}, "emergency"),
    ({"agency": "DAMKAR", "priority": "urgent"}, "emergency"),   # first match wins
    ({"agency": "DLH", "priority": "urgent"}, "urgent"),
    ({"agency": "TRIAGE", "priority": "urgent"}, "urgent"),      # first match wins
    ({"agency": "TRIAGE", "priority": "normal"}, "triage"),
    ({"agency": "DLH", "priority": "normal"}, "normative"),
    ({"agency": "EXT_PLN", "priority": "high", "channel": "sms"}, "normative"),
])
def test_target_for_first_match_wins(ticket: dict[str, object], name: str) -> None:
    assert load_policy(DEFAULT).target_for(ticket).name == name


def test_target_for_matches_channel_and_category() -> None:
    policy = Policy.model_validate(policy_content(targets=[
        target("lapor", when={"channel": ["lapor"], "category": ["jalan"]}),
        target("rest"),
    ]))
    assert policy.target_for({"channel": "lapor", "category": "jalan"}).name == "lapor"
    assert policy.target_for({"channel": "lapor", "category": "sampah"}).name == "rest"
    assert policy.target_for({"channel": "web", "category": "jalan"}).name == "rest"


def test_target_for_without_catch_all_raises() -> None:
    policy = Policy.model_validate(policy_content(targets=[target("dlh", when={"agency": ["DLH"]})]))
    with pytest.raises(LookupError, match="catch-all"):
        policy.target_for({"agency": "PUPR"})


def test_calendar_carries_tenant_dates() -> None:
    policy = Policy.model_validate(policy_content(calendars={"kerja": {
        "type": "working_days", "extra_holidays": ["2026-07-13"], "extra_working_days": ["2026-07-11"],
    }}))
    calendar = policy.calendar("kerja")
    assert isinstance(calendar, WorkingDays)
    assert calendar.timezone == "Asia/Jakarta"
    assert not calendar.is_open(date(2026, 7, 13))
    assert calendar.is_open(date(2026, 7, 11))


# --- invalid files ---------------------------------------------------------------------------

def target(name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "calendar": "kerja", "response": "5d", "resolution": "14d", **overrides}


def policy_content(**overrides: Any) -> dict[str, Any]:
    return {
        "calendars": {"kerja": {"type": "working_days"}},
        "targets": [target("normative")],
        "escalation": [{"clock": "response", "level": 1, "at": 0.75, "notify": ["agency_head"]}],
        **overrides,
    }


def write(tmp_path: Path, data: Any) -> Path:
    return write_yaml(tmp_path, data, "policy.yaml")


def refused(path: Path) -> str:
    return refusal(load_policy, PolicyError, path)


def test_valid_file_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, policy_content()))
    assert policy.targets[0].response == 5 * DAY
    assert policy.legal_ceiling_days == 60


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in refused(write(tmp_path, "targets: [unclosed\n"))


@pytest.mark.parametrize("text", ["", "- a\n", "just text\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "valid dictionary" in refused(write(tmp_path, text))


def test_unknown_calendar(tmp_path: Path) -> None:
    data = policy_content(targets=[target("normative", calendar="libur")])
    assert "target 'normative' uses unknown calendar 'libur'" in refused(write(tmp_path, data))


def test_duplicate_clock_level(tmp_path: Path) -> None:
    step = {"clock": "response", "level": 1, "at": 1.0, "notify": ["sekda"]}
    data = policy_content()
    data["escalation"].append(step)
    assert "each (clock, level) may appear once" in refused(write(tmp_path, data))


def test_same_level_on_different_clocks_is_fine(tmp_path: Path) -> None:
    data = policy_content()
    data["escalation"].append({"clock": "resolution", "level": 1, "at": 1.0, "notify": ["sekda"]})
    assert len(load_policy(write(tmp_path, data)).escalation) == 2


def test_bad_duration(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(targets=[target("normative", response="5 weeks")])))
    assert "targets.0.response" in message
    assert "'5 weeks'" in message


def test_zero_duration(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(targets=[target("normative", resolution="0s")])))
    assert "targets.0.resolution" in message


def test_unknown_calendar_type(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(calendars={"kerja": {"type": "business_hours"}})))
    assert "calendars.kerja.type" in message


def test_empty_notify_list(tmp_path: Path) -> None:
    data = policy_content(escalation=[{"clock": "response", "level": 1, "at": 1.0, "notify": []}])
    assert "escalation.0.notify" in refused(write(tmp_path, data))


def test_no_targets(tmp_path: Path) -> None:
    assert "targets" in refused(write(tmp_path, policy_content(targets=[])))


def test_misspelt_field(tmp_path: Path) -> None:
    data = policy_content(targets=[target("normative", respons="5d")])
    assert "targets.0.respons" in refused(write(tmp_path, data))
