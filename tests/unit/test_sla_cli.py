"""``disposisi calendar due`` and ``disposisi calendar elapsed`` against the default tenant's policy."""

from pathlib import Path

import pytest
import yaml

from services.cli import main

Output = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Output:
    code = main(["calendar", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def line(output: str, label: str) -> str:
    return next(text for text in output.splitlines() if text.startswith(label))


def test_due_in_working_days_prints_local_and_utc(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "--start", "2026-07-06T10:00", "--working-days", "3")
    assert code == 0
    assert "Thu 2026-07-09 10:00:00 WIB" in line(out, "due:")
    assert line(out, "due (UTC):").endswith("2026-07-09T03:00:00Z")
    assert "working_hours (Asia/Jakarta)" in line(out, "calendar:")


def test_due_skips_idul_fitri_and_cuti_bersama(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "--start", "2026-03-17T15:00+07:00", "--working-hours", "2")
    assert code == 0
    assert "Wed 2026-03-25 08:30:00 WIB" in line(out, "due:")


def test_an_offset_is_honoured_and_naive_is_local(capsys: pytest.CaptureFixture[str]) -> None:
    _, with_offset, _ = run(capsys, "due", "--start", "2026-07-06T03:00Z", "--working-hours", "1")
    _, naive, _ = run(capsys, "due", "--start", "2026-07-06T10:00", "--working-hours", "1")
    assert line(with_offset, "due (UTC):") == line(naive, "due (UTC):")
    assert line(naive, "due (UTC):").endswith("2026-07-06T04:00:00Z")


def test_due_on_the_24x7_calendar(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "due", "--start", "2026-07-10T10:00", "--working-days", "1",
                       "--calendar", "always")
    assert code == 0
    assert "Sat 2026-07-11 10:00:00 WIB" in line(out, "due:")


def test_elapsed_prints_hours_minutes_and_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "elapsed", "--from", "2026-07-10T12:00", "--to", "2026-07-13T12:00:30")
    assert code == 0
    assert line(out, "working time:") == "working time: 9 h 00 min 30 s (32430 s)"


def test_elapsed_backwards_is_zero(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "elapsed", "--from", "2026-07-13T12:00", "--to", "2026-07-10T12:00")
    assert line(out, "working time:") == "working time: 0 h 00 min (0 s)"


def test_a_policy_file_can_be_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"timezone": "Asia/Makassar", "calendars": {
        "kantor": {"type": "working_hours", "hours": {"sat": "08:00-12:00"}}}}))
    code, out, _ = run(capsys, "due", "--start", "2026-07-10T16:00", "--working-hours", "1",
                       "--policy", str(policy), "--calendar", "kantor")
    assert code == 0
    assert "Sat 2026-07-11 08:30:00 WITA" in line(out, "due:")


@pytest.mark.parametrize(("args", "expected"), [
    (("due", "--start", "yesterday", "--working-days", "1"), "--start 'yesterday': not an ISO 8601"),
    (("elapsed", "--from", "2026-07-10", "--to", "2026-13-01"), "--to '2026-13-01': not an ISO 8601"),
    (("due", "--start", "2026-07-10", "--working-days", "1", "--calendar", "libur"),
     "no calendar 'libur'; known: working_hours, always"),
    (("due", "--start", "2026-07-10", "--working-days", "-1"), "--working-days -1: must be a number"),
    (("due", "--start", "2026-07-10", "--working-hours", "-1"), "--working-hours -1: must be"),
    (("due", "--start", "2026-07-10", "--working-hours", "nan"), "--working-hours nan: must be"),
])
def test_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                        expected: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("disposisi calendar: ")
    assert expected in err


def test_a_bad_policy_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"calendars": {"kantor": {"type": "working_hours",
                                                               "holidays_file": "missing.yaml"},
                                                    "rusak": {"type": "office"}}}))
    for calendar, expected in (("kantor", f"{tmp_path / 'missing.yaml'}: cannot read"),
                               ("rusak", f"{policy}: calendars.rusak.type")):
        code, _, err = run(capsys, "due", "--start", "2026-07-10", "--working-days", "1",
                           "--policy", str(policy), "--calendar", calendar)
        assert code == 2
        assert expected in err


def test_broken_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("calendars:\n  kantor: [\n")
    code, _, err = run(capsys, "due", "--start", "2026-07-10", "--working-days", "1",
                       "--policy", str(policy))
    assert code == 2
    assert err.count("\n") == 1
    assert f"{policy}: not valid YAML" in err


def test_a_missing_policy_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "elapsed", "--from", "2026-07-10", "--to", "2026-07-11",
                       "--policy", str(tmp_path / "none.yaml"))
    assert code == 2
    assert f"{tmp_path / 'none.yaml'}: cannot read" in err


def test_help_says_how_naive_instants_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["calendar", "due", "--help"])
    assert "read in the calendar's" in capsys.readouterr().out
