"""schemathesis against a live `statehook api` (a subprocess on a free port, a real
redis-server): every check, every phase, once with the bearer token and once without.
Zero failures: each answer matches the document (status, content type, headers, schema),
what the document allows is accepted and what it forbids is refused, 405s carry Allow.
No answer carries the API's token or a hook token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from store import keys
from store.registry import WorkerRegistry
from tests.conftest import free_port
from tests.kit import toml_value, write_config

API_TOKEN = "api-token-fuzz-3c8e1b7a9d2f4e60"
HOOK_TOKEN = "hook-token-fuzz-5b2d9e0c7a1f3e84"
MAX_EXAMPLES = 25
"""per operation and phase: about 500 requests per run (the coverage phase adds its own)"""
RUN_TIMEOUT = 60.0
BIN = Path(sys.executable).parent


def fuzz_config(path: Path, redis_url: str) -> Path:
    write_config(
        path,
        redis_url=redis_url,
        providers={  # never called: the API only reads and writes Redis
            "rev": {"base_url": "http://127.0.0.1:9", "client_key": "fuzz-client-key", "user_key": "fuzz-user-key"},
            "artistree": {"base_url": "http://127.0.0.1:9", "client_id": "fuzz-client",
                          "client_secret": "fuzz-client-secret"},
        },
        destinations={},
        routes=[],
    )
    api = ["", "[api]", f"token = {toml_value(API_TOKEN)}", f"hook_tokens = {toml_value({'rev': HOOK_TOKEN})}"]
    path.write_text(path.read_text() + "\n".join(api) + "\n")
    return path


def seed(redis_url: str) -> None:
    """A fresh worker heartbeat (else /healthz is a 503, which `not_a_server_error` counts),
    and one resource with a timeline and an outbox event, so that the 200s of
    /v1/resources and /v1/events are checked against their schemas too."""
    asyncio.run(_beat(redis_url))
    client = redis.Redis.from_url(redis_url)
    try:
        rkey = "rev:order:TC432432"
        client.hset(keys.META, rkey, b'{"i": 60.0}')
        client.zadd(keys.DUE, {rkey: time.time() + 3600})
        entry = [1, 1700000000, "rev.order.state_changed", "info", "Transcribing -> Complete", "evt_fuzz1"]
        client.rpush(keys.old_timeline(rkey), orjson.dumps(entry))
        client.rpush(keys.attempts("evt_fuzz1"), orjson.dumps({"destination": "hook", "ok": True}))
        client.xadd(keys.OUTBOX, {"e": orjson.dumps({"id": "evt_fuzz1", "type": "rev.order.state_changed"})})
    finally:
        client.close()


async def _beat(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await WorkerRegistry(client).beat("fuzz", 3600)
    finally:
        await client.aclose()


@contextlib.contextmanager
def statehook_api(config: Path, cwd: Path) -> Iterator[str]:
    """`statehook api` on a free port until it answers /healthz; stopped with SIGTERM."""
    port = free_port()
    log = (cwd / "api.log").open("wb")
    proc = subprocess.Popen([str(BIN / "statehook"), "api", "--config", str(config), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _answers(url + "/healthz"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"statehook api did not start: {(cwd / 'api.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def schemathesis(url: str, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`schemathesis run` with every check; its output, and the body of every answer it got."""
    har = cwd / "answers.har"
    har.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{url}/openapi.json", "--checks", "all",
         "--max-examples", str(MAX_EXAMPLES), "--request-timeout", "5", "--no-color",
         "--report", "har", "--report-har-path", str(har), *args],
        cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    return proc, [e["response"]["content"].get("text", "") for e in entries]


def _counts(output: str) -> str:
    return next((line.strip() for line in output.splitlines() if " generated, " in line), "no summary line")


@pytest.mark.parametrize("with_token", [True, False], ids=["with-token", "without-token"])
def test_the_live_api_matches_its_openapi_document(tmp_path: Path, redis_url: str, with_token: bool) -> None:
    config = fuzz_config(tmp_path / "statehook.toml", redis_url)
    seed(redis_url)
    headers = ["--header", f"Authorization: Bearer {API_TOKEN}"] if with_token else []
    started = time.monotonic()
    with statehook_api(config, tmp_path) as url:
        proc, bodies = schemathesis(url, tmp_path, *headers)
    took = time.monotonic() - started
    summary = _counts(proc.stdout)
    print(f"schemathesis ({'with' if with_token else 'without'} the token): {summary}, {took:.1f}s")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert len(bodies) > 100, f"only {len(bodies)} answers recorded"
    for body in bodies:
        assert API_TOKEN not in body and HOOK_TOKEN not in body, body[:500]
    if with_token:
        assert any('"watches"' in b for b in bodies), "no listing was answered: the token did not work"
    log = (tmp_path / "api.log").read_text()
    assert API_TOKEN not in log and HOOK_TOKEN not in log
    assert "Traceback" not in log, log[-3000:]
