"""Real redis-server processes (a server or a sentinel) to break on purpose: start, stop
(port refused), kill -9, SIGSTOP (port accepts, nothing answers), restart on the same port
with the AOF kept. See simulator/redisctl.py.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis

__all__ = [
    "HOST",
    "MIN_DOWN_AFTER_MS",
    "RedisProcess",
    "SentinelProcess",
    "free_port",
    "port_refuses",
    "redis_binary",
    "wait_until",
]

HOST = "127.0.0.1"
CLIENT_TIMEOUT = 1.0
"""The sync clients' connect and socket timeouts: a hung server fails a command in a second."""
MIN_DOWN_AFTER_MS = 1500
"""Sentinel 7.0 pings every min(down-after, 1 s): with 1,000 ms a just-promoted master can
miss its first ping window and be failed over again (seen here: a second failover, once
to the dead old master). A smaller `down_after_ms` is raised to this."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick, so never 6379 unless it is free and drawn)."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in (6379, 26379):
            return port


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (`make redis-server` installs Debian's package)")
    return binary


def _client(port: int, timeout: float = CLIENT_TIMEOUT) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, db=0, socket_timeout=timeout, socket_connect_timeout=timeout)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    """What a redis-server and a sentinel share: one child process on a fixed port, its
    own work directory, signals, and a start that waits for a real answer."""

    def __init__(self, port: int | None, workdir: Path | None) -> None:
        self.port: int = port if port is not None else free_port()
        self._own_workdir = workdir is None
        self.workdir: Path = Path(tempfile.mkdtemp(prefix=f"redisctl-{self.port}-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self, client: redis.Redis) -> bool:
        """Whether the server answers (a PING that gets PONG; LOADING is not an answer)."""
        return bool(client.ping())

    def start(self, timeout: float = 10.0) -> None:
        """Spawn the process and wait until it answers. Raises RuntimeError (with the end of
        its log) if it exits or does not answer within `timeout`."""
        if self.alive():
            raise RuntimeError(f"redis on port {self.port} is already running")
        with open(self.log_path, "ab") as log:  # the child has its own descriptor of it
            self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self._paused = False
        deadline = time.monotonic() + timeout
        client = _client(self.port, timeout=0.5)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis on port {self.port} exited with {self.proc.returncode}:\n"
                                       f"{_tail(self.log_path)}")
                try:
                    if self._ready(client):
                        return
                except (redis.RedisError, OSError):
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"redis on port {self.port} did not answer within {timeout}s:\n"
                                       f"{_tail(self.log_path)}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM and wait (a paused process is resumed first, or it could not act on it);
        SIGKILL after 10 s. Afterwards the port is closed: connecting is refused."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self._reap()
            return
        if self._paused:
            self.resume()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        self._reap()

    def kill(self) -> None:
        """SIGKILL and wait: no shutdown, whatever the AOF had not written yet is lost."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        self._reap()

    def pause(self) -> None:
        """SIGSTOP: a hung server. The kernel still accepts connections on its port; nothing answers."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"redis on port {self.port} is not running")
        self.proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused and self.alive()

    def restart(self, down_for: float = 0.0, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM; one that died already is only reaped), stay down `down_for`
        seconds, start again on the same port and work directory (the AOF is kept)."""
        if self.alive():
            self.stop()
        else:
            self.kill()
        if down_for > 0:
            time.sleep(down_for)
        self.start(timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive() and self.proc is not None else None

    def client(self) -> redis.Redis:
        """A sync redis-py client with short (1 s) connect and socket timeouts."""
        return _client(self.port)

    def _reap(self) -> None:
        self._paused = False

    def cleanup(self) -> None:
        """Kill it and remove its work directory if this object made it."""
        self.kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("alive" if self.alive() else "down")
        return f"<{type(self).__name__} port={self.port} {state}>"


class RedisProcess(_Process):
    """One redis-server: `--save ""`, `--appendonly yes|no` with `appendfsync everysec`
    (what the docs recommend: a kill -9 loses at most about a second of writes)."""

    def __init__(self, port: int | None = None, *, appendonly: bool = True, workdir: Path | None = None,
                 extra_args: Sequence[str] = (), replicaof: tuple[str, int] | None = None) -> None:
        super().__init__(port, workdir)
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.replicaof = replicaof

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def _argv(self) -> list[str]:
        argv = [redis_binary(), "--port", str(self.port), "--bind", HOST, "--daemonize", "no",
                "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
                "--dir", str(self.workdir), "--loglevel", "notice"]
        if self.replicaof is not None:
            argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
        return argv + self.extra_args

    def role(self) -> str | None:
        """"master", "slave" (a replica), or None when it does not answer."""
        client = _client(self.port, timeout=0.5)
        try:
            answer = client.execute_command("ROLE")
            role = answer[0]
            return role.decode() if isinstance(role, bytes) else str(role)
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()

    def info(self, section: str) -> dict[str, Any]:
        client = _client(self.port, timeout=0.5)
        try:
            return dict(cast(dict[str, Any], client.info(section)))
        finally:
            client.close()


class SentinelProcess(_Process):
    """One `redis-server sentinel.conf --sentinel`, its config in its own directory (Sentinel
    rewrites the file as it learns the topology)."""

    def __init__(self, port: int | None, master_name: str, master_port: int, *, down_after_ms: int,
                 failover_timeout_ms: int, quorum: int = 2) -> None:
        super().__init__(port, None)
        self.master_name = master_name
        self.myid = secrets.token_hex(20)
        self.conf_path = self.workdir / "sentinel.conf"
        self._conf = [
            f"port {self.port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{self.workdir}"',
            f"sentinel myid {self.myid}",
            f"sentinel monitor {master_name} {HOST} {master_port} {quorum}",
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
            f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
            f"sentinel parallel-syncs {master_name} 1",
        ]

    def write_config(self, replicas: Sequence[int], others: Sequence[SentinelProcess]) -> None:
        """The file Sentinel starts from (and rewrites later). Naming the replica and the other
        sentinels up front spares the ~2 s hello rounds it takes them to find each other."""
        lines = [*self._conf]
        lines += [f"sentinel known-replica {self.master_name} {HOST} {port}" for port in replicas]
        lines += [f"sentinel known-sentinel {self.master_name} {HOST} {o.port} {o.myid}" for o in others]
        self.conf_path.write_text("\n".join([*lines, ""]))

    def _argv(self) -> list[str]:
        return [redis_binary(), str(self.conf_path), "--sentinel"]

    def master_addr(self) -> tuple[str, int] | None:
        """What this sentinel names as the master now (SENTINEL get-master-addr-by-name)."""
        client = _client(self.port, timeout=0.5)
        try:
            answer = client.execute_command("SENTINEL", "get-master-addr-by-name", self.master_name)
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()
        if not answer:
            return None
        host, port = (x.decode() if isinstance(x, bytes) else str(x) for x in answer)
        return host, int(port)

    def master_info(self) -> dict[str, str]:
        """SENTINEL MASTER as a dict (num-slaves, num-other-sentinels, flags, …); {} if no answer."""
        client = _client(self.port, timeout=0.5)
        try:
            raw = client.execute_command("SENTINEL", "MASTER", self.master_name)
        except (redis.RedisError, OSError):
            return {}
        finally:
            client.close()
        if isinstance(raw, dict):
            return {_s(k): _s(v) for k, v in raw.items()}
        items = [_s(x) for x in raw]
        return dict(zip(items[::2], items[1::2], strict=False))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def wait_until(predicate: Callable[[], bool], deadline: float, what: str) -> None:
    while True:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def port_refuses(port: int) -> bool:
    """Whether connecting to 127.0.0.1:`port` is refused (nothing listens)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
