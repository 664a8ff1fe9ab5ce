"""``disposisi lapor``: import the LAPOR! admin console's export, export the city's status
changes and replies for LAPOR!.

``import FILE`` submits each report to intake (``DISPOSISI_LAPOR_INTAKE_URL``) with the lapor
channel's key (``DISPOSISI_LAPOR_API_KEY``) and remembers its ticket in the connector's store;
it prints one line per row (LAPOR! id, outcome, tracking number or the reason, never the
report's content) and exits 1 when a row was rejected. ``export FILE`` writes the updates not
exported yet and marks them exported: run it again and only newer ones are written."""

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from services.lapor.exchange import ExchangeError, FileExchange, Format
from services.lapor.flows import Exporter, Importer, ImportSummary, IntakeClient
from services.lapor.store import LaporStore
from shared import mongo
from shared.settings import Settings


def add_commands(commands: Any) -> None:
    lapor = commands.add_parser("lapor", help="run the SP4N-LAPOR! connector alone (no "
                                              "subcommand), or import/export its files")
    sub = lapor.add_subparsers(dest="lapor_command", required=False)
    taking = sub.add_parser("import", help="import the LAPOR! admin console's export (CSV/JSON)")
    taking.add_argument("file", type=Path)
    taking.add_argument("--dry-run", action="store_true", help="check the rows; submit nothing")
    giving = sub.add_parser("export", help="write the status changes and replies not exported "
                                           "yet (CSV/JSON) and mark them exported")
    giving.add_argument("file", type=Path)
    for command in (taking, giving):
        command.add_argument("--tenant", help="the tenant (default: DISPOSISI_TENANT)")
        command.add_argument("--format", choices=["csv", "json"],
                             help="default: from the file's name")


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    tenant = args.tenant or settings.tenant
    fmt: Format | None = args.format
    try:
        if args.lapor_command == "import":
            summary = asyncio.run(import_file(settings, tenant, args.file, fmt,
                                              dry_run=args.dry_run))
            print("\n".join(summary.lines()))
            return 1 if summary.count("rejected") else 0
        written = asyncio.run(export_file(settings, tenant, args.file, fmt))
        print(f"{written} updates written to {args.file}")
        return 0
    except (ExchangeError, OSError) as error:
        print(f"disposisi lapor: {error}", file=sys.stderr)
        return 2


async def import_file(settings: Settings, tenant: str, path: Path, fmt: Format | None, *,
                      dry_run: bool = False) -> ImportSummary:
    rows = FileExchange(source=path, format=fmt).dispositioned()
    key = settings.lapor_api_key.get_secret_value()
    if not key and not dry_run:
        raise ExchangeError("DISPOSISI_LAPOR_API_KEY is not set (disposisi admin create-api-key "
                            "--channel lapor)")
    client = mongo.connect(settings)
    try:
        store = LaporStore(mongo.database(client, settings))
        await store.ensure_indexes()
        async with httpx.AsyncClient(timeout=settings.lapor_import_timeout_seconds) as http:
            importer = Importer(store, IntakeClient(http, settings.lapor_intake_url, key), tenant)
            return await importer.run(rows, dry_run=dry_run)
    finally:
        await client.close()


async def export_file(settings: Settings, tenant: str, path: Path, fmt: Format | None) -> int:
    exchange = FileExchange(target=path, format=fmt)
    client = mongo.connect(settings)
    try:
        store = LaporStore(mongo.database(client, settings))
        await store.ensure_indexes()
        return await Exporter(store, exchange, tenant).run()
    finally:
        await client.close()
