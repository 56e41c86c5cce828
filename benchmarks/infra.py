"""The benchmark's own servers: a private redis-server and an nginx serving static JSON.

Both run as child processes on free loopback ports (never 6379), with their files in a
temporary directory, and are stopped by process id when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GROWTH_BODY", "TOKEN_JSON", "Server", "free_port", "nginx", "redis_server", "wait_port"]

GROWTH_BODY = "growth.json"
"""Under the data directory: the one body nginx answers for the orders `g…` (benchmarks/growth.py)."""
TOKEN_JSON = '{"access_token":"bench-token","expires_in":3600,"token_type":"Bearer"}'
"""What the OAuth2 token endpoint answers (nginx `return 200`, for POST as for GET)."""


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    port: int
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    if port == 6379:  # pragma: no cover - the kernel picked Redis's default: take another
        return free_port()
    return port


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[Server]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (make redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "redis-server")
        yield Server(f"redis://127.0.0.1:{port}/0", port, proc.pid)
    finally:
        _stop(proc)


NGINX_CONF = """\
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    map_hash_max_size 262144;
    map_hash_bucket_size 128;
    map $uri $order_body {{ default ""; include {data}/memory/*.map; }}
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    keepalive_requests 10000000;
    map $arg_page_token $page {{ "" first; default $arg_page_token; }}
    keepalive_timeout 120s;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {data};
        default_type application/json;
        location = /oauth2/token {{ return 200 '{token}'; }}
        location = /v1/orders {{ try_files /pages/$page.json =404; }}
        location ^~ /v1/orders/g {{ try_files /{growth} =404; }}
        location /v1/orders/ {{
            if ($order_body) {{ return 200 $order_body; }}
            alias {data}/orders/;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(data: Path, workdir: Path, *, workers: int = 1) -> Iterator[Server]:
    """nginx serving `data/orders/{id}` as `/v1/orders/{id}` and `data/pages/{token}.json` as
    the order list; the orders of `data/memory/*.map` from memory (`payloads.py`); and
    `data/{GROWTH_BODY}` for every order id that starts with `g` (the growth scenario's
    million orders, which all answer the same body: no UUID starts with a `g`). One
    worker process by default: the client, Redis and the worker share the machine's two
    cores with it."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=workdir, port=port, data=data, token=TOKEN_JSON,
                                      growth=GROWTH_BODY))
    # nginx's workers may run as `nobody`: the files must be readable by anyone
    for path in (data, workdir):
        path.chmod(0o755)
    proc = subprocess.Popen(
        [exe, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "nginx")
        yield Server(f"http://127.0.0.1:{port}", port, proc.pid)
    finally:
        _stop(proc)
