"""The pure suite: the model, the core and the providers' classify/normalize, tested with
plain values. Nothing here may open a socket or start a process; the guard below makes any
attempt fail the test, so that "needs no server" is checked, not promised."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


class NoIOInPureTests(AssertionError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NoIOInPureTests("a pure test opened a socket or started a process")


@pytest.fixture(autouse=True)
def no_network_or_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "bind", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse)
    yield
