"""Helpers for end-to-end tests: services as real processes, as `disposisi dev` runs them."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from services.dev import service_command
from shared.embedded import die_with_parent
from shared.settings import Settings, as_environment


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPOSISI_")}
    env.update(as_environment(settings))
    return env


def spawn(name: str, settings: Settings, log_dir: Path, **overrides: object) -> subprocess.Popen[bytes]:
    """Start one service exactly as `disposisi dev` does, with its output in a log file."""
    env = settings_env(settings.model_copy(update=overrides))
    log = (log_dir / f"{name}-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(service_command(name), env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0,
                 probe: str = "/readyz") -> None:
    """Until ``probe`` answers 200 (``/healthz``: the process is up, whatever it depends on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was healthy")
        try:
            if httpx.get(f"{url}{probe}", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
