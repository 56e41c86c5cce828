"""Names of the Redis keys statehook owns. One place, so that nothing else spells them."""

from __future__ import annotations

__all__ = [
    "BOOKED",
    "CONFIG_WATCHES",
    "DISABLED",
    "DLQ",
    "DLQ_COUNTS",
    "DUE",
    "EPOCH",
    "ERRORS",
    "GROUP",
    "META",
    "OUTBOX",
    "PREFIX",
    "PROVIDER_HEALTH",
    "STATE",
    "STATS",
    "WORKERS",
    "WORKER_BEATS",
    "attempts",
    "delivery_mark",
    "old_timeline",
    "pause",
    "snapshot",
    "throttle",
]

PREFIX = "sh:"
PROVIDER_HEALTH = PREFIX + "provider_health"  # HASH provider -> why it is unhealthy
DUE = PREFIX + "due"              # ZSET rkey -> due time (unix seconds)
META = PREFIX + "meta"            # HASH rkey -> watch meta JSON (interval, discovered, scan, source)
CONFIG_WATCHES = PREFIX + "watches:config"  # SET the config file's rkeys at its last sync, and ""
STATE = PREFIX + "state"          # HASH rkey -> "digest|seq|changed_at" (the commit guard)
ERRORS = PREFIX + "errors"        # HASH rkey -> consecutive poll failures
OUTBOX = PREFIX + "outbox"        # STREAM of events (field e = event JSON)
GROUP = "dispatch"                # the outbox's consumer group
DLQ = PREFIX + "dlq"              # STREAM of dead letters
DLQ_COUNTS = PREFIX + "dlq:n"     # HASH destination -> its entries in sh:dlq (store/deliveries.py)
STATS = PREFIX + "stats"          # HASH counter -> value, shared by all workers
DISABLED = PREFIX + "disabled"    # HASH destination -> reason (410 Gone)
WORKERS = PREFIX + "workers"      # ZSET worker id -> when its heartbeat runs out (unix seconds)
WORKER_BEATS = PREFIX + "workers:beat"  # HASH worker id -> its last heartbeat {at, interval, pid} (store/registry.py)
BOOKED = PREFIX + "booked"        # HASH rkey -> the provider rate slot a deferred poll waits for (tasks/rate_slots.py)
EPOCH = PREFIX + "epoch"          # STRING: this dataset's random name, set once; gone = Redis lost its data


def snapshot(rkey: str) -> str:
    """STRING: the resource's record, its packed snapshot and its timeline (store/record_frame.py)."""
    return f"{PREFIX}snap:{rkey}"


def old_timeline(rkey: str) -> str:
    """LIST: a resource's timeline as statehook kept it before the timeline moved into the
    record; read beside the record, and moved into it by the next entry written."""
    return f"{PREFIX}h:{rkey}"


def attempts(event_id: str) -> str:
    return f"{PREFIX}att:{event_id}"


def delivery_mark(event_id: str, destination: str) -> str:
    """"lease" while a batch sends the event, then "done": a batch that runs twice sends once."""
    return f"{PREFIX}dm:{event_id}:{destination}"


def pause(provider: str) -> str:
    return f"{PREFIX}pause:{provider}"


def throttle(route: str, rkey: str, event_type: str) -> str:
    """`route` is the route's key (core/route.py), so a reordered config keeps its throttles."""
    return f"{PREFIX}thr:{route}:{rkey}:{event_type}"


def provider_rate(provider: str) -> str:
    """STRING: the next free request slot of a provider, shared by all workers (store/rates.py)."""
    return f"{PREFIX}rate:{provider}"


def arq_health(worker_name: str) -> str:
    """ARQ's own health-check key of one worker process."""
    return f"{PREFIX}arq-health:{worker_name}"


SLACK_PREFIX = PREFIX + "slack:"


def slack_rate(target_hash: str) -> str:
    """STRING: the next free message slot of one Slack webhook or channel, across workers."""
    return f"{SLACK_PREFIX}rate:{target_hash}"


def slack_thread(destination: str, channel_hash: str, rkey: str) -> str:
    """STRING: the `ts` of the thread a resource's messages answer in, per destination and channel."""
    return f"{SLACK_PREFIX}thread:{destination}:{channel_hash}:{rkey}"


