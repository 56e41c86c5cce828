"""The simulator on its own, for trying statehook out (`statehook simulate`, `python -m simulator`).

It serves the four providers' stand-ins, seeded, and a Slack stand-in (an incoming
webhook) on one HTTP port, an SMTP stand-in on another, and prints what a statehook needs
to use them: a TOML config and the environment lines with the credentials. Then it
advances the scripted progressions now and then and prints one line per change, per
Slack message and per mail it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import html
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.toml_out import toml_array, toml_table
from simulator.core import Simulator
from simulator.mail import MailStandIn, MailUnavailable, ReceivedMail
from simulator.registry import build_simulator
from simulator.setups import ProviderSetup, env_line, env_name, provider_setups, providers_toml
from simulator.slack import SlackMessage, SlackStandIn

__all__ = ["MAIL_FROM", "MAIL_TO", "SLACK_WEBHOOK", "ServeError", "check_writable", "serve", "write_config"]

SLACK_WEBHOOK = "TSIM/BSIM/ops"
MAIL_TO = "ops@example.test"
MAIL_FROM = "statehook@example.test"
MARK = "# written by statehook simulate"
TOML_START, ENV_START, END = "# ---- statehook.toml ----", "# ---- .env ----", "# ---- end ----"
Out = Callable[[str], None]


class ServeError(Exception):
    """A one-line reason the simulator cannot start, for the user; `code` is the exit code
    (2: the arguments are wrong, 1: a port is taken)."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class StandIns:
    slack_url: str
    mail_host: str
    mail_port: int | None
    """None: no SMTP stand-in (aiosmtpd is missing)"""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def slack_line(message: SlackMessage) -> str:
    channel = str(message.payload.get("channel") or message.target.rsplit("/", 1)[-1]).lstrip("#")
    text = " ".join(html.unescape(str(message.payload.get("text", ""))).split())
    return f"slack: #{channel}  {_clip(text)}"


def mail_line(mail: ReceivedMail) -> str:
    return f"mail: to {', '.join(mail.rcpt_tos)}: {_clip(' '.join(mail.subject.split()))}"


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_text(setups: list[ProviderSetup], stand_ins: StandIns, base_url: str, interval: str) -> list[str]:
    """The statehook.toml for the running simulator; the secrets are in `env_text`."""
    lines = [f"{MARK}, for the simulator at {base_url}", ""]
    lines += providers_toml(setups, [s.watch(interval) for s in setups])
    lines.append(f"# webhook_url from {env_name(('destinations', 'slack', 'webhook_url'))}")
    lines += toml_table("destinations.slack", {"kind": "slack"})
    # Slack takes about one message a second per webhook: the state changes only; mail takes everything
    routes: list[dict[str, Any]] = [{"match": {"type": ["*.state_changed"]}, "to": ["slack"]}]
    if stand_ins.mail_port is not None:
        lines += toml_table("destinations.email", {
            "kind": "email", "host": stand_ins.mail_host, "port": stand_ins.mail_port, "security": "plain",
            "from": MAIL_FROM, "to": [MAIL_TO],
        })
        routes.append({"to": ["email"]})
    return lines + toml_array("routes", routes)


def env_text(setups: list[ProviderSetup], stand_ins: StandIns) -> list[str]:
    lines = [line for s in setups for line in s.env_lines()]
    return [*lines, env_line(("destinations", "slack", "webhook_url"), stand_ins.slack_url)]


def check_writable(path: Path) -> None:
    """`path` and the `.env` beside it may be (over)written: absent, or written by us before."""
    if not path.parent.is_dir():
        raise ServeError(f"--write-config: {path.parent} is not a directory")
    for target in (path, path.parent / ".env"):
        if target.is_dir():
            raise ServeError(f"--write-config: {target} is a directory")
        text = target.read_text(errors="replace") if target.exists() else None
        if text is not None and not text.startswith(MARK):
            raise ServeError(f"--write-config: {target} exists and was not written by statehook simulate; "
                             "remove it or choose another path")
        if text is not None and _edited(text):
            raise ServeError(f"--write-config: {target} was edited since statehook simulate wrote it; "
                             "remove it or choose another path")


_SEAL = "# statehook simulate: sha256 {} of the lines above (edited, this file is not overwritten)\n"
_SEAL_FORM = re.compile(r"# statehook simulate: sha256 ([0-9a-f]{16}) of the lines above[^\n]*\n?")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sealed(text: str) -> str:
    """`text` and a last line with its digest, which tells an edit by hand from our own file."""
    return text + _SEAL.format(_digest(text))


def _edited(text: str) -> bool:
    """Whether a file we wrote was changed since (one written before the seal: never)."""
    body, _, last = text.rstrip("\n").rpartition("\n")
    seal = _SEAL_FORM.fullmatch(last)
    return seal is not None and seal.group(1) != _digest(body + "\n")


