"""A Redis URL's TLS options (store/redis_url.py): only a rediss:// URL opens a TLS connection, so
only it takes the ssl_* options, and their values are ones redis-py can use. A URL that passes the
config check opens a client (no TypeError or RedisError at the first command), and a URL that does
not stops start-up with one line naming STATEHOOK_REDIS_URL, never quoting the URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio.connection import Connection, SSLConnection
from typer.testing import CliRunner

from store.redis_url import redis_url_problem
from tests.test_config_edges import BASE_ENV, GOOD, REDIS_PASSWORD
from worker.cli import app
from worker.redis_client import redis_client

AUTH = f"default:{REDIS_PASSWORD}@"

REFUSED = [
    (f"redis://{AUTH}h/0?ssl_cert_reqs=none",
     "the URL's option ssl_cert_reqs is for TLS, which a redis:// URL does not use: use rediss://"),
    (f"redis://{AUTH}h/0?ssl_ca_certs=/etc/ssl/ca.pem",
     "the URL's option ssl_ca_certs is for TLS, which a redis:// URL does not use: use rediss://"),
    (f"rediss://{AUTH}h/0?ssl_cert_reqs=bogus", "the URL's option ssl_cert_reqs takes none, optional or required"),
    (f"rediss://{AUTH}h/0?ssl_cert_reqs=", "the URL's option ssl_cert_reqs takes none, optional or required"),
    (f"rediss://{AUTH}h/0?ssl_cert_reqs={REDIS_PASSWORD}",
     "the URL's option ssl_cert_reqs takes none, optional or required"),
    (f"rediss://{AUTH}h/0?ssl_min_version=TLSv1_2", "the URL's option ssl_min_version cannot be set in a URL"),
]


@pytest.mark.parametrize("url, problem", REFUSED, ids=[u.split("@", 1)[1] for u, _ in REFUSED])
def test_tls_options_redis_py_cannot_use_are_a_problem_that_never_quotes_the_url(url: str, problem: str) -> None:
    assert redis_url_problem(url) == problem


@pytest.mark.parametrize("command", [["check"], ["watch", "ls"]])
@pytest.mark.parametrize("url, problem", REFUSED[:1] + REFUSED[2:3], ids=["redis-with-ssl", "bogus-cert-reqs"])
def test_a_tls_option_redis_py_cannot_use_stops_the_cli_with_one_line(
    command: list[str], url: str, problem: str, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """These passed `check --no-redis`, then `check` and `watch ls` ended in a TypeError or a RedisError."""
    for name, value in {**BASE_ENV, "STATEHOOK_REDIS_URL": url}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, [*command, "--config", str(tmp_config(GOOD))])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, TypeError | ValueError | LookupError), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: STATEHOOK_REDIS_URL: redis_url: {problem}"], result.output
    assert REDIS_PASSWORD not in result.output


@pytest.mark.parametrize("option", ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"])
def test_a_tls_option_naming_a_file_that_is_not_there_is_a_problem(option: str, tmp_path: Path) -> None:
    """It passed the check, then every connection failed with an SSL error."""
    for missing in (tmp_path / "nowhere.pem", tmp_path):  # not there; a directory
        assert redis_url_problem(f"rediss://{AUTH}h/0?{option}={missing}") == \
            f"the URL's option {option} names no file that statehook can read"
    there = tmp_path / "ca.pem"
    there.write_text("-----BEGIN CERTIFICATE-----\n")
    assert redis_url_problem(f"rediss://{AUTH}h/0?{option}={there}") is None


@pytest.mark.parametrize("cert_reqs", ["none", "optional", "required"])
def test_a_rediss_url_with_a_cert_reqs_redis_py_takes_opens_a_tls_client(cert_reqs: str) -> None:
    url = f"rediss://{AUTH}h:6380/1?ssl_cert_reqs={cert_reqs}&ssl_check_hostname=false"
    assert redis_url_problem(url) is None
    pool = redis_client(url).connection_pool
    assert issubclass(pool.connection_class, SSLConnection)
    pool.make_connection()  # builds the connection's TLS settings (no I/O): a bad flag raised here


async def test_a_redis_url_opens_a_plain_connection_that_answers(redis_url: str) -> None:
    url = f"{redis_url}?socket_timeout=2&socket_connect_timeout=2&health_check_interval=0"
    assert redis_url_problem(url) is None
    client = redis_client(url)
    try:
        assert issubclass(client.connection_pool.connection_class, Connection)
        assert not issubclass(client.connection_pool.connection_class, SSLConnection)
        assert await client.ping()
    finally:
        await client.aclose()
