"""The exchange with SP4N-LAPOR!, behind one small interface.

LAPOR!'s API is not public, so the connector never depends on it: everything it needs from
LAPOR! is "which reports were dispositioned to us" and everything it gives back is "these
status changes and replies". ``LaporExchange`` is that interface. ``FileExchange`` does it
today with the files an admin instansi moves by hand: the admin console's export (CSV or JSON)
in, and a file of updates (CSV or JSON) out, for the admin to enter or upload. A city with
API access writes another class with the same two methods; nothing else changes.

Export file format (in): CSV with a header row, UTF-8 (a BOM is allowed), comma or semicolon
separated; or JSON, a list of objects (or ``{"laporan": [...]}``) with the same names as keys.
Columns: see ``domain.COLUMNS`` (and README, SP4N-LAPOR!)."""

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from services.lapor.domain import (
    EXPORT_COLUMNS,
    REQUIRED_COLUMNS,
    Parsed,
    RowError,
    UpdateDoc,
    export_row,
    parse_row,
)

Format = Literal["csv", "json"]


class ExchangeError(ValueError):
    """The whole file cannot be read (not one row): its reason, naming no content."""


class LaporExchange(Protocol):
    def dispositioned(self) -> list[Parsed]:
        """The reports LAPOR! dispositioned to the city, each parsed or refused with its
        reason. A report may come again (an overlapping export): the importer dedupes."""

    def send(self, updates: Sequence[UpdateDoc]) -> None:
        """Hand LAPOR! these status changes and replies; raises when they did not go (the
        connector then keeps them pending)."""


def format_of(path: Path, given: Format | None = None) -> Format:
    if given is not None:
        return given
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ExchangeError(f"{path.name}: give --format csv or json (the name ends in "
                            f"{suffix or 'nothing'})")
    return "csv" if suffix == ".csv" else "json"


@dataclass(frozen=True)
class FileExchange:
    """The admin console's export file in (``source``), a file of updates out (``target``)."""

    source: Path | None = None
    target: Path | None = None
    format: Format | None = None

    def dispositioned(self) -> list[Parsed]:
        if self.source is None:
            raise ExchangeError("no export file given")
        try:
            content = self.source.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ExchangeError(f"{self.source.name}: not UTF-8 text") from None
        rows = read_csv(content) if format_of(self.source, self.format) == "csv" \
            else read_json(content)
        return [parse_row(n, row) if isinstance(row, dict)
                else RowError(row=n, reason="(row): not an object")
                for n, row in enumerate(rows, start=1)]

    def send(self, updates: Sequence[UpdateDoc]) -> None:
        if self.target is None:
            raise ExchangeError("no output file given")
        rows = [export_row(u) for u in updates]
        if format_of(self.target, self.format) == "json":
            text = json.dumps({"pembaruan": rows}, ensure_ascii=False, indent=2) + "\n"
        else:
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
            text = out.getvalue()
        # Whole or not at all: a half-written file must not look like a complete export.
        partial = self.target.with_name(self.target.name + ".part")
        partial.write_text(text, encoding="utf-8")
        partial.replace(self.target)


def read_csv(content: str) -> list[dict[str, Any]]:
    first = content.splitlines()[0] if content.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = {(h or "").strip().lower() for h in reader.fieldnames or []}
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ExchangeError(f"the CSV header lacks the column(s) {', '.join(missing)}")
    return list(reader)


def read_json(content: str) -> list[Any]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as error:
        raise ExchangeError(f"not JSON (line {error.lineno}, column {error.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("laporan"), list):
        data = data["laporan"]
    if not isinstance(data, list):
        raise ExchangeError('expected a JSON list of reports (or {"laporan": [...]})')
    return data
