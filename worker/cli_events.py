"""`statehook events tail`: the last events, then new ones as they are committed."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Annotated, Any

import orjson
import typer

from model.resources import ResourceRef
from store import keys
from store.reads import Reads
from store.snapshots import read_history_entry
from store.unavailable import is_redis_down, redis_problem
from worker.cli_common import (
    ADD_CHUNK,
    ConfigOption,
    JsonOption,
    cli_redis,
    fail,
    load_or_exit,
    run_or_exit,
)

__all__ = ["events_app"]

events_app = typer.Typer(no_args_is_help=True, help="Read events as they are committed.")

# ---- events -------------------------------------------------------------------------------------


def _event_line(event: dict[str, Any]) -> str:
    return (f"{event.get('detected_at', '-')}  {event.get('severity', ''):<8} {event.get('type', '')}  "
            f"{event.get('resource', {}).get('key', '')}  {event.get('summary', '')}")


TIMELINE_SEARCH_LIMIT = 100_000
"""`events tail` reads the newest timeline entry of every resource when the outbox holds too
few events: not beyond this many resources (one LINDEX each)."""


def _sort_key(record: dict[str, Any]) -> tuple[str, str, int]:
    seq = record.get("seq")
    return (str(record.get("detected_at", "")), str(record.get("resource", {}).get("key", "")),
            seq if isinstance(seq, int) else 0)


def _outbox_record(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The event of an outbox entry with its `stream_id`; None (and a warning) if unreadable."""
    try:
        event = orjson.loads(fields[b"e"])
        if not isinstance(event, dict):
            raise ValueError("not an object")
        return {"stream_id": entry_id.decode(), **event}
    except (KeyError, ValueError, TypeError, AttributeError):
        typer.echo(f"warning: unreadable record skipped: {keys.OUTBOX}[{entry_id.decode()}]", err=True)
        return None


def _timeline_record(raw: bytes, rkey: str) -> dict[str, Any] | None:
    """A timeline entry shaped like an event (no data, no snapshot, `stream_id` null)."""
    try:
        item = read_history_entry(raw, rkey)
        ref = ResourceRef.parse(rkey)
        return {"stream_id": None, "id": item["id"], "type": item["type"], "provider": ref.provider,
                "resource": {"kind": ref.kind, "id": ref.id, "key": rkey}, "seq": item["seq"],
                "detected_at": item["at"], "severity": item["severity"], "summary": item["summary"]}
    except (KeyError, ValueError, TypeError):
        typer.echo(f"warning: unreadable record skipped: {keys.snapshot(rkey)} (timeline)", err=True)
        return None


async def _timeline_events(reads: Reads, limit: int) -> list[dict[str, Any]] | None:
    """The `limit` newest entries of all the resources' timelines, oldest first; None when
    there are more than TIMELINE_SEARCH_LIMIT resources. Each timeline is newest first: a
    resource whose newest entry is older than the `limit`-th newest of those newest entries
    has nothing to give, so only the others' timelines are read further."""
    if await reads.resource_count() > TIMELINE_SEARCH_LIMIT:
        return None
    rkeys = await reads.resource_keys()
    newest: list[tuple[dict[str, Any], str]] = []
    for i in range(0, len(rkeys), ADD_CHUNK):
        chunk = rkeys[i : i + ADD_CHUNK]
        heads = await reads.timeline_heads(chunk)
        newest += [(rec, rkey) for rkey, raw in zip(chunk, heads, strict=True)
                   if raw is not None and (rec := _timeline_record(raw, rkey)) is not None]
    newest.sort(key=lambda pair: _sort_key(pair[0]))
    if not newest:
        return []
    floor = _sort_key(newest[-limit:][0][0])
    candidates = [rkey for rec, rkey in newest if _sort_key(rec) >= floor]
    lists = await reads.timelines(candidates, limit)
    records = [rec for rkey, raws in zip(candidates, lists, strict=True) for raw in raws
               if (rec := _timeline_record(raw, rkey)) is not None]
    return sorted(records, key=_sort_key)[-limit:]


