"""A service stops on SIGTERM even while a client holds a request open: a phone on a bad
connection that sent a form's headers and stalls before its body. uvicorn waits for open
requests to finish before the app's own shutdown, without limit unless told one; the services
give it ``DISPOSISI_HTTP_SHUTDOWN_SECONDS``, so `disposisi dev` and any supervisor never wait
on a peer. The console is used: it needs neither broker nor store. The time limit only
detects a hang."""

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from shared.embedded import free_port
from shared.settings import Settings
from tests.conftest import TEST_AUTH_SECRET
from tests.e2e.support import spawn, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.own_servers]

HANG = 60.0


def test_a_stalled_request_does_not_hold_the_stop(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(auth_secret=TEST_AUTH_SECRET, console_port=port, http_host="127.0.0.1")
    console = spawn("console", settings, tmp_path, http_shutdown_seconds=2.0)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", console, HANG, probe="/healthz")
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as stalled:
            stalled.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\n"
                            b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
            # The server asks for the body only once the app reads it: the request is open.
            assert stalled.recv(64).startswith(b"HTTP/1.1 100 Continue")
            stalled.sendall(b"username=petugas")  # and no more

            console.send_signal(signal.SIGTERM)
            try:
                code = console.wait(HANG)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the console did not stop within {HANG:g} s of SIGTERM while a "
                            f"request stayed open")
        # uvicorn re-raises the SIGTERM it caught once its shutdown is done.
        assert code in (0, -signal.SIGTERM)
        log = next(tmp_path.glob("console-*.log")).read_text()
        assert "timeout graceful shutdown exceeded" in log
        assert "Application shutdown complete" in log
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()

