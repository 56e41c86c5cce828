"""The console's browser tests: a real `statehook api` and `statehook run` (subprocesses), a
real redis-server, the simulator and a webhook receiver (in this process), and Debian's
headless Chromium driven by Playwright (never a downloaded browser). Every page is checked
with axe-core and saved as a screenshot.

Skipped, with the reason, when Chromium or axe-core is missing: `make test` installs both
(Debian's `chromium`, `npm install --prefix .venv/axe axe-core@4`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from config import Config
from simulator.artistree import ArtistreeSim
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from simulator.rev import RevSim
from tests.conftest import free_port
from tests.console.kit import TOKEN
from tests.kit import WHSEC
from tests.test_api import api_config

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(os.environ.get("CONSOLE_TEST_AXE", ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
START_TIMEOUT = 30.0


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return (f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium): "
                "the console's browser tests are skipped")
    if not AXE.exists():
        return (f"axe-core is not installed at {AXE} (make test runs npm install --prefix .venv/axe axe-core@4): "
                "the console's browser tests are skipped")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]'): browser tests skipped"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = _missing()
    if why is None:
        return
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.skip(reason=why))


@dataclass
class Stack:
    url: str
    redis: aioredis.Redis
    sim: Simulator
    receiver: WebhookReceiver
    config: Config
    shots: Path
    logs: Path
    extra: dict[str, Any] = field(default_factory=dict)


def _environment() -> dict[str, str]:
    """This process's environment without its STATEHOOK_ settings (the config file says all)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHOOK_")}
    return {**env, "STATEHOOK_LOG_FORMAT": "text"}


def _statehook(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A statehook command from this checkout (the source tree, not an installed copy)."""
    out = log.open("wb")
    return subprocess.Popen([sys.executable, "-c", "from worker.cli import main; main()", *args], cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, env=_environment())


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once (each shuts down gracefully), then wait; SIGKILL after 15 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def _until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import aiohttp

    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"statehook did not start (healthz): {_tail(log)}")
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def _processes(config_path: Path, port: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [
        _statehook(["api", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)], logs / "api.log"),
        _statehook(["run", "--config", str(config_path)], logs / "worker.log"),
    ]
    try:
        yield procs
    finally:
        _stop(procs)


def _shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $CONSOLE_TEST_SHOTS, else a temporary directory."""
    shots = Path(os.environ.get("CONSOLE_TEST_SHOTS") or tmp_path_factory.mktemp("console-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    redis = aioredis.from_url(redis_server)
    await redis.flushall()
    sim = Simulator([ArtistreeSim(), RevSim()])
    await sim.start()
    receiver = WebhookReceiver(secret=WHSEC)
    await receiver.start()
    work = tmp_path_factory.mktemp("console")
    shots = _shots_dir(tmp_path_factory)
    config = api_config(work, redis_server, sim, receiver, token=TOKEN,
                        worker={"health_interval": "1s", "reclaim_idle": "5s"})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        with _processes(work / "statehook.toml", port, work) as procs:
            await _until_up(url, procs[0], work / "api.log")
            yield Stack(url, redis, sim, receiver, config, shots, work)
    finally:
        print(f"\nconsole screenshots: {shots}; logs: {work}")
        await receiver.stop()
        await sim.stop()
        await redis.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(stack: Stack) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()
