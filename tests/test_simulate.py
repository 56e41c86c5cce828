"""`statehook simulate` as a newcomer uses it: a real process whose printed config passes
`statehook check`, whose credentials and ids work with the providers' own clients, whose
Slack and SMTP stand-ins echo what they get, and which a worker delivers to. Its bad
inputs, `--write-config`, and running without aiosmtpd."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest

import providers
from config import load_config
from model.resources import ResourceRef
from simulator.registry import build_simulator
from simulator.standalone import END, ENV_START, MARK, TOML_START, ServeError, check_writable, serve, write_config
from tests.conftest import wait_for
from tests.kit import running_worker

ROOT = Path(__file__).resolve().parent.parent
STATEHOOK = str(Path(sys.executable).with_name("statehook"))
PROVIDERS = ["artistree", "deepomatic", "rev", "sartiq"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any STATEHOOK_ setting, importing this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHOOK_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@dataclass
class Running:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def section(self, start: str, end: str) -> list[str]:
        return self.lines[self.lines.index(start) + 1:self.lines.index(end)]

    @property
    def toml(self) -> str:
        return "\n".join(self.section(TOML_START, ENV_START)) + "\n"

    @property
    def env(self) -> dict[str, str]:
        pairs = [line.split("=", 1) for line in self.section(ENV_START, END) if not line.startswith("#")]
        return dict(pairs)

    def wait_for_line(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if line.startswith(prefix)]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line starting {prefix!r} in {self.lines[-20:]}")

    async def line(self, prefix: str, timeout: float = 30) -> str:
        return await asyncio.to_thread(self.wait_for_line, prefix, timeout)


def start_simulate(cwd: Path, *args: str) -> Running:
    proc = subprocess.Popen(
        [STATEHOOK, "simulate", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
        env=clean_env(),
    )
    running = Running(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            running.lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    running.wait_for_line(END)
    return running


def stop(running: Running) -> int:
    running.proc.send_signal(signal.SIGTERM)
    try:
        return running.proc.wait(timeout=10)
    finally:
        if running.proc.poll() is None:
            running.proc.kill()


@pytest.fixture(scope="module")
def simulate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_simulate(tmp_path_factory.mktemp("simulate"), "--port", "0", "--orders", "3", "--step-every",
                             "0.5")
    yield running
    assert stop(running) == 0
    assert not [line for line in running.lines if "Traceback" in line]


@pytest.fixture
def config_file(simulate: Running, tmp_path: Path) -> Path:
    path = tmp_path / "statehook.toml"
    path.write_text(simulate.toml)
    return path


def test_the_printed_config_passes_check(simulate: Running, config_file: Path) -> None:
    result = subprocess.run(
        [STATEHOOK, "check", "--no-redis", "--config", str(config_file)], capture_output=True, text=True,
        cwd=config_file.parent, env=clean_env(**simulate.env), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok"
    assert "providers (4):" in result.stdout and "watches (4):" in result.stdout
    assert "destinations (2):" in result.stdout
    for secret in simulate.env.values():  # credentials and the webhook URL are masked
        assert secret not in result.stdout + result.stderr


async def test_seeded_ids_answer_the_providers_clients_with_the_printed_credentials(
    simulate: Running, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in simulate.env.items():
        monkeypatch.setenv(key, value)
    config = load_config(config_file)
    assert sorted(config.providers) == PROVIDERS
    async with aiohttp.ClientSession() as session:
        for watch in config.watches:
            assert len(watch.ids) == 3, watch  # every provider seeded, Rev too
            provider = providers.REGISTRY[watch.provider](config.providers[watch.provider], session)
            for rid in watch.ids:
                ref = ResourceRef(watch.provider, watch.kind or provider.default_kind, rid)
                payload = await provider.fetch(ref)
                assert provider.normalize(ref, payload), ref


async def test_the_slack_and_smtp_stand_ins_echo_one_line_each(simulate: Running) -> None:
    webhook = simulate.env["STATEHOOK_DESTINATIONS__SLACK__WEBHOOK_URL"].replace("/ops", "/test")
    async with aiohttp.ClientSession() as http, http.post(webhook, json={"text": "Rev order  TC1\nComplete"}) as resp:
        assert resp.status == 200 and await resp.text() == "ok"
    assert await simulate.line("slack: #test") == "slack: #test  Rev order TC1 Complete"

    smtp = next(line for line in simulate.lines if line.startswith("  smtp: "))
    host, port = smtp.split()[1].split(":")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "me@example.test", "you@example.test", "hello there"
    message.set_content("body")
    await aiosmtplib.send(message, hostname=host, port=int(port), start_tls=False)
    assert await simulate.line("mail: to you@example.test") == "mail: to you@example.test: hello there"


async def test_a_worker_with_the_printed_config_delivers_to_the_stand_ins(
    simulate: Running, config_file: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in simulate.env.items():
        monkeypatch.setenv(key, value)
    config = load_config(config_file, redis_url=redis_url)
    async with running_worker(config):
        slack = await simulate.line("slack: #ops  ", timeout=60)
        mail = await simulate.line("mail: to ops@example.test: ", timeout=60)
    assert len(slack) > len("slack: #ops  ") and len(mail) > len("mail: to ops@example.test: ")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STATEHOOK, "simulate", *args], capture_output=True, text=True, cwd=cwd,
                          env=clean_env(), timeout=60)


def test_unknown_providers_are_named_with_the_known_ones(tmp_path: Path) -> None:
    result = _run("--providers", "rev,nosuch", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: --providers: unknown provider(s) 'nosuch' "
                             "(known: artistree, deepomatic, rev, sartiq)\n")
    assert result.stdout == ""


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("--port", "99999", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--port'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("option", ["--port", "--smtp-port"])
def test_a_port_in_use_is_one_line(tmp_path: Path, option: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ("--port", str(port)) if option == "--port" else ("--port", "0", "--smtp-port", str(port))
        result = _run(*args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {option}: ") and f"127.0.0.1:{port}: Address already in use" in lines[0]


def test_a_host_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    result = _run("--host", "nosuch.invalid", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --host: cannot resolve nosuch.invalid: ")
    assert len(result.stderr.splitlines()) == 1


def test_write_config_writes_a_config_and_an_env_that_check_reads(tmp_path: Path) -> None:
    running = start_simulate(tmp_path, "--port", "0", "--providers", "rev,sartiq", "--write-config",
                             str(tmp_path / "statehook.toml"))
    try:
        dotenv = (tmp_path / ".env").read_text()
        assert dotenv.startswith(MARK) and "STATEHOOK_PROVIDERS__REV__USER_KEY=sim-user-key" in dotenv
        # no --config, no environment: ./statehook.toml and ./.env, as a newcomer runs it
        result = subprocess.run([STATEHOOK, "check", "--no-redis"], capture_output=True, text=True, cwd=tmp_path,
                                env=clean_env(), timeout=60)
        assert result.returncode == 0, result.stderr
        assert "providers (2):" in result.stdout
    finally:
        assert stop(running) == 0


def test_write_config_never_overwrites_a_file_it_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "statehook.toml"
    check_writable(mine)  # absent: fine
    mine.write_text(MARK + ", earlier\n")
    check_writable(mine)  # ours: fine
    (tmp_path / ".env").write_text("STATEHOOK_REDIS_URL=redis://prod:6379/0\n")
    with pytest.raises(ServeError, match=r"\.env exists and was not written by statehook simulate"):
        check_writable(mine)
    with pytest.raises(ServeError, match="is not a directory"):
        check_writable(tmp_path / "nowhere" / "statehook.toml")


def test_write_config_never_overwrites_a_file_it_wrote_that_was_edited_since(tmp_path: Path) -> None:
    path = tmp_path / "statehook.toml"
    write_config(path, [MARK + ", for the simulator", "[providers.rev]"], ["STATEHOOK_PROVIDERS__REV__USER_KEY=k"])
    check_writable(path)  # as written: may be written again
    dotenv = tmp_path / ".env"
    dotenv.write_text(dotenv.read_text().replace("=k", "=k\nSTATEHOOK_DESTINATIONS__HOOK__SECRET=whsec_mine"))
    with pytest.raises(ServeError, match=r"\.env was edited since statehook simulate wrote it"):
        check_writable(path)
    dotenv.unlink()
    path.write_text(path.read_text().replace("[providers.rev]", "[providers.rev]\n\n[destinations.hook]"))
    with pytest.raises(ServeError, match=r"statehook\.toml was edited since statehook simulate wrote it"):
        check_writable(path)


def test_a_seed_seeds_the_same_orders_in_every_run() -> None:
    """`--seed 7` twice gave other Artistree and Deepomatic ids: a config written for one run
    named orders the next run did not have (found by a fresh-user trial)."""
    from simulator.registry import build_simulator
    from simulator.setups import provider_setups

    def ids(seed: int) -> dict[str, list[str]]:
        sim = build_simulator(orders_per_provider=3, seed=seed)
        return {s.name: list(s.watch("1s").get("ids") or ()) for s in provider_setups(sim)}

    first = ids(7)
    assert first == ids(7) and all(first.values())
    assert first["artistree"] != ids(8)["artistree"]


async def test_without_aiosmtpd_it_runs_with_no_email_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtpd.smtp", None)  # import fails, as when it is not installed
    out: list[str] = []
    warnings: list[str] = []
    task = asyncio.create_task(serve(port=0, names=["rev"], out=out.append, warn=warnings.append))
    try:
        await wait_for(lambda: END in out, what="the snippet")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert warnings == ["warning: no SMTP stand-in: aiosmtpd is not installed (pip install aiosmtpd); "
                        "the config has no email destination"]
    assert "[destinations.slack]" in out and "[destinations.email]" not in out
    assert not [line for line in out if line.startswith("  smtp:")]


def test_rev_is_seeded_like_the_others() -> None:
    sim = build_simulator(["rev"], orders_per_provider=2)
    assert [o["status"] for o in sim["rev"].orders.values()] == ["Captioning", "Transcribing"]
