"""The compliance chart's geometry, drawn by the dashboard's template as inline SVG (no
script, no chart library): per agency a bar of its on-time percentage over the policy's
zones (red below ``red_below``, green from ``green``, yellow between). Pure: report rows in,
rectangles and labels out. The table beside it carries the same figures for screen readers."""

from dataclasses import dataclass
from typing import Any

METRICS = ("responded_on_time", "resolved_on_time")
WIDTH = 720
LABEL_WIDTH = 130  # the agency codes left of the bars
PLOT_WIDTH = WIDTH - LABEL_WIDTH - 60  # room for the percentage right of a full bar
TOP = 28  # the zone names above the bars
ROW_HEIGHT = 28
BAR_HEIGHT = 18
AXIS_HEIGHT = 24


@dataclass(frozen=True)
class Band:
    zone: str  # red, yellow, green
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    group: str
    y: float
    width: float | None  # None: no verdict yet in the period
    percent: float | None
    zone: str | None  # the bar's own zone for this metric


@dataclass(frozen=True)
class Chart:
    metric: str
    width: int
    height: int
    plot_x: int
    plot_width: int
    bands: list[Band]
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (x, percent)


def x_of(percent: float) -> float:
    return LABEL_WIDTH + PLOT_WIDTH * max(0.0, min(100.0, percent)) / 100


def zone_of(percent: float | None, green: float, red_below: float) -> str | None:
    if percent is None:
        return None
    return "green" if percent >= green else "red" if percent < red_below else "yellow"


def compliance_chart(rows: list[dict[str, Any]], zones: dict[str, Any], metric: str) -> Chart:
    """One metric's chart (``responded_on_time`` or ``resolved_on_time``) for the report's
    rows, in their order."""
    green = float(zones["green"][metric])
    red_below = float(zones["red_below"][metric])
    bands = [Band("red", x_of(0), x_of(red_below) - x_of(0)),
             Band("yellow", x_of(red_below), x_of(green) - x_of(red_below)),
             Band("green", x_of(green), x_of(100) - x_of(green))]
    bars = []
    for index, row in enumerate(rows):
        percent = row.get(f"{metric}_pct")
        value = None if percent is None else float(percent)
        bars.append(Bar(str(row["group"]), TOP + index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                        None if value is None else x_of(value) - x_of(0), value,
                        zone_of(value, green, red_below)))
    height = TOP + max(1, len(rows)) * ROW_HEIGHT + AXIS_HEIGHT
    ticks = [(x_of(p), p) for p in (0, 25, 50, 75, 100)]
    return Chart(metric, WIDTH, height, LABEL_WIDTH, PLOT_WIDTH, bands, bars, ticks)
