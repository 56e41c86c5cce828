"""`statehook check`: a bad config names the field; no secret is ever printed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import free_port
from tests.test_api_degraded import private_redis
from worker.cli import app
from worker.persistence import CANNOT_TELL, NO_AOF, persistence_warning

SECRET = "super-secret-client-secret-123"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

GOOD = """
[providers.artistree]
base_url = "http://127.0.0.1:9/artistree"
client_id = "cid"

[[watches]]
provider = "artistree"
scan = { project_id = "All Projects" }
interval = "60s"

[destinations.automation]
kind = "webhook"
url = "https://automation.example.com/hooks/statehook?token=abc"

[destinations.console]
kind = "console"

[[routes]]
match = { type = ["*.state_changed"], severity = ["critical", "warning"] }
to = ["automation", "console"]
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", WHSEC)
    # `check` asks Redis about persistence: never the default 127.0.0.1:6379
    monkeypatch.setenv("STATEHOOK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")


def run_check(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--config", str(path), *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_good_config_resolves_with_secrets_masked(env: None, tmp_config: Callable[[str], Path]) -> None:
    code, out = run_check(tmp_config(GOOD))
    assert code == 0, out
    assert "artistree" in out and "automation" in out
    assert SECRET not in out and WHSEC not in out and "token=abc" not in out
    assert "https://automation.example.com/********" in out


def test_unknown_destination_in_a_route_is_named(env: None, tmp_config: Callable[[str], Path]) -> None:
    code, out = run_check(tmp_config(GOOD.replace('to = ["automation", "console"]', 'to = ["pager"]')))
    assert code == 2
    assert "routes.0.to.0: unknown destination 'pager'" in out
    assert "statehook.toml:" in out


def test_missing_secret_is_named_with_its_variable(tmp_config: Callable[[str], Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", WHSEC)
    code, out = run_check(tmp_config(GOOD))
    assert code == 2
    assert "providers.artistree.client_secret: missing secret" in out
    assert "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET" in out


def test_bad_url_is_named_and_not_echoed(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace("https://automation.example.com/hooks/statehook?token=abc", "ftp:/nowhere-secret-path")
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "destinations.automation.url" in out and "http:// or https://" in out
    assert "nowhere-secret-path" not in out and SECRET not in out


def test_every_problem_is_reported_at_once(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace('interval = "60s"', 'interval = "soon"').replace('kind = "console"', 'kind = "pigeon"')
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "watches.0.interval" in out


def test_bad_secret_format_is_named_without_the_value(tmp_config: Callable[[str], Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", "not-a-whsec-value-xyz")
    code, out = run_check(tmp_config(GOOD))
    assert code == 2
    assert "destinations.automation.secret" in out
    assert "not-a-whsec-value-xyz" not in out


def test_a_template_error_is_reported_by_check(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace('to = ["automation", "console"]', 'to = ["automation", "console"]\ntemplate = "{{ event.nope }"')
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "routes.0.template" in out


def test_uvloop_without_its_package_is_named(env: None, tmp_config: Callable[[str], Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import config.settings

    real = config.settings.importlib.util.find_spec
    monkeypatch.setattr(config.settings.importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    code, out = run_check(tmp_config('[worker]\nevent_loop = "uvloop"\n' + GOOD))
    assert code == 2
    assert "worker.event_loop" in out and "statehook[uvloop]" in out


# ---- durations: finite and bounded, in the file too ---------------------------------------------


@pytest.mark.parametrize(("table", "line", "field"), [
    ("", 'interval = inf', "watches.0.interval"),
    ("", 'interval = nan', "watches.0.interval"),
    ("", 'interval = 1e308', "watches.0.interval"),
    ("", 'interval = "1ms"', "watches.0.interval"),
    ("", 'interval = -5', "watches.0.interval"),
    ("[[routes]]\nto = [\"console\"]\n", 'throttle = "inf"', "routes.1.throttle"),
    ("[[routes]]\nto = [\"console\"]\n", 'digest = "45d"', "routes.1.digest"),
    ("[worker]\n", 'job_timeout = "1e400"', "worker.job_timeout"),
    ("[worker]\n", 'health_interval = "10ms"', "worker.health_interval"),
    ("[providers.artistree]\n", 'terminal_interval = inf', "providers.artistree.terminal_interval"),
    ("[providers.artistree]\n", 'interval_idle = "0s"', "providers.artistree.interval_idle"),
])
def test_a_duration_that_is_not_finite_and_within_bounds_is_one_line_naming_the_field(
    env: None, tmp_config: Callable[[str], Path], table: str, line: str, field: str
) -> None:
    if table.startswith("[providers.artistree]"):
        text = GOOD.replace('client_id = "cid"', f'client_id = "cid"\n{line}')
    elif table:
        text = (GOOD + "\n" + table + line + "\n") if table.startswith("[[") else table + line + "\n" + GOOD
    else:
        text = GOOD.replace('interval = "60s"', line)
    code, out = run_check(tmp_config(text), "--no-redis")
    assert code == 2, out
    (problem,) = [x for x in out.splitlines() if x.startswith("error:")]
    assert f": {field}: " in problem and "duration" in problem, problem
    assert "statehook.toml:" in problem and "Traceback" not in out


def test_sub_second_tuning_and_a_zero_tail_are_accepted(env: None, tmp_config: Callable[[str], Path]) -> None:
    text = '[worker]\nhealth_interval = "0.25s"\nreclaim_idle = 0.2\n' + GOOD.replace(
        'client_id = "cid"', 'client_id = "cid"\nterminal_tail = 0\ninterval_active = "30d"')
    code, out = run_check(tmp_config(text), "--no-redis")
    assert code == 0, out


@pytest.mark.parametrize("kind, problem", [
    ("scan", "artistree has no kind 'scan' to watch by id (known: order)"),
    ("project", "artistree has no kind 'project' to watch by id (known: order)"),
    (SECRET.upper(), "artistree has no such kind to watch by id (known: order)"),  # never echoed
], ids=["scan", "unknown", "secret-shaped"])
def test_a_watch_by_id_names_a_kind_the_provider_watches_by_id(
    env: None, tmp_config: Callable[[str], Path], kind: str, problem: str
) -> None:
    """`kind = "scan"` with ids was accepted (and polled as one resource) while the API and
    `watch add` refuse it: the file says it as they do."""
    from config import load_config
    from worker.api_watches import InvalidWatch, validate_watch

    kind_line = f'kind = "{kind}"'
    text = GOOD.replace('scan = { project_id = "All Projects" }', f'{kind_line}\nids = ["A1"]')
    path = tmp_config(text)
    code, out = run_check(path, "--no-redis")
    assert code == 2, out
    (line,) = [x for x in out.splitlines() if x.startswith("error:")]
    assert line == f"error: {path}:{text.splitlines().index(kind_line) + 1}: watches.0.kind: {problem}"
    assert SECRET.upper() not in out
    if kind == "scan":
        with pytest.raises(InvalidWatch) as refused:
            validate_watch(load_config(tmp_config(GOOD)), {"provider": "artistree", "kind": kind, "ids": ["A1"]})
        assert problem.startswith(refused.value.reason)


def test_a_watch_by_id_of_a_kind_it_polls_and_a_scan_are_accepted(env: None, tmp_config: Callable[[str], Path]) -> None:
    by_id = GOOD.replace('scan = { project_id = "All Projects" }', 'kind = "order"\nids = ["A1"]')
    assert run_check(tmp_config(by_id), "--no-redis")[0] == 0
    assert run_check(tmp_config(GOOD), "--no-redis")[0] == 0


# ---- check and the Redis it points at ---------------------------------------------------------------


def test_a_multi_sentinel_url_passes_check_with_only_its_password_masked(
    env: None, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented form crashed `check` (urllib cannot read several host:port); nobody
    answers on these ports, which `check` says in one warning line, within seconds."""
    import time

    ports = [free_port() for _ in range(3)]
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    monkeypatch.setenv("STATEHOOK_REDIS_URL", f"redis+sentinel://:{SECRET}@{hosts}/mymaster/0")
    started = time.monotonic()
    code, out = run_check(tmp_config(GOOD))
    assert code == 0, out
    assert time.monotonic() - started < 8
    assert f"redis:  redis+sentinel://:********@{hosts}/mymaster/0" in out
    assert SECRET not in out
    (warning,) = [x for x in out.splitlines() if x.startswith("warning:")]
    assert "Redis unreachable" in warning and "could not tell" in warning


def test_check_warns_in_one_line_when_redis_keeps_no_aof(
    env: None, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, redis_server: str
) -> None:
    monkeypatch.setenv("STATEHOOK_REDIS_URL", redis_server)  # the session's: --appendonly no
    code, out = run_check(tmp_config(GOOD))
    assert code == 0 and out.rstrip().endswith("ok"), out
    assert [x for x in out.splitlines() if x.startswith("warning:")] == [f"warning: {NO_AOF}"]
    assert "watches added through the API" in NO_AOF


def test_check_is_quiet_with_aof_and_says_when_it_cannot_tell(
    env: None, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import socket
    import time

    import redis.asyncio as aioredis

    def wait_port(port: int) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    aof, managed = free_port(), free_port()
    with private_redis(aof, "--appendonly", "yes") as start_aof, \
            private_redis(managed, "--rename-command", "CONFIG", "") as start_managed:
        start_aof()
        start_managed()
        wait_port(aof)
        wait_port(managed)
        monkeypatch.setenv("STATEHOOK_REDIS_URL", f"redis://127.0.0.1:{aof}/0")
        code, out = run_check(tmp_config(GOOD))
        assert code == 0 and not [x for x in out.splitlines() if x.startswith("warning:")], out
        monkeypatch.setenv("STATEHOOK_REDIS_URL", f"redis://127.0.0.1:{managed}/0")
        code, out = run_check(tmp_config(GOOD))
        assert code == 0 and [x for x in out.splitlines() if x.startswith("warning:")] == [f"warning: {CANNOT_TELL}"]

        async def probe(port: int) -> str | None:
            client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
            try:
                return await persistence_warning(client)
            finally:
                await client.aclose()

        assert asyncio.run(probe(aof)) is None
        assert asyncio.run(probe(managed)) == CANNOT_TELL


def test_check_prints_time_intervals_and_each_routes_throttle_digest_muting_and_reminders(
    env: None, tmp_config: Callable[[str], Path]
) -> None:
    windowed = GOOD.replace('to = ["automation", "console"]',
                            'to = ["automation", "console"]\nmute_during = ["nights"]\nrepeat_every = "30m"\n'
                            'throttle = "10m"\ndigest = "1h"')
    code, out = run_check(tmp_config(windowed + """
[[time_intervals]]
name = "nights"
[[time_intervals.time_intervals]]
times = [{ start_time = "22:00", end_time = "24:00" }]
weekdays = ["monday:friday"]
location = "Europe/Paris"
[[time_intervals.time_intervals]]
weekdays = ["saturday", "sunday"]
"""), "--no-redis")
    assert code == 0, out
    assert ("[throttled to one per resource and type every 600s; a digest every 3600s; muted during nights "
            "(then summary); reminders every 1800s]") in out
    assert "time intervals (1):\n  nights: times 22:00-24:00, weekdays monday:friday (Europe/Paris); " \
           "or weekdays saturday,sunday (UTC)\n" in out
