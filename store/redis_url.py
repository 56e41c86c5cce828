"""What a Redis URL may be, checked without connecting: plain, TLS, a unix socket, or a set of
Sentinels (`redis+sentinel://host:port,…/service/db`). Used where the config is loaded (one
line per problem, never quoting the URL) and by the client that opens it (worker/redis_client.py)."""

from __future__ import annotations

import functools
import inspect
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.connection import parse_url

__all__ = ["SENTINEL_SCHEMES", "URL_FORMS", "SentinelTarget", "parse_sentinel_url", "redis_url_problem"]

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
URL_FORMS = "redis://[:password@]host:port/db, rediss://…, unix:///path or redis+sentinel://host:port,…/service/db"
CERT_REQS = ("none", "optional", "required")
"""what redis-py takes for `ssl_cert_reqs` (anything else fails every connection, not the config)"""


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """`redis+sentinel://[user:password@]host1:26379,host2:26379/service[/db]`."""

    sentinels: list[tuple[str, int]]
    service: str = "mymaster"
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Raises ValueError for a URL that names no sentinel or has a bad port or db."""
    rest = url.split("://", 1)[1]
    auth, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    sentinels = []
    for item in filter(None, (h.strip() for h in hosts.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "26379"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not a sentinel address: host:port expected, got {item.split('@')[-1]!r}")
        sentinels.append((host, int(port)))
    if not sentinels:
        raise ValueError("a sentinel URL names at least one sentinel")
    db = db.strip("/")
    if db and not db.isdigit():
        raise ValueError("the database of a sentinel URL is a number")
    username, _, password = auth.partition(":") if auth else ("", "", "")
    return SentinelTarget(sentinels, unquote(service or "mymaster"), int(db or 0), unquote(username) or None,
                          unquote(password) or None, url.startswith("rediss+"))


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, in words that never quote it (it may hold a password);
    None when `redis_client` can open it. Nothing is sent."""
    if not url.strip():
        return f"empty: a Redis URL is {URL_FORMS}"
    if url.startswith(SENTINEL_SCHEMES):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "unix"):
        named = f"its scheme is {scheme}://" if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme) \
            else "no scheme://"
        return f"not a Redis URL ({named}): use {URL_FORMS}"
    return _url_parts_problem(url, scheme)


def _url_parts_problem(url: str, scheme: str) -> str | None:
    parts = urlsplit(url)
    try:
        port = parts.port  # urllib checks the port when it is read
    except ValueError:
        port = 0
    if port == 0:
        return "the port is not a number from 1 to 65535"
    if scheme == "unix" and not parts.path:
        return "a unix:// URL names the socket's path (unix:///run/redis.sock)"
    if scheme != "unix" and unquote(parts.path).strip("/") and not unquote(parts.path).strip("/").isdigit():
        return "the database (the URL's path) is a number, e.g. /0"
    try:
        parse_url(url)
    except ValueError as exc:  # "Invalid value for 'socket_timeout' in connection URL."
        option = re.search(r"'(\w+)'", str(exc))
        return f"the URL's option {option.group(1) if option else '(one of them)'} has a value Redis cannot use"
    known = _connection_options(scheme)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in known:
            if scheme == "redis" and name in _connection_options("rediss"):
                return f"the URL's option {name} is for TLS, which a redis:// URL does not use: use rediss://"
            # a name is printed only if it looks like one (a stray password in the query must not be)
            named = repr(name) if re.fullmatch(r"[a-z_]{1,30}", name) else "one of them"
            return f"the URL's option {named} is not an option of a Redis connection"
        if name == "ssl_cert_reqs" and value not in CERT_REQS:
            return "the URL's option ssl_cert_reqs takes none, optional or required"
        if name == "ssl_min_version":  # a URL gives text, redis-py needs an ssl.TLSVersion: no connection opens
            return "the URL's option ssl_min_version cannot be set in a URL"
        if name in _TLS_FILES and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            return f"the URL's option {name} names no file that statehook can read"
    return None


_TLS_FILES = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
"""the TLS options that name a file: a missing one fails every connection with an SSL error,
long after the config was checked"""


@functools.cache
def _connection_options(scheme: str) -> frozenset[str]:
    """What a URL's query may set: the connection's keyword arguments, and the pool's size. Only a
    rediss:// URL opens an SSLConnection (redis-py's `parse_url`), so only it takes the ssl_* options."""
    cls = {"unix": UnixDomainSocketConnection, "rediss": SSLConnection}.get(scheme, Connection)
    names = {"max_connections"}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names.update(p for p in inspect.signature(vars(klass)["__init__"]).parameters if p != "self")
    return frozenset(names)
