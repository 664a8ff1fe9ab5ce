"""Working durations as policies write them: '5d' is five working days, '4h' four working hours."""

import re
from typing import Literal, NamedTuple

Unit = Literal["d", "h", "m", "s"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


class WorkDuration(NamedTuple):
    """An amount of working time: whole working days ('d'), or office hours, minutes, seconds."""

    amount: float
    unit: Unit

    @property
    def seconds(self) -> float:
        """Working seconds of an hours/minutes/seconds duration; days have no fixed length."""
        if self.unit == "d":
            raise ValueError(f"duration {self}: working days have no fixed length in seconds")
        return self.amount * _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


def parse_duration(value: object) -> WorkDuration:
    """'5d', '4h', '1.5h', '30m', '10s' -> WorkDuration; days must be whole, amounts above zero."""
    if isinstance(value, WorkDuration):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"duration {value!r}: expected a number and a unit d, h, m or s, e.g. '5d' "
                         "(d = working days, h = working hours)")
    amount, unit = float(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"duration {value!r}: must be more than zero")
    if unit == "d" and not amount.is_integer():
        raise ValueError(f"duration {value!r}: working days must be whole; write hours instead, "
                         "e.g. '12h'")
    return WorkDuration(amount, unit)  # type: ignore[arg-type]  # the regex allows only d, h, m, s
