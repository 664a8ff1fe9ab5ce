"""The SP4N-LAPOR! connector end to end, on the real pipeline: the admin console's CSV and
JSON exports imported through intake's API (the photo fetched by its URL), the tickets routed
to the agencies' queues with the reporter's identity hidden, an agency's reply and
resolution recorded in LAPOR!'s terms (by a connector that was down until then and catches up from
the topics) and exported once, and a re-import that creates nothing."""

import asyncio
import csv
import functools
import io
import json
from argparse import Namespace
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from PIL import Image
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from services.lapor import cli as lapor_cli
from services.lapor.app import create_app as lapor_app
from services.lapor.domain import Parsed, UpdateDoc
from services.lapor.flows import Exporter
from services.lapor.store import LaporStore
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.outage_support import pipeline
from tests.integration.support import eventually, serving

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data" / "lapor"
CSV_PHOTO = "https://foto.example.org/tps-1.jpg"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(out, format="PNG")
    return out.getvalue()


@asynccontextmanager
async def photo_host() -> AsyncIterator[str]:
    app = FastAPI()
    photo = png()

    @app.get("/tps-1.png")
    async def tps() -> Response:
        return Response(photo, media_type="image/png")

    _ = tps
    port = free_port()
    async with serving(app, port, consumers_assigned=False):
        yield f"http://127.0.0.1:{port}/tps-1.png"


def cli(settings: Settings, command: str, path: Path, dry_run: bool) -> int:
    args = Namespace(lapor_command=command, file=path, tenant=None, format=None,
                     dry_run=dry_run)
    return lapor_cli.run(args, settings)


async def run_cli(settings: Settings, command: str, path: Path, *, dry_run: bool = False) -> int:
    return await asyncio.to_thread(cli, settings, command, path, dry_run)


async def ticket(http: httpx.AsyncClient, sla: str, ticket_id: str,
                 headers: dict[str, str]) -> dict[str, Any] | None:
    answer = await http.get(f"{sla}/v1/tickets/{ticket_id}", headers=headers)
    return answer.json() if answer.status_code == 200 and answer.json().get("agency") else None


