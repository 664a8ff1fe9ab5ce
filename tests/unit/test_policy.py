"""The SLA policy file: targets (first match wins), pauses, ceiling, ladder, validation messages."""

from pathlib import Path
from typing import Any

import pytest

from services.sla.policy import Policy, PolicyError, WorkDuration, load_policy
from tests.unit.support import refusal, write_yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "services" / "sla" / "policies" / "default.yaml"
DEMO = ROOT / "examples" / "policy-demo.yaml"


# --- the shipped policies ------------------------------------------------------------------

def test_default_policy_loads_with_the_domain_defaults() -> None:
    policy = load_policy(DEFAULT)
    assert policy.timezone == "Asia/Jakarta"
    assert (policy.ceiling.calendar, policy.ceiling.after) == ("always", WorkDuration(60, "d"))
    assert policy.calendars["always"].type == "24x7"
    assert policy.calendars["working_hours"].type == "working_hours"
    assert [t.name for t in policy.targets] == ["emergency", "urgent", "triage", "normative"]
    assert policy.pauses.max_per_ticket >= 1


def test_default_policy_tiers() -> None:
    policy = load_policy(DEFAULT)
    normative = policy.target_for({"agency": "DLH", "priority": "normal"})
    assert (normative.calendar, normative.response, normative.resolution) == \
        ("working_hours", WorkDuration(5, "d"), WorkDuration(14, "d"))
    triage = policy.target_for({"agency": "TRIAGE", "priority": "normal"})
    assert triage.response == WorkDuration(3, "d")  # LAPOR!: verify and disposition in 3 days
    urgent = policy.target_for({"agency": "DLH", "priority": "urgent"})
    assert urgent.calendar == "always"
    assert urgent.response.unit == "h"


def test_default_ladder_ends_with_the_ombudsman() -> None:
    policy = load_policy(DEFAULT)
    last = policy.levels("ceiling")[-1]
    assert "ombudsman" in last.notify
    assert [lvl.level for lvl in policy.levels("response")] == [1, 2, 3]
    assert policy.levels("response")[2].after_breach is not None


def test_default_policy_watches_rerouting() -> None:
    policy = load_policy(DEFAULT)
    assert policy.routing is not None
    assert policy.routing.within == WorkDuration(1, "d")
    assert [lvl.notify for lvl in policy.levels("routing")] == [["agency_head"]]


def test_unknown_routing_calendar(tmp_path: Path) -> None:
    data = policy_content(routing={"calendar": "kalender", "within": "1d"})
    assert "routing uses unknown calendar 'kalender'" in refused(write(tmp_path, data))


def test_demo_policy_is_24x7_with_a_five_second_response() -> None:
    policy = load_policy(DEMO)
    target = policy.target_for({"agency": "DLH", "priority": "normal"})
    assert (target.name, target.calendar) == ("demo", "always")
    assert target.response == WorkDuration(5, "s")
    assert policy.calendars["always"].type == "24x7"
    assert [(lvl.level, lvl.at) for lvl in policy.levels("response")] == [(1, 0.75), (2, 1.0)]


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


def test_level_trigger_texts() -> None:
    policy = Policy.model_validate(policy_content(escalation=[
        {"clock": "response", "level": 1, "at": 0.75, "notify": ["agency_head"]},
        {"clock": "response", "level": 2, "after_breach": "2d", "notify": ["sekda"],
         "renotify": "1d"},
    ]))
    first, second = policy.levels("response")
    assert first.trigger_text == "75% of response target"
    assert second.trigger_text == "2d after response breach"
    assert second.renotify == WorkDuration(1, "d")


# --- invalid files ---------------------------------------------------------------------------

def target(name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "calendar": "kerja", "response": "5d", "resolution": "14d", **overrides}


def policy_content(**overrides: Any) -> dict[str, Any]:
    return {
        "calendars": {"kerja": {"type": "working_hours"}, "always": {"type": "24x7"}},
        "ceiling": {"calendar": "always", "after": "60d"},
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
    assert policy.targets[0].response == WorkDuration(5, "d")
    assert policy.targets[0].update is None


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


def test_unknown_ceiling_calendar(tmp_path: Path) -> None:
    data = policy_content(ceiling={"calendar": "kalender", "after": "60d"})
    assert "ceiling uses unknown calendar 'kalender'" in refused(write(tmp_path, data))


def test_last_target_must_catch_all(tmp_path: Path) -> None:
    data = policy_content(targets=[target("dlh", when={"agency": ["DLH"]})])
    assert "catch-all" in refused(write(tmp_path, data))


def test_duplicate_clock_level(tmp_path: Path) -> None:
    step = {"clock": "response", "level": 1, "at": 1.0, "notify": ["sekda"]}
    data = policy_content()
    data["escalation"].append(step)
    assert "each (clock, level) may appear once" in refused(write(tmp_path, data))


def test_same_level_on_different_clocks_is_fine(tmp_path: Path) -> None:
    data = policy_content()
    data["escalation"].append({"clock": "resolution", "level": 1, "at": 1.0, "notify": ["sekda"]})
    assert len(load_policy(write(tmp_path, data)).escalation) == 2


@pytest.mark.parametrize("trigger", [{}, {"at": 1.0, "after_breach": "1d"}])
def test_a_level_needs_exactly_one_trigger(tmp_path: Path, trigger: dict[str, Any]) -> None:
    data = policy_content(escalation=[{"clock": "response", "level": 1, "notify": ["sekda"], **trigger}])
    message = refused(write(tmp_path, data))
    assert "escalation.0" in message
    assert "exactly one trigger" in message


def test_unknown_clock(tmp_path: Path) -> None:
    data = policy_content(escalation=[{"clock": "reply", "level": 1, "at": 1.0, "notify": ["x"]}])
    assert "escalation.0.clock" in refused(write(tmp_path, data))


def test_bad_duration(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(targets=[target("normative", response="5 weeks")])))
    assert "targets.0.response" in message
    assert "'5 weeks'" in message


def test_zero_duration(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(targets=[target("normative", resolution="0s")])))
    assert "targets.0" in message
    assert "targets.0.resolution" in message and "must be more than zero" in message


def test_zero_renotify(tmp_path: Path) -> None:
    data = policy_content(escalation=[{"clock": "response", "level": 1, "at": 1.0,
                                       "notify": ["sekda"], "renotify": "0h"}])
    message = refused(write(tmp_path, data))
    assert "escalation.0.renotify" in message and "must be more than zero" in message


def test_pause_limit_cannot_be_negative(tmp_path: Path) -> None:
    data = policy_content(pauses={"max_per_ticket": -1})
    assert "pauses.max_per_ticket" in refused(write(tmp_path, data))


def test_unknown_calendar_type(tmp_path: Path) -> None:
    message = refused(write(tmp_path, policy_content(calendars={"kerja": {"type": "business_hours"},
                                                                "always": {"type": "24x7"}})))
    assert "calendars.kerja.type" in message


def test_empty_notify_list(tmp_path: Path) -> None:
    data = policy_content(escalation=[{"clock": "response", "level": 1, "at": 1.0, "notify": []}])
    assert "escalation.0.notify" in refused(write(tmp_path, data))


def test_no_targets(tmp_path: Path) -> None:
    assert "targets" in refused(write(tmp_path, policy_content(targets=[])))


def test_misspelt_field(tmp_path: Path) -> None:
    data = policy_content(targets=[target("normative", respons="5d")])
    assert "targets.0.respons" in refused(write(tmp_path, data))
