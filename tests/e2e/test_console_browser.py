"""The console in a real browser (Debian's headless Chromium, driven by Playwright) against
`disposisi dev` on free ports with the demo policy: a citizen submits on the public form, the
DLH officer sees it arrive in the inbox without reloading, asks for information, the citizen
answers on the tracking page, the clock resumes, the officer resolves. The supervisor sees an
escalation arrive live on the dashboard and acknowledges it; the triage desk assigns a
complaint the router could not decide, on a phone. Each page is saved as a
screenshot: in the test's temporary directory, or in DISPOSISI_TEST_SCREENSHOTS (set it to
docs/screenshots to refresh the ones the README shows)."""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.dev_support import DevSystem
from tests.e2e.support import stop

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = os.environ.get("DISPOSISI_TEST_CHROMIUM", "/usr/bin/chromium")
# A test run must not rewrite the README's pictures unless asked to.
SCREENSHOTS = Path(os.environ.get("DISPOSISI_TEST_SCREENSHOTS")
                   or tempfile.mkdtemp(prefix="disposisi-screenshots-"))
COMPLAINT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat sampai ke rumah warga"
WAIT_MS = 90_000  # a loaded machine: generous, never a speed assertion
expect.set_options(timeout=30_000)  # sign-in hashes a password (Argon2) on a busy machine


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSystem]:
    """One running system for the file's tests (starting `disposisi dev` is most of their
    time). They keep out of each other's way: each finds its tickets by their numbers, and the
    first, whose officer counts the open tickets of DLH's inbox, runs first (file order) and
    resolves the one it opened."""
    tmp_path = tmp_path_factory.mktemp("console-browser")
    system = DevSystem(tmp_path / "data", tmp_path / "dev.log")
    try:
        system.wait_for_output("Disposisi is running", timeout=240)
        system.wait_ready()
        yield system
    finally:
        stop(system.process, timeout=90)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"])
        try:
            yield launched
        finally:
            await launched.close()


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def _sign_in(page: Page, dev: DevSystem, username: str, *, heading: str = "Kotak masuk DLH",
                   shot: str | None = "01-login") -> None:
    await page.goto(f"{dev.console}/login")
    # By keyboard alone: the name, Tab to the password, Enter sends the form.
    await page.get_by_label("Nama pengguna").fill(username)
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "password"
    await page.keyboard.type(dev.credentials()["users"][username]["password"])
    if shot:
        await _shot(page, shot)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=heading)).to_be_visible()


async def test_an_officer_and_a_citizen_take_a_complaint_from_arrival_to_resolution(
        dev: DevSystem, browser: Browser) -> None:
    # Browsers set up in Indonesian (the console answers a browser asking for English in English).
    officer = await (await browser.new_context(viewport={"width": 1280, "height": 800},
                                               locale="id-ID")).new_page()
    citizen = await (await browser.new_context(viewport={"width": 390, "height": 844},
                                               is_mobile=True, locale="id-ID")).new_page()
    await _sign_in(officer, dev, "dlh.petugas")
    await officer.evaluate("window.notReloaded = true")  # gone if the page ever reloads

    # The citizen submits on the public form and is shown the number and code once.
    await citizen.goto(f"{dev.console}/submit")
    await citizen.get_by_label("Apa yang ingin Anda adukan?").fill(COMPLAINT)
    await citizen.get_by_label("Kelurahan").fill("Padang Jati")
    await citizen.get_by_label("Nama", exact=True).fill("Siti Aminah")
    await _shot(citizen, "02-submit")
    await citizen.get_by_role("button", name="Kirim pengaduan").click()
    ticket_id = (await citizen.locator("#ticket-id").inner_text()).strip()
    assert ticket_id.startswith("BKL-")
    await _shot(citizen, "03-submitted")

    # It arrives in the officer's inbox without a reload (server-sent events).
    row = officer.locator(f"tr[data-ticket='{ticket_id}']")
    await expect(row).to_be_visible(timeout=WAIT_MS)
    assert await officer.evaluate("window.notReloaded === true")
    await expect(row).to_contain_text("Padang Jati")
    await expect(officer.locator("#count")).to_contain_text("1 tiket terbuka")
    # The demo policy's response target is seconds: the light turns red, still without a reload.
    await expect(row.locator(".light")).to_have_text("Terlambat", timeout=WAIT_MS)
    assert await officer.evaluate("window.notReloaded === true")
    await _shot(officer, "04-inbox")

    # The officer opens it and asks for information: the clock pauses.
    await row.get_by_role("link", name=ticket_id).click()
    await expect(officer.get_by_role("heading", name=f"Tiket {ticket_id}")).to_be_visible()
    await expect(officer.locator(".complaint")).to_contain_text("Jl. Suprapto")
    await officer.get_by_label("Pertanyaan untuk pelapor").fill("Mohon kirim patokan lokasi TPS.")
    await officer.get_by_role("button", name="Minta informasi (jeda tenggat)").click()
    await expect(officer.locator("#clock-state")).to_have_text("Dijeda")
    await _shot(officer, "05-ticket-needs-info")
    await officer.evaluate("window.notReloaded = true")

    # The citizen reads the question on the tracking page and answers it.
    await citizen.goto(f"{dev.console}/track/{ticket_id}")
    await expect(citizen.get_by_text("Mohon kirim patokan lokasi TPS.")).to_be_visible()
    await _shot(citizen, "06-track-question")
    await citizen.get_by_label("Jawaban Anda").fill("Di depan SD Negeri 5, dekat pos ronda.")
    await citizen.get_by_role("button", name="Kirim jawaban").click()
    await expect(citizen.get_by_role("status")).to_contain_text("Jawaban Anda sudah dikirim")

    # The reply reaches the SLA service over the broker: the clock runs again, on the open
    # ticket page, without a reload.
    await expect(officer.locator("#clock-state")).not_to_have_text("Dijeda", timeout=WAIT_MS)
    assert await officer.evaluate("window.notReloaded === true")
    await officer.reload()
    await expect(officer.locator(".history")).to_contain_text("Pelapor menjawab")

    await officer.get_by_label("Hasil penyelesaian (dilihat pelapor)").fill(
        "Sampah sudah diangkut pagi ini; jadwal truk ditambah.")
    await officer.get_by_role("button", name="Selesaikan").click()
    await expect(officer.locator("#ticket-status")).to_have_text("Selesai")
    await _shot(officer, "07-ticket-resolved")

    await citizen.goto(f"{dev.console}/track/{ticket_id}")
    await expect(citizen.locator("#citizen-status")).to_contain_text("Selesai")
    await expect(citizen.get_by_text("Sampah sudah diangkut pagi ini")).to_be_visible()
    await _shot(citizen, "08-track-resolved")