async def _recent_events(reads: Reads, count: int) -> tuple[list[dict[str, Any]], bytes | None, str | None]:
    """The `count` newest events, oldest first; the newest outbox entry's id; a note when
    the outbox held fewer (the dispatcher trims what it handed on), whose place the
    resources' timelines took."""
    entries = await reads.newest_outbox(count)
    last = entries[-1][0] if entries else None
    outbox = [rec for entry_id, fields in entries if (rec := _outbox_record(entry_id, fields)) is not None]
    if len(outbox) >= count:
        return outbox, last, None
    timeline = await _timeline_events(reads, count)
    if timeline is None:
        return outbox, last, (f"the outbox holds {len(outbox)} event(s) (it keeps only what is not yet "
                              f"dispatched); the timelines of more than {TIMELINE_SEARCH_LIMIT} resources "
                              "were not searched (statehook show RKEY shows one)")
    seen = {rec.get("id") for rec in outbox}
    older = [rec for rec in timeline if rec["id"] not in seen]
    merged = sorted(older + outbox, key=_sort_key)[-count:]
    note = (f"the outbox holds {len(outbox)} event(s) (it keeps only what is not yet dispatched); "
            f"{len(merged) - len(outbox)} more from the resources' timelines")
    if len(merged) < count:
        note += f"; {len(merged)} in all, fewer than the {count} asked for"
    return merged, last, note


class _EventPrinter:
    """Events as lines, or (`--json`) as one JSON array, written an element a line as they
    come (`[{…}`, `,{…}`, `]`) so that -f can stream it; `[]` when there is none."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.printed = 0

    def __call__(self, record: dict[str, Any]) -> None:
        if self.as_json:
            typer.echo(("," if self.printed else "[") + orjson.dumps(record).decode())
        else:
            typer.echo(_event_line(record))
        self.printed += 1
        sys.stdout.flush()

    def close(self) -> None:
        if self.as_json:
            typer.echo("]" if self.printed else "[]")


FOLLOW_RETRY = 1.0
"""seconds between two tries of `events tail -f` while Redis is unavailable"""


async def _follow(reads: Reads, last: bytes | None, max_events: int, out: _EventPrinter) -> None:
    """Print events as they are committed after `last` (the stream's end if None), up to
    `max_events` of them (0: until interrupted)."""
    if last is None:
        # "$" would be re-read on every call: pin the position to the stream's end now
        newest = await reads.newest_outbox(1)
        last = newest[0][0] if newest else b"0-0"
    seen, down_since = 0, None
    while max_events <= 0 or seen < max_events:
        wanted = 100 if max_events <= 0 else min(100, max_events - seen)
        try:
            entries = await reads.outbox_after(last, count=wanted, block_ms=500)
        except Exception as exc:
            if not is_redis_down(exc):  # a refused database included: it will not pass
                raise
            if down_since is None:  # one line each way, as a worker logs an outage
                down_since = time.monotonic()
                typer.echo(f"note: Redis unavailable ({redis_problem(exc)}): waiting for it", err=True)
            await asyncio.sleep(FOLLOW_RETRY)
            continue
        if down_since is not None:
            typer.echo(f"note: Redis available again after {time.monotonic() - down_since:.1f}s", err=True)
            down_since = None
        for entry_id, fields in entries:
            last = entry_id
            record = _outbox_record(entry_id, fields)
            if record is not None:
                out(record)
                seen += 1


@events_app.command("tail")
def events_tail(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    count: Annotated[int, typer.Option("--count", "-n", help="recent events to print first")] = 10,
    max_events: Annotated[int, typer.Option("--max-events", help="with -f: stop after this many new events")] = 0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print recent events, then (-f) new ones as they are committed.

    Reads the outbox stream directly (XREAD): it takes nothing from the dispatcher. The
    outbox keeps only what is not yet dispatched: older events come from the resources'
    timelines (without their data and snapshot). --json prints one JSON array, an event a
    line.
    """
    if count < 0:
        raise fail(f"--count: {count} is below 0")
    if max_events < 0:
        raise fail(f"--max-events: {max_events} is below 0")
    if max_events and not follow:
        raise fail("--max-events needs --follow (-f)")
    cfg = load_or_exit(config)
    out = _EventPrinter(as_json)

    async def go() -> None:
        async with cli_redis(cfg) as redis:
            last = None
            if count > 0:
                recent, last, note = await _recent_events(Reads(redis), count)
                if note:
                    typer.echo(f"note: {note}", err=True)
                for record in recent:
                    out(record)
            if follow:
                await _follow(Reads(redis), last, max_events, out)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_or_exit(go())
    except typer.Exit:
        if out.printed:
            out.close()  # what was printed stays a JSON array
        raise
    out.close()