DIGEST_PREFIX = PREFIX + "digest:"
DIGEST_DUE = DIGEST_PREFIX + "due"          # ZSET window member -> end of the window (ms)
DIGEST_CLAIMED = DIGEST_PREFIX + "claimed"  # ZSET window member -> when it was claimed (ms)
DIGEST_OPEN = DIGEST_PREFIX + "l:"          # LIST per open window: event JSONs
DIGEST_TAKEN = DIGEST_PREFIX + "c:"         # LIST per claimed window
DIGEST_FLUSHED = DIGEST_PREFIX + "f:"       # marker: this window is closed, late events go to the next

OPERATIONAL_SEQ = PREFIX + "op:seq"          # HASH subject key -> its operational events' last seq
OPERATIONAL_CONDITIONS = PREFIX + "op:cond"  # HASH "condition|subject key" -> JSON of when it began


def operational_throttle(event_type: str, subject_key: str) -> str:
    """STRING with a TTL: an operational event of this type and subject was sent within its throttle."""
    return f"{PREFIX}op:thr:{event_type}:{subject_key}"


REMINDER_PREFIX = PREFIX + "rem:"
REMINDER_DUE = REMINDER_PREFIX + "due"        # ZSET armed reminder -> when the next is due (unix seconds)
REMINDER_RECORD = REMINDER_PREFIX + "r:"      # HASH per armed reminder (store/reminders.py)
REMINDER_SEEN = REMINDER_PREFIX + "seen"      # HASH rkey -> "seq|s|state" (or "seq|g|": gone) of its last state event


def reminder_record(member: str) -> str:
    return REMINDER_RECORD + member


def reminders_of(rkey: str) -> str:
    """SET: the armed reminders of one resource (store/reminders.py)."""
    return f"{REMINDER_PREFIX}k:{rkey}"


def reminder_ack(rkey: str) -> str:
    """HASH: the acknowledgement of a resource's current state: state, author, comment, at."""
    return f"{REMINDER_PREFIX}ack:{rkey}"


SILENCES = PREFIX + "silences"                 # HASH silence id -> silence JSON (store/silences.py)
SILENCES_VERSION = PREFIX + "silences:version"  # STRING counter, raised by every change of a silence
RECENT = PREFIX + "recent"                     # STREAM of routed events' facts, 24 h (store/recent.py)
WINDOW_PREFIX = PREFIX + "window:"
WINDOW_DUE = WINDOW_PREFIX + "due"          # ZSET held member -> end of the muting (ms) (store/window_hold.py)
WINDOW_CLAIMED = WINDOW_PREFIX + "claimed"  # ZSET held member -> when it was claimed (ms)
WINDOW_OPEN = WINDOW_PREFIX + "l:"          # LIST per held member: the muted events' JSON
WINDOW_TAKEN = WINDOW_PREFIX + "c:"         # LIST per claimed member
WINDOW_FLUSHED = WINDOW_PREFIX + "f:"       # marker: this muting has ended and was summarised

CIRCUIT_PREFIX = PREFIX + "circ:"
CIRCUITS_OPEN = CIRCUIT_PREFIX + "open"  # SET destinations whose circuit is open or flushing (store/circuit.py)
CIRCUIT_SEQ = CIRCUIT_PREFIX + "seq"     # STRING counter: the arrival order of held deliveries


def circuit(destination: str) -> str:
    """STRING: a destination's circuit record (core/circuit.py's JSON); absent: closed and clean."""
    return f"{CIRCUIT_PREFIX}s:{destination}"


def circuit_held(destination: str) -> str:
    """ZSET: event ids held while the destination's circuit is not closed, scored by arrival."""
    return f"{CIRCUIT_PREFIX}h:{destination}"


def circuit_entries(destination: str) -> str:
    """HASH: event id -> a held delivery (attempts made, when held, the event JSON)."""
    return f"{CIRCUIT_PREFIX}e:{destination}"


PROVIDER_FAILS = PREFIX + "provider_fails"      # HASH provider -> consecutive failed polls, none answered between
PROVIDER_LIMITED = PREFIX + "provider_limited"  # HASH provider -> since when it answers 429, none answered since
LATE = PREFIX + "late"                          # ZSET rkey -> the due time it was claimed at, until it is polled
OVERDUE = PREFIX + "overdue"                    # SET rkeys reported overdue (statehook.watch.overdue), until recovered


def sweep(scan_rkey: str, which: str) -> str:
    """LIST: the rkeys a scan listed in its sweep in progress (`cur`) or in its last full sweep (`prev`), an
    entry per page (store/sweeps.py)."""
    return f"{PREFIX}sweep:{which}:{scan_rkey}"
