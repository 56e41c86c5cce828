"""A Redis URL whose database the server does not have (`/99` on a Redis of 16): every new
connection's SELECT fails. The CLI stops with one line naming STATEHOOK_REDIS_URL (it was
a traceback), `check` exits 2 (it said "ok" with a warning that CONFIG was refused), a
worker stops start-up with one line, and the API answers 503 with the reason, no traceback."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from tests.test_api import AUTH, api_config, call, serving
from worker.cli import app

PROBLEM = "redis_url: its database is not one this Redis has (the server's `databases` setting)"


def _no_database(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/99"


@pytest.mark.parametrize("command", [["watch", "ls"], ["check"], ["events", "tail"]])
def test_the_cli_stops_with_one_line_naming_the_variable(
    command: list[str], redis_url: str, tmp_path: Path, sim: Simulator, receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    monkeypatch.setenv("STATEHOOK_REDIS_URL", _no_database(redis_url))
    result = CliRunner().invoke(app, [*command, "--config", str(config.source)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: STATEHOOK_REDIS_URL: {PROBLEM}"], result.output


def test_a_worker_stops_start_up_with_one_line(redis_url: str, tmp_path: Path, sim: Simulator,
                                               receiver: WebhookReceiver) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    proc = subprocess.run([str(Path(sys.executable).parent / "statehook"), "run", "--config", str(config.source)],
                          env={"STATEHOOK_REDIS_URL": _no_database(redis_url), "STATEHOOK_LOG_FORMAT": "text",
                               "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"worker stopped: STATEHOOK_REDIS_URL: {PROBLEM}" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_the_api_answers_503_with_the_reason(redis_url: str, tmp_path: Path, sim: Simulator,
                                                   receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture) -> None:
    config = api_config(tmp_path, _no_database(redis_url), sim, receiver)
    with caplog.at_level(logging.ERROR):
        async with serving(config) as (_, http):
            status, body = await call(http, "GET", "/healthz")
            assert (status, body["reason"]) == (503, "redis unreachable: no such database")
            status, body = await call(http, "GET", "/v1/watches", headers=AUTH)
            assert (status, body["error"]) == (503, "redis unavailable: no such database")
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
