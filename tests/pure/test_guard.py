"""The guard of the pure suite refuses I/O (else "pure" would be a promise only)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.pure.conftest import NoIOInPureTests


def test_a_pure_test_cannot_connect() -> None:
    with pytest.raises(NoIOInPureTests), socket.socket() as s:
        s.connect(("127.0.0.1", 9))


def test_a_pure_test_cannot_start_a_process() -> None:
    with pytest.raises(NoIOInPureTests):
        subprocess.run(["true"], check=False)
