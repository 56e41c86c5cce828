"""Commands packed by hiredis: the same bytes as redis-py's own packer, the same refusals,
and every client `redis_client` makes uses it against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.typing import EncodableT

from worker.redis_client import redis_client
from worker.redis_packing import with_hiredis_packing

COMMANDS: list[tuple[EncodableT, ...]] = [
    ("HMGET", "sh:state", "artistree:order:a", "rev:order:TC1"),
    ("ZADD", "sh:due", "XX", 1796295092.123456, "a", 0.1, "b", 1e20, "c", -0.0, "d", float("inf"), "e"),
    ("HINCRBY", "sh:stats", "polls", 12),
    ("SET", b"sh:snap:x", b"\x01\x00\xff binary", "EX", 60),
    ("SET", "k", memoryview(b"a view")),
    ("SET", "k", "Ünïcödé → ✓"),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"w1"),
    ("EVALSHA", "0" * 40, 2, "k1", "k2", "x" * 10_000),
]


def _joined(chunks: list[bytes]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_a_command_packs_to_the_bytes_redis_py_packs(command: tuple[EncodableT, ...]) -> None:
    plain = Connection()
    packed = with_hiredis_packing(Connection)()
    assert _joined(packed.pack_command(*command)) == _joined(plain.pack_command(*command))
    assert _joined(packed.pack_commands([command, command])) == _joined(plain.pack_commands([command, command]))


@pytest.mark.parametrize("bad", [None, True, bytearray(b"x"), object()], ids=repr)
def test_an_argument_redis_py_refuses_is_refused_with_its_error(bad: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        with_hiredis_packing(Connection)().pack_command("SET", "k", bad)


def test_the_class_is_made_once_and_not_wrapped_twice() -> None:
    cls = with_hiredis_packing(Connection)
    assert with_hiredis_packing(Connection) is cls
    assert with_hiredis_packing(cls) is cls
    assert issubclass(cls, Connection)


async def test_redis_client_packs_with_hiredis_against_a_real_redis(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        assert client.connection_pool.connection_class is with_hiredis_packing(Connection)
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset("t:packing", mapping={"a": "Ünï", "b": 7})
            pipe.zadd("t:packing:z", {"m": 1796295092.123456, "n": 0.1})
            pipe.hmget("t:packing", ["a", "b", "missing"])
            pipe.zscore("t:packing:z", "m")
            *_, values, score = await pipe.execute()
        assert values == ["Ünï".encode(), b"7", None]
        assert score == 1796295092.123456
        with pytest.raises(DataError):
            await client.set("t:packing:bad", None)  # type: ignore[arg-type]
        assert await client.ping()  # the refused command left the connection usable
    finally:
        await client.delete("t:packing", "t:packing:z")
        await client.aclose()
