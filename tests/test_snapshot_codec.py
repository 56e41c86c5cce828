"""The stored snapshot's format: a dictionary id byte and raw deflate, and nothing else."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path
from types import ModuleType

import orjson
import pytest
import redis.asyncio as aioredis

from core.due import STOP_POLLING
from core.fingerprint import canonical
from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from store import keys, snapshot_codec
from store.snapshots import Commit, CorruptRecord, ResourceState, Store, pack_snapshot, unpack_snapshot

FIXTURE = Path(__file__).parent / "fixtures" / "artistree_order.json"


def _order_body() -> bytes:
    provider = ArtistreeProvider(ArtistreeSettings(client_id="x", client_secret="x"), None)  # type: ignore[arg-type]
    payload = orjson.loads(FIXTURE.read_bytes())
    return canonical(provider.normalize(ResourceRef("artistree", "order", payload["order_id"]), payload))


@pytest.mark.parametrize("body", [_order_body(), b"{}", b'{"status":"Complete"}', b'{"x":"' + b"ab" * 40_000 + b'"}'])
def test_a_packed_snapshot_unpacks_to_the_same_bytes(body: bytes) -> None:
    packed = snapshot_codec.pack(body)
    assert packed[0] == snapshot_codec.WRITE_WITH
    assert snapshot_codec.unpack(packed) == body


def test_the_dictionary_makes_an_order_smaller_than_plain_zlib() -> None:
    body = _order_body()
    assert len(snapshot_codec.pack(body)) < 0.75 * len(zlib.compress(body, 1))


def test_a_plain_zlib_stream_is_not_a_snapshot() -> None:
    """Snapshots were never stored as plain zlib: its first byte (0x78) names no dictionary."""
    old = zlib.compress(_order_body(), 1)
    with pytest.raises(snapshot_codec.UnknownDictionary, match="dictionary 120"):
        snapshot_codec.unpack(old)
    with pytest.raises(CorruptRecord, match="not a snapshot"):
        unpack_snapshot(old, "sh:snap:x")


def test_an_unknown_dictionary_id_says_which_and_why() -> None:
    packed = bytearray(snapshot_codec.pack(b'{"a":1}'))
    packed[0] = 200
    with pytest.raises(snapshot_codec.UnknownDictionary, match=r"dictionary 200.*newer version"):
        snapshot_codec.unpack(bytes(packed))


def test_a_truncated_snapshot_is_an_error_not_partial_json() -> None:
    packed = snapshot_codec.pack(_order_body())
    with pytest.raises(ValueError, match="truncated"):
        snapshot_codec.unpack(packed[: len(packed) // 2])


def test_new_snapshots_are_written_with_a_known_dictionary() -> None:
    assert snapshot_codec.WRITE_WITH in snapshot_codec.DICTIONARIES


@pytest.mark.parametrize("dict_id", sorted(snapshot_codec.DICTIONARIES))
def test_every_dictionary_file_is_the_one_it_was_pinned_as(dict_id: int) -> None:
    assert snapshot_codec.dictionary(dict_id)  # raises if the file's sha256 differs


def _build_script() -> ModuleType:
    """scripts/build_snapshot_dicts.py, which is no runtime module (it imports the simulator)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "build_snapshot_dicts.py"
    spec = importlib.util.spec_from_file_location("build_snapshot_dicts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_script_makes_dictionary_1_byte_for_byte() -> None:
    build = _build_script()
    assert build.artistree_dictionary() == snapshot_codec.dictionary(1)


async def test_the_store_reads_what_it_wrote_and_counts_what_it_cannot(redis: aioredis.Redis) -> None:
    store = Store(redis)
    body = _order_body()
    ref, bad_ref = ResourceRef("artistree", "order", "new-1"), ResourceRef("artistree", "order", "zlib-1")
    state = ResourceState("d" * 24, 0, 1_700_000_000.0)
    assert await store.commit([Commit(ref, None, state, pack_snapshot(body), STOP_POLLING, [])]) == [True]
    await redis.set(keys.snapshot(bad_ref.key), zlib.compress(body, 1))
    expected = orjson.loads(body)
    assert await store.snapshots([ref.key, bad_ref.key, "artistree:order:none"]) == [expected, None, None]
    assert (await redis.get(keys.snapshot(ref.key)))[0] == snapshot_codec.WRITE_WITH
    assert int(await redis.hget(keys.STATS, "corrupt_records")) == 1  # type: ignore[misc]
