"""The order in which `disposisi dev` stops the system: the services stop taking work over HTTP
while every consumer keeps going; the drain runs with all of them still up; the broker is
killed right after it (a memory-only broker would otherwise acknowledge channel submissions
nobody consumes any more); only then the services, then the store."""

import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.dev import KAFKA, MONGODB, SERVICES, stop_in_order
from services.drain import ALL_GROUPS as GROUPS
from services.drain import DrainResult
from services.supervision import Supervised, Supervisor
from shared.runtime import STOP_ACCEPTING_SIGNAL
from shared.settings import Settings


class RecordingSupervisor(Supervisor):
    """Records what it is told to do instead of signalling processes."""

    def __init__(self, registry: Path) -> None:
        super().__init__(registry)
        self.events: list[tuple[str, tuple[str, ...]]] = []
        for name in (MONGODB, KAFKA, *SERVICES):
            self.processes[name] = Supervised(name, launch=_not_launched)

    def send_signal(self, signum: int, *names: str) -> None:
        self.events.append((signal.Signals(signum).name, names))

    def stop(self, *names: str, timeout: float = 15.0, signum: int = signal.SIGTERM) -> None:
        chosen = tuple(n for n in names if n in self.processes)
        if chosen:
            self.events.append((f"stop {signal.Signals(signum).name}", chosen))
        for name in chosen:
            del self.processes[name]


def _not_launched() -> subprocess.Popen[bytes]:
    raise AssertionError("nothing is launched in this test")


def test_services_stop_accepting_then_drain_with_everything_up_then_the_broker_is_killed(
        tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path / "processes.json")
    drained_with: list[tuple[set[str], dict[str, Sequence[str]]]] = []

    def drain(settings: Settings, groups: Mapping[str, Sequence[str]], deadline: float,
              ) -> DrainResult:
        drained_with.append((set(supervisor.processes), dict(groups)))
        supervisor.events.append(("drain", ()))
        return DrainResult(drained=True)

    stop_in_order(supervisor, Settings(), drain=drain)

    assert supervisor.events == [
        (STOP_ACCEPTING_SIGNAL.name, SERVICES),
        ("drain", ()),
        ("stop SIGKILL", (KAFKA,)),
        ("stop SIGTERM", SERVICES),
        ("stop SIGTERM", (MONGODB,)),
    ]
    [(running, groups)] = drained_with
    assert running == {KAFKA, MONGODB, *SERVICES}  # intake still consumes submissions
    assert groups == GROUPS


def test_without_the_embedded_broker_nothing_is_drained(tmp_path: Path) -> None:
    supervisor = RecordingSupervisor(tmp_path / "processes.json")
    del supervisor.processes[KAFKA]  # an external broker keeps its log: no drain needed

    def drain(settings: Settings, groups: Mapping[str, Sequence[str]], deadline: float,
              ) -> DrainResult:
        raise AssertionError("no drain without the embedded broker")

    stop_in_order(supervisor, Settings(), drain=drain)

    assert supervisor.events == [("stop SIGTERM", SERVICES), ("stop SIGTERM", (MONGODB,))]
