"""Working-time arithmetic of one SLA clock with pauses: how much working time has run, and
when a given amount will have run. Pure functions; instants are UTC-aware datetimes.

A pause is a ``(started_at, ended_at)`` interval (``ended_at`` None while it lasts); paused
working time does not count, so every instant after a pause shifts by its working length.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from services.sla.calendar import Calendar, WorkDuration, due

Pause = tuple[datetime, datetime | None]


def pause_intervals(pauses: Iterable[dict[str, Any]]) -> list[Pause]:
    """The stored pause records as sorted intervals."""
    return sorted(((p["started_at"], p.get("ended_at")) for p in pauses), key=lambda p: p[0])


def closed_at(pauses: Sequence[Pause], now: datetime) -> list[Pause]:
    """Pauses with a running one ended at ``now``: for figures as of now."""
    return [(start, end if end is not None else now) for start, end in pauses]


def paused_seconds(calendar: Calendar, start: datetime, end: datetime,
                   pauses: Sequence[Pause]) -> float:
    """Working seconds of pauses inside [start, end]; a running pause counts up to ``end``."""
    total = 0.0
    for pause_start, pause_end in pauses:
        lower = max(pause_start, start)
        upper = min(pause_end if pause_end is not None else end, end)
        if upper > lower:
            total += calendar.elapsed(lower, upper)
    return total


def working_elapsed(calendar: Calendar, start: datetime, end: datetime,
                    pauses: Sequence[Pause] = ()) -> float:
    """Working seconds from start to end, paused time excluded."""
    if end <= start:
        return 0.0
    return max(0.0, calendar.elapsed(start, end) - paused_seconds(calendar, start, end, pauses))


def instant_at(calendar: Calendar, start: datetime, offset: float,
               pauses: Sequence[Pause] = ()) -> datetime | None:
    """When ``offset`` working seconds (pauses excluded) will have run since ``start``; None
    while a running pause stands in the way (the instant is unknown until it ends)."""
    candidate = calendar.add(start, offset)
    for pause_start, pause_end in pauses:
        if pause_end is not None and pause_end <= start:
            continue
        if pause_start >= candidate:
            break
        if pause_end is None:
            return None
        # Pauses never overlap, so each one pushes the candidate by its own working length.
        candidate = calendar.add(candidate, calendar.elapsed(max(pause_start, start), pause_end))
    return candidate


def span_seconds(calendar: Calendar, start: datetime, duration: WorkDuration) -> float:
    """A duration as working seconds counted from ``start`` ('5d' from a Friday 10:00 is the
    working time up to the fifth working day after, whatever the opening hours)."""
    return calendar.elapsed(start, due(calendar, start, duration))
