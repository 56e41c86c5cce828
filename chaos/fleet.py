"""The statehook processes of the run: `statehook run` workers and one `statehook api`.

No supervisor: a worker that exits by itself stays dead and is counted. The harness only
starts a *new* worker after it killed one (the operator's replacement). Which worker holds
what is found from the outside: the client port of a request in flight at the simulator or
at a receiver is mapped to its process through /proc (Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Fleet", "StatehookProc", "pids_of_ports", "statehook_argv"]

Cause = Literal["running", "exited", "killed", "stopped"]


def statehook_argv(*args: str) -> list[str]:
    """The `statehook` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("statehook")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from worker.cli import main; main()", *args]


@dataclass
class StatehookProc:
    name: str
    role: Literal["worker", "api"]
    stage: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float
    ended: float | None = None
    exit_code: int | None = None
    cause: Cause = "running"
    stop_took_s: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return next((line for line in reversed(lines) if line.strip()), "")


@dataclass
class Fleet:
    workdir: Path
    env: dict[str, str]
    procs: list[StatehookProc] = field(default_factory=list)
    _n: int = 0

    def _spawn(self, role: Literal["worker", "api"], stage: str, args: Sequence[str]) -> StatehookProc:
        self._n += 1
        name = f"{'w' if role == 'worker' else 'api'}{self._n}"
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(statehook_argv(*args), stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=self.workdir)
        proc = StatehookProc(name, role, stage, popen, log_path, time.time())
        self.procs.append(proc)
        return proc

    def spawn_worker(self, stage: str) -> StatehookProc:
        return self._spawn("worker", stage, ["run"])

    def spawn_api(self, stage: str) -> StatehookProc:
        return self._spawn("api", stage, ["api"])

    def workers(self) -> list[StatehookProc]:
        return [p for p in self.procs if p.role == "worker" and p.alive()]

    def reap(self) -> list[StatehookProc]:
        """Processes that exited since the last look, by themselves (the others are marked
        when the harness ends them)."""
        gone = []
        for p in self.procs:
            if p.cause == "running" and p.popen.poll() is not None:
                p.cause, p.exit_code, p.ended = "exited", p.popen.returncode, time.time()
                gone.append(p)
        return gone

    def kill(self, proc: StatehookProc) -> None:
        """kill -9 (the harness's fault; the process is not counted as exiting by itself)."""
        if proc.alive():
            proc.cause = "killed"
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait(timeout=10)
            proc.exit_code, proc.ended = proc.popen.returncode, time.time()

    def stop(self, procs: Iterable[StatehookProc], timeout: float = 40.0) -> None:
        """SIGTERM, then wait (SIGKILL after `timeout`); records how long each took."""
        started = time.monotonic()
        live = [p for p in procs if p.alive()]
        for p in live:
            p.cause = "stopped"
            p.popen.send_signal(signal.SIGTERM)
        for p in live:
            try:
                p.popen.wait(timeout=max(0.1, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(timeout=10)
            p.exit_code, p.ended = p.popen.returncode, time.time()
            p.stop_took_s = round(time.monotonic() - started, 2)

    def stop_all(self) -> None:
        self.reap()
        self.stop([p for p in self.procs if p.alive()], timeout=30.0)

    def exits(self) -> list[StatehookProc]:
        return [p for p in self.procs if p.role == "worker" and p.cause == "exited"]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _inodes_of_local_ports(ports: set[int]) -> dict[str, int]:
    """socket inode -> local port, for TCP sockets on one of `ports`."""
    out: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) < 10:
                    continue
                port = int(cols[1].rsplit(":", 1)[1], 16)
                if port in ports:
                    out[cols[9]] = port
    return out


def pids_of_ports(ports: Iterable[int], pids: Iterable[int]) -> dict[int, int]:
    """client port -> pid, for the ports that belong to one of `pids`."""
    wanted = {p for p in ports if p}
    if not wanted:
        return {}
    by_inode = _inodes_of_local_ports(wanted)
    out: dict[int, int] = {}
    for pid in pids:
        for inode in _socket_inodes(pid) & by_inode.keys():
            out[by_inode[inode]] = pid
    return out