def write_config(path: Path, toml_lines: list[str], env_lines: list[str]) -> Path:
    """Writes the config to `path` and the environment to `.env` beside it; returns the latter."""
    dotenv = path.parent / ".env"
    try:
        path.write_text(_sealed("\n".join(toml_lines) + "\n"))
        dotenv.touch(mode=0o600)  # it holds the secrets
        dotenv.chmod(0o600)
        dotenv.write_text(_sealed("\n".join([MARK, *env_lines]) + "\n"))
    except OSError as exc:
        raise ServeError(f"--write-config: cannot write {exc.filename}: {exc.strerror}") from None
    return dotenv


def _listen_error(what: str, option: str, host: str, port: int, exc: OSError) -> ServeError:
    if isinstance(exc, socket.gaierror):
        return ServeError(f"--host: cannot resolve {host}: {exc.strerror}")
    reason = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else (exc.strerror or str(exc))
    hint = f" ({option} 0 picks a free one)" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else ""
    option = "--host" if exc.errno == errno.EADDRNOTAVAIL else option
    return ServeError(f"{option}: the {what} cannot listen on {host}:{port}: {reason}{hint}", code=1)


async def _start(sim: Simulator, host: str, port: int, smtp_port: int, out: Out, warn: Out) -> tuple[
        StandIns, MailStandIn | None]:
    slack = SlackStandIn(on_message=lambda m: out(slack_line(m)))
    sim.mount("slack", slack.make_app())
    try:
        base = await sim.start(host, port)
    except OSError as exc:
        raise _listen_error("simulator", "--port", host, port, exc) from None
    slack.base_url = f"{base}/slack"
    mail = MailStandIn(on_mail=lambda m: out(mail_line(m)))
    try:
        await mail.start(host, smtp_port)
    except MailUnavailable as exc:
        warn(f"warning: no SMTP stand-in: {exc}; the config has no email destination")
        return StandIns(slack.webhook_url(SLACK_WEBHOOK), host, None), None
    except OSError as exc:
        await sim.stop()
        raise _listen_error("SMTP stand-in", "--smtp-port", host, smtp_port, exc) from None
    return StandIns(slack.webhook_url(SLACK_WEBHOOK), host, mail.port), mail


def default_smtp_port(port: int) -> int:
    """The port after the simulator's; with `port` 0 (or the last port), a free one."""
    return port + 1 if 0 < port < 65535 else 0


def _summary(sim: Simulator, setups: list[ProviderSetup], stand_ins: StandIns) -> list[str]:
    lines = [f"simulator listening on {sim.base_url}"]
    for s in setups:
        shown = ", ".join(s.ids[:3]) + (f" and {len(s.ids) - 3} more" if len(s.ids) > 3 else "")
        lines.append(f"  {s.name}: {sim.url(s.name)}  seeded: {shown}")
    lines.append(f"  slack: {stand_ins.slack_url}  (an incoming webhook for #ops)")
    if stand_ins.mail_port is not None:
        lines.append(f"  smtp: {stand_ins.mail_host}:{stand_ins.mail_port}  (plain, no login)")
    return lines


def _how_to(written: tuple[Path, Path] | None) -> list[str]:
    if written:
        config, dotenv = written
        where = f"wrote {config} and {dotenv} (statehook reads .env from the directory it runs in)"
        return ["", where, f"next: statehook check --config {config} && statehook run --config {config}"]
    return [
        "",
        "Put the TOML below in statehook.toml and the environment lines in .env (or export them), then run",
        "statehook check and statehook run there (Redis: STATEHOOK_REDIS_URL, default redis://127.0.0.1:6379/0).",
    ]


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    smtp_port: int | None = None,
    names: list[str] | None = None,
    orders: int = 4,
    step_every: float | None = None,
    seed: int = 7,
    interval: str = "2s",
    write_to: Path | None = None,
    out: Out = print,
    warn: Out = _stderr,
) -> None:
    """Run until SIGINT/SIGTERM (or cancellation). `smtp_port` defaults to `port + 1`
    (a free one with `port` 0). Raises ValueError for an unknown provider, ServeError
    when a port cannot be had or the config cannot be written."""
    sim = build_simulator(names, orders_per_provider=orders, seed=seed)
    if write_to is not None:
        check_writable(write_to)
    smtp = default_smtp_port(port) if smtp_port is None else smtp_port
    stand_ins, mail = await _start(sim, host, port, smtp, out, warn)
    try:
        setups = provider_setups(sim)
        toml_lines = config_text(setups, stand_ins, sim.base_url, interval)
        env_lines = env_text(setups, stand_ins)
        written = (write_to, write_config(write_to, toml_lines, env_lines)) if write_to is not None else None
        for line in _summary(sim, setups, stand_ins) + _how_to(written):
            out(line)
        for line in [TOML_START, *toml_lines, ENV_START, *env_lines, END]:
            out(line)
        out(f"orders move along every {step_every:g}s from the first poll on; Ctrl-C stops" if step_every
            else "orders do not move along (--step-every 0); Ctrl-C stops")
        await _run(sim, step_every, out)
    finally:
        if mail is not None:
            await mail.stop()
        await sim.stop()


async def _run(sim: Simulator, step_every: float | None, out: Out) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        if not step_every:
            await stop.wait()
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=step_every)
        # nothing moves before statehook has seen it once: a change made earlier is no event
        if not stop.is_set() and sim.requests:
            for line in sim.step():
                out(line)