# The router cannot tell DLH (trees) from PUPR (roads) here: a tie sends it to the triage desk.
UNDECIDED = "Pohon tumbang di jalan rusak dekat Simpang Lima, kendaraan harus memutar"


async def test_the_supervisor_acknowledges_a_live_escalation_and_triage_assigns_a_ticket(
        dev: DevSystem, browser: Browser) -> None:
    supervisor = await (await browser.new_context(viewport={"width": 1280, "height": 800},
                                                  locale="id-ID")).new_page()
    desk = await (await browser.new_context(viewport={"width": 390, "height": 844},
                                            is_mobile=True, locale="id-ID")).new_page()
    await _sign_in(supervisor, dev, "inspektorat", heading="Dasbor pengawasan", shot=None)
    await _sign_in(desk, dev, "meja.triase", heading="Meja triase", shot=None)
    await supervisor.evaluate("window.notReloaded = true")
    await desk.evaluate("window.notReloaded = true")
    async with httpx.AsyncClient(timeout=60) as http:
        ids = []
        for text in (COMPLAINT, UNDECIDED):
            accepted = await http.post(f"{dev.intake}/v1/complaints", headers=dev.channel_headers(),
                                       json={"channel": "web", "text": text,
                                             "location": {"kelurahan": "Padang Jati"}})
            assert accepted.status_code == 202, accepted.text
            ids.append(accepted.json()["ticket_id"])
    late, undecided = ids

    # The demo policy's response target is 5 seconds: DLH's ticket escalates, and the row
    # arrives on the open dashboard without a reload.
    escalated = supervisor.locator("tr[data-escalation]", has_text=late).first
    await expect(escalated).to_be_visible(timeout=WAIT_MS)
    assert await supervisor.evaluate("window.notReloaded === true")
    await expect(escalated).to_contain_text("DLH")
    await _shot(supervisor, "09-dashboard-escalation")
    await escalated.get_by_role("button", name=f"tiket {late}").click()
    await expect(supervisor.get_by_role("status")).to_contain_text("pemberitahuan ulang")
    acknowledged = supervisor.locator("tr[data-escalation]", has_text=late).filter(has_text="Diterima")
    await expect(acknowledged.first).to_contain_text("inspektorat")
    await _shot(supervisor, "10-dashboard-acknowledged")

    # The triage desk sees the undecided complaint arrive with the router's two candidates,
    # and assigns it with one choice.
    card = desk.locator(f"article[data-ticket='{undecided}']")
    await expect(card).to_be_visible(timeout=WAIT_MS)
    assert await desk.evaluate("window.notReloaded === true")
    await expect(card).to_contain_text("pupr.jalan")
    await _shot(desk, "11-triage")
    await card.get_by_role("button", name="Teruskan ke PUPR").click()
    await expect(desk.get_by_role("status")).to_contain_text(f"Tiket {undecided} diteruskan ke PUPR")
    await expect(desk.locator(f"article[data-ticket='{undecided}']")).to_have_count(0, timeout=WAIT_MS)
    await _shot(desk, "12-triage-assigned")
    async with httpx.AsyncClient(timeout=60) as http:
        pupr = await dev.sign_in(http, "pupr.petugas")
        ticket = (await http.get(f"{dev.sla}/v1/tickets/{undecided}", headers=pupr)).json()
    assert ticket["agency"] == "PUPR" and "meja.triase" in ticket["routing"]["reason"]
