"""``OpenFigures.add``: the open tickets' sums kept up to date ticket by ticket (a ticket that
changed is taken away as it was and added as it is) equal the sums built afresh, at every
moment of a report; taking away what the figures do not hold is an error, not a silent skew."""

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.sla.read_model import OpenFigures, local_day, open_part
from tests.unit.test_sla_reports import DAY, HOUR, NOW, START, assignment, ticket

TIMEZONE = "Asia/Jakarta"


def tickets_now() -> list[dict[str, Any]]:
    return [ticket(f"T-{n}", at=START + n * DAY, agency=("DLH", "PUPR")[n % 2],
                   response_due_at=START + n * DAY + 30 * HOUR) for n in range(6)]


def figures_at(figures: OpenFigures, when_days: int) -> object:
    zone = ZoneInfo(TIMEZONE)
    start, end = local_day(START, zone), local_day(NOW, zone)
    counts, backlog = figures.at(START + when_days * DAY, ("agency", "total"), start, end)
    # Zero counts left behind by a taken-away ticket are no figures.
    return ({k: +c for k, c in counts.items() if +c}, {k: +c for k, c in backlog.items() if +c})


def test_figures_kept_ticket_by_ticket_equal_figures_summed_afresh() -> None:
    before = tickets_now()
    figures = OpenFigures.of(open_part(t, TIMEZONE) for t in before)
    moved_at = START + 3 * DAY + 2 * HOUR
    changed = {**before[2], "agency": "DISHUB", "assignment": 2, "assigned_at": moved_at,
               "assignments": [{**before[2]["assignments"][0], "ended_at": moved_at,
                                "outcome": "rerouted"}, assignment("DISHUB", 2, moved_at)]}
    figures.add(open_part(before[2], TIMEZONE), -1)
    figures.add(open_part(changed, TIMEZONE))
    figures.add(open_part(before[4], TIMEZONE), -1)  # resolved: no longer open
    after = [t for t in before if t["_id"] not in ("T-2", "T-4")] + [changed]
    afresh = OpenFigures.of(open_part(t, TIMEZONE) for t in after)
    for days in (0, 2, 4, 9, 40):  # running clocks turn late, tickets age
        assert figures_at(figures, days) == figures_at(afresh, days), days
    assert figures_at(figures, 40) != figures_at(OpenFigures.of(
        open_part(t, TIMEZONE) for t in before), 40)


def test_taking_away_a_part_the_figures_do_not_hold_is_an_error() -> None:
    figures = OpenFigures.of([open_part(tickets_now()[0], TIMEZONE)])
    stranger = open_part(ticket("T-x", at=START + 20 * DAY), TIMEZONE)
    with pytest.raises(ValueError, match="do not hold"):
        figures.add(stranger, -1)
