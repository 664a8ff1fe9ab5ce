"""What `disposisi dev` keeps alive: the broker, the store and the services, each restarted
after a crash with a short backoff that resets once the process has been healthy a while."""

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.embedded import EmbeddedServerError

# A crashed process comes back after half a second; a crash loop slows to one try every
# 8 s so it does not eat the machine; a process that stayed up a minute counts as healthy
# again, so its next crash is once more restarted after half a second.
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 8.0
HEALTHY_AFTER_SECONDS = 60.0


@dataclass
class Backoff:
    """Delay before a restart: doubling per crash up to a cap, reset by a healthy run."""

    first: float = FIRST_RESTART_DELAY
    cap: float = MAX_RESTART_DELAY
    healthy_after: float = HEALTHY_AFTER_SECONDS
    crashes: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.healthy_after:
            self.crashes = 0
        delay: float = min(self.cap, self.first * 2.0 ** self.crashes)
        self.crashes += 1
        return delay


def _no_follow_up() -> None:
    return None


@dataclass
class Supervised:
    """One process the supervisor runs. ``launch`` starts it (and, for a server, waits until
    it listens); ``after_restart`` repairs what its crash lost (the broker's topics)."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    after_restart: Callable[[], None] = _no_follow_up
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)

    def start(self) -> None:
        self.process = self.launch()
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def send_signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait_stopped(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} disposisi dev: {message}", flush=True)


class Supervisor:
    """Keeps its processes running. The pid of each is written to ``registry`` (JSON) on every
    start, so tools and the fault suite can find them."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self.processes: dict[str, Supervised] = {}

    def start(self, process: Supervised) -> None:
        self.processes[process.name] = process
        process.start()
        self._write_registry()

    def tick(self) -> None:
        """Notice crashes and restart whatever is due; never blocks on a backoff."""
        now = time.monotonic()
        for process in self.processes.values():
            if process.restart_at is None and process.exited():
                assert process.process is not None
                self._schedule(process, f"exited with {process.process.returncode}")
            elif process.restart_at is not None and now >= process.restart_at:
                self._restart(process)

    def _schedule(self, process: Supervised, what: str) -> None:
        now = time.monotonic()
        delay = process.backoff.next_delay(now - process.started_at)
        process.restart_at = now + delay
        say(f"{process.name} {what}; restarting in {delay:.1f} s")

    def _restart(self, process: Supervised) -> None:
        process.restarts += 1
        process.started_at = time.monotonic()  # a failed attempt counts as a crash at once
        try:
            process.start()
        except EmbeddedServerError as error:
            self._schedule(process, f"did not come back ({error})")
            return
        process.restart_at = None
        self._write_registry()
        try:
            process.after_restart()
        except Exception as error:  # the process runs; say what is still missing
            say(f"{process.name}: repairing after the restart failed: {error}")
        say(f"{process.name} restarted (pid {process.pid}, restart #{process.restarts})")

    def send_signal(self, signum: int, *names: str) -> None:
        """Send ``signum`` to these (those running)."""
        for name in names:
            if name in self.processes:
                self.processes[name].send_signal(signum)

    def stop(self, *names: str, timeout: float = 15.0, signum: int = signal.SIGTERM) -> None:
        """Stop these together (``signum``, then SIGKILL after ``timeout``)."""
        chosen = [self.processes[n] for n in names if n in self.processes]
        for process in chosen:
            process.restart_at = None
            process.send_signal(signum)
        for process in chosen:
            process.wait_stopped(timeout)
        for process in chosen:
            del self.processes[process.name]
        if chosen:
            self._write_registry()

    def stop_all(self, timeout: float = 15.0) -> None:
        self.stop(*reversed(list(self.processes)), timeout=timeout)

    def _write_registry(self) -> None:
        pids = {name: p.pid for name, p in self.processes.items()}
        temporary = self.registry.with_suffix(".tmp")
        temporary.write_text(json.dumps(pids))
        temporary.replace(self.registry)