def exported(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


async def test_lapor_exports_in_tickets_routed_replies_out_and_reimport_creates_nothing(
        settings: Settings, accounts: Accounts, mongo: AsyncMongoClient[Document], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = (await accounts.channel("lapor")).headers["X-API-Key"]
    supervisor = (await accounts.user("inspektorat", "supervisor")).headers
    triage = (await accounts.user("meja.triase", "triage")).headers
    async with AsyncExitStack() as stack:
        photo = await stack.enter_async_context(photo_host())
        settings = settings.model_copy(update={
            "lapor_api_key": SecretStr(key), "lapor_port": free_port(),
            "attachment_fetch_private": True})
        urls = await stack.enter_async_context(pipeline(settings))
        settings = settings.model_copy(update={"lapor_intake_url": urls.intake})
        export_csv = tmp_path / "lapor-export.csv"
        export_csv.write_text((DATA / "export.csv").read_text().replace(CSV_PHOTO, photo))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))

        down = settings.model_copy(update={"lapor_intake_url": f"http://127.0.0.1:{free_port()}"})
        assert await run_cli(down, "import", export_csv) == 1
        assert "0 new, 0 already imported, 0 to import (dry run), 4 rejected" in \
            capsys.readouterr().out, "intake down: nothing imported, nothing remembered"
        assert await run_cli(settings, "import", export_csv) == 1, "two rows are refused"
        first_run = capsys.readouterr().out
        assert await run_cli(settings, "import", DATA / "export.json") == 1
        json_run = capsys.readouterr().out
        ids = dict(line.split(": new ")[0:2] for line in (first_run + json_run).splitlines()
                   if ": new " in line)
        tickets = {line.split("(")[1].split(")")[0]: t for line, t in ids.items()}
        assert sorted(tickets) == ["LPR-2026-0001", "LPR-2026-0002", "LPR-2026-0101"]
        assert "2 new, 0 already imported, 0 to import (dry run), 2 rejected" in first_run
        assert "row 3 (LPR-2026-0003): rejected: isi_laporan:" in first_run
        assert "row 4 (LPR-2026-0004): rejected: tanggal_laporan:" in first_run
        assert "row 3 (no valid id): rejected" in json_run
        for secret in ("Budi", "Siti", "Rahasia", "0812", "Dewi", "kemarin", "pendek"):
            assert secret not in first_run + json_run

        routed = {lapor_id: await eventually(functools.partial(ticket, http, urls.sla, t,
                                                              supervisor), timeout=120)
                  for lapor_id, t in tickets.items()}
        sampah, jalan = routed["LPR-2026-0001"], routed["LPR-2026-0002"]
        assert sampah["agency"] == "DLH" and jalan["agency"] == "PUPR"
        # A text that names no agency goes where LAPOR!'s category points (the router's hint).
        assert routed["LPR-2026-0101"]["agency"] == "DISHUB"
        assert all(t["channel"] == "lapor" for t in routed.values())
        assert jalan["anonymous"] and "9999" not in json.dumps(jalan), "a contact is masked"
        assert routed["LPR-2026-0101"]["confidential"]
        assert all(t.get("reporter") is None for t in routed.values())

        officer = (await accounts.user("dlh.petugas", "officer", "DLH")).headers
        sampah_id = tickets["LPR-2026-0001"]
        attachments = await eventually(lambda: _attachments(http, urls.intake, sampah_id, officer),
                                       timeout=60)
        assert attachments[0]["mime"] == "image/png" and attachments[0]["thumbnail_id"]
        for action, note in (("responded", "Petugas kami menuju lokasi besok pagi."),
                             ("resolved", "Sampah sudah diangkut, TPS dibersihkan.")):
            answer = await http.post(f"{urls.sla}/v1/tickets/{sampah_id}/events",
                                     json={"action": action, "note": note}, headers=officer)
            assert answer.status_code == 200, answer.text
        # The connector was down all along: started now, it catches up from the topics.
        lapor = await stack.enter_async_context(serving(lapor_app(settings), settings.lapor_port))
        pending = await eventually(lambda: _pending(http, lapor, triage, 5), timeout=120)
        assert {u["status"] for u in pending} == {"Terdisposisi", "Ditindaklanjuti", "Selesai"}

        with pytest.raises(OSError):  # the exchange fails: every update stays pending
            await Exporter(LaporStore(mongo[settings.mongodb_database]), Unwritable(),
                           settings.tenant).run()
        assert await _pending(http, lapor, triage, len(pending)) is not None
        out = tmp_path / "untuk-lapor.csv"
        assert await run_cli(settings, "export", out) == 0
        rows = exported(out)
        mine = [(r["status"], r["tanggapan"]) for r in rows if r["id_laporan"] == "LPR-2026-0001"]
        assert mine == [("Terdisposisi", ""),
                        ("Ditindaklanjuti", "Petugas kami menuju lokasi besok pagi."),
                        ("Selesai", "Sampah sudah diangkut, TPS dibersihkan.")]
        assert {r["nomor_tracking"] for r in rows} == {"1234567", "1234568", "2234567"}
        assert {r["id_laporan"] for r in rows if r["status"] == "Terdisposisi"} == set(tickets)
        again = tmp_path / "lagi.json"
        assert await run_cli(settings, "export", again) == 0
        assert json.loads(again.read_text()) == {"pembaruan": []}, "exported once"
        still = await http.get(f"{lapor}/v1/lapor/updates", params={"exported": "false"},
                               headers=triage)
        assert still.json()["updates"] == []

        capsys.readouterr()
        assert await run_cli(settings, "import", export_csv) == 1
        rerun = capsys.readouterr().out
        assert "0 new, 2 already imported" in rerun
        assert f"row 1 (LPR-2026-0001): already imported {sampah_id}" in rerun
        assert await run_cli(settings, "import", DATA / "export.json") == 1
        assert "0 new, 1 already imported" in capsys.readouterr().out
        fresh = tmp_path / "baru.csv"
        fresh.write_text("id_laporan,isi_laporan\nLPR-2026-0999,Trotoar di depan pasar rusak parah\n"
                         "LPR-2026-0001,Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut\n")
        for _ in range(2):  # a dry run submits and remembers nothing
            assert await run_cli(settings, "import", fresh, dry_run=True) == 0
            assert "1 already imported, 1 to import (dry run)" in capsys.readouterr().out


class Unwritable:
    """An exchange whose far side is gone (a full disk, LAPOR! unreachable)."""

    def dispositioned(self) -> list[Parsed]:
        return []

    def send(self, updates: Sequence[UpdateDoc]) -> None:
        raise OSError("no space left on device")


async def _attachments(http: httpx.AsyncClient, intake: str, ticket_id: str,
                       headers: dict[str, str]) -> list[dict[str, Any]] | None:
    answer = await http.get(f"{intake}/v1/tickets/{ticket_id}/attachments", headers=headers)
    found: list[dict[str, Any]] = answer.json().get("attachments", []) if answer.status_code == 200 \
        else []
    return found or None


async def _pending(http: httpx.AsyncClient, lapor: str, headers: dict[str, str],
                   n: int) -> list[dict[str, Any]] | None:
    answer = await http.get(f"{lapor}/v1/lapor/updates", params={"exported": "false"},
                            headers=headers)
    updates: list[dict[str, Any]] = answer.json()["updates"]
    return updates if len(updates) >= n else None
