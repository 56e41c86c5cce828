"""Rev: transcription and caption orders (seed 002_*).

Auth is a pair of static API keys in `Authorization: Rev <client_key>:<user_key>`; Rev
also insists on an `Accept` header naming the format. Errors: 401 and 404 come with an
empty body, other 4xx with `{code, message}`.

`status` drives the state: Complete and Cancelled (also spelled Canceled) are terminal,
every other value is open. Complete can be re-opened for quality control, so a finished
order keeps a slow poll for `reopen_tail` seconds. Attachments are keyed by id in the
snapshot so that Rev listing them in another order is not a change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from pydantic import SecretStr, model_validator

from model.errors import MalformedPayload
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, ScanItem, Snapshot
from model.values import DurationOrOff, HttpUrl
from providers.auth import StaticHeader
from providers.base import Provider
from providers.shared import short
from providers.spec import DAY, ProviderSpec, ScanFilter, TailedSettings

__all__ = ["RevProvider", "RevSettings", "RevSpec", "is_terminal"]

TERMINAL = frozenset({"complete", "cancelled", "canceled"})
CRITICAL = frozenset({"cancelled", "canceled"})
MEDIA_KIND = "media"
SCALARS = ("order_number", "client_ref", "po_number", "price", "status")
SERVICES = ("transcription", "caption")
ATTACHMENT_FIELDS = ("id", "kind", "name", "audio_length_seconds")
LINK_FIELDS = ("rel", "href", "content-type")
COMMENT_FIELDS = ("by", "timestamp", "text")
COMMENT_ORDER = ("timestamp", "by", "text")
MAX_PAGES = 10_000  # a guard against a list that never ends, far above any real account


class RevSettings(TailedSettings):
    base_url: HttpUrl = "https://api.rev.com"
    client_key: SecretStr
    user_key: SecretStr
    reopen_tail: DurationOrOff = DAY

    stall_defaults: ClassVar[dict[str, float]] = {"Transcribing": DAY, "Captioning": DAY, "*": 3 * DAY}

    @model_validator(mode="after")
    def _tail_follows_reopen(self) -> RevSettings:
        """A Complete order can be re-opened for QC: unless `terminal_tail` is set explicitly,
        it is polled every `terminal_interval` for `reopen_tail` seconds, then every
        `terminal_late_interval` until `terminal_late_tail`, like any provider's tail."""
        if "terminal_tail" not in self.model_fields_set:
            self.terminal_tail = self.reopen_tail
        return self


def is_terminal(status: str | None) -> bool:
    return isinstance(status, str) and status.strip().casefold() in TERMINAL


class RevScan(ScanFilter):
    """Every order of the account: no keys."""


class RevSpec(ProviderSpec):
    name = "rev"
    settings_model = RevSettings
    kinds: ClassVar[tuple[str, ...]] = ("order", "scan")
    scan_filter = RevScan
    fingerprint_blanks = ()
    """An order carries no volatile values: an answer byte-equal to the last one is unchanged
    without a parse."""
    settings: RevSettings

    @staticmethod
    def error_reason(body: bytes) -> str:
        """Rev's `{code, message}`: the message, with the code when there is one."""
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return ""
        if not isinstance(parsed, dict) or not isinstance(parsed.get("message"), str):
            return ProviderSpec.error_reason(body)
        code = parsed.get("code")
        message = str(parsed["message"])[:200]
        return f"{message} (code {code})" if code is not None else message

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict):
            raise MalformedPayload(f"rev: {ref.key}: payload is not an object")
        if not isinstance(payload.get("status"), str):
            raise MalformedPayload(f"rev: {ref.key}: payload has no status")
        snap: Snapshot = {k: payload.get(k) for k in SCALARS}
        if snap["order_number"] is None:
            snap["order_number"] = ref.id
        for service in SERVICES:
            if isinstance(payload.get(service), dict):
                snap[service] = payload[service]
        snap["attachments"] = _keyed_attachments(_list_of_dicts(ref, payload, "attachments"))
        comments = [{k: c.get(k) for k in COMMENT_FIELDS} for c in _list_of_dicts(ref, payload, "comments")]
        snap["comments"] = sorted(comments, key=lambda c: tuple(str(c[k] or "") for k in COMMENT_ORDER))
        return snap

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        status = snapshot.get("status")
        return ResourceInfo(
            title=_title(ref, snapshot),
            url=f"{self.base_url}/api/v1/orders/{quote(ref.id, safe='')}",
            state=status,
            terminal=is_terminal(status),
            project=str(snapshot["po_number"]) if snapshot.get("po_number") else None,
        )

    def severity_of_state(self, state: str | None) -> Severity:
        cancelled = isinstance(state, str) and state.strip().casefold() in CRITICAL
        return Severity.CRITICAL if cancelled else Severity.INFO

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        label = _label(ref, new)
        drafts: list[EventDraft] = []
        was, now = old.get("status"), new.get("status")
        if was != now:
            drafts.append(
                EventDraft(
                    type="rev.order.state_changed",
                    severity=self.severity_of_state(now),
                    summary=f"{label}: {was} → {now}",
                    data={
                        "from": was,
                        "to": now,
                        "terminal": is_terminal(now),
                        "changes": [c.as_dict() for c in changes],
                    },
                )
            )
        drafts.extend(_attachments_added(label, old, new))
        drafts.extend(_comments_added(label, old, new))
        return drafts


class RevProvider(Provider):
    spec_type = RevSpec
    settings: RevSettings

    def make_auth(self) -> StaticHeader:
        """Static keys in `Authorization: Rev <client_key>:<user_key>`, nothing to refresh."""
        client_key = self.settings.client_key.get_secret_value()
        user_key = self.settings.user_key.get_secret_value()
        return StaticHeader({"Authorization": f"Rev {client_key}:{user_key}", "Accept": "application/json"})

    async def fetch(self, ref: ResourceRef) -> Any:
        return self.parse(await self.fetch_body(ref))

    async def fetch_body(self, ref: ResourceRef) -> bytes:
        return await self.get_bytes(f"{self.base_url}/api/v1/orders/{quote(ref.id, safe='')}")

    async def scan(self, ref: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[list[ScanItem]]:
        """Every order of the account, page by page (`page` counts from 0). An order that
        moves between pages while the scan runs is yielded once."""
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            body = await self.get_json(f"{self.base_url}/api/v1/orders", params={"page": str(page)})
            orders, last = _list_page(body, page)
            items = []
            for order in orders:
                number = order.get("order_number")
                if isinstance(number, str) and number and number not in seen:
                    seen.add(number)
                    items.append(ScanItem(ResourceRef(self.name, "order", number), order))
            yield items
            if last:
                return


# ---- pure helpers --------------------------------------------------------------------


def _list_page(body: Any, page: int) -> tuple[list[dict[str, Any]], bool]:
    """The orders of one page of `GET /api/v1/orders` and whether it is the last one.

    The page is `{total_count, results_per_page, page, orders}`; an empty page, or one
    that reaches `total_count`, is the last."""
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        raise MalformedPayload("rev: order list has no orders array")
    orders = [o for o in body["orders"] if isinstance(o, dict)]
    total, per_page = body.get("total_count"), body.get("results_per_page")
    if not orders:
        return orders, True
    if isinstance(total, int) and isinstance(per_page, int) and per_page > 0:
        return orders, (page + 1) * per_page >= total
    return orders, False


def _list_of_dicts(ref: ResourceRef, payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedPayload(f"rev: {ref.key}: {key} is not a list of objects")
    return value


def _keyed_attachments(attachments: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Attachments keyed by id. Rev's own sample reuses one id for two attachments, so a
    shared id is told apart by kind (and then by position in a canonical order)."""
    cleaned = [_clean_attachment(a) for a in attachments]
    cleaned.sort(key=lambda a: orjson.dumps(a, option=orjson.OPT_SORT_KEYS))
    base = [str(a.get("id") or f"{a.get('kind')}:{a.get('name')}") for a in cleaned]
    shared = {k for k, n in Counter(base).items() if n > 1}
    keyed: dict[str, dict[str, Any]] = {}
    for key, att in zip(base, cleaned, strict=True):
        if key in shared:
            key = f"{key}#{att.get('kind')}"
        unique, n = key, 1
        while unique in keyed:
            n += 1
            unique = f"{key}#{n}"
        keyed[unique] = att
    return keyed


def _clean_attachment(att: dict[str, Any]) -> dict[str, Any]:
    out = {k: att[k] for k in ATTACHMENT_FIELDS if k in att}
    links = att.get("links")
    if isinstance(links, list):
        out["links"] = sorted(
            ({k: link[k] for k in LINK_FIELDS if k in link} for link in links if isinstance(link, dict)),
            key=lambda link: (str(link.get("rel")), str(link.get("href"))),
        )
    return out


def _attachment_values(snapshot: Snapshot) -> list[dict[str, Any]]:
    value = snapshot.get("attachments")
    if isinstance(value, dict):
        return [a for a in value.values() if isinstance(a, dict)]
    if isinstance(value, list):
        return [a for a in value if isinstance(a, dict)]
    return []


def _identity(att: dict[str, Any]) -> tuple[str, str, str]:
    return str(att.get("id")), str(att.get("kind")), str(att.get("name"))


def _content_url(att: dict[str, Any]) -> str | None:
    for link in att.get("links") or ():
        if isinstance(link, dict) and link.get("rel") == "content" and link.get("href"):
            return str(link["href"])
    return None


def _attachments_added(label: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    """One event per new attachment that is an output (transcript, caption, burned-in
    video), never for the media the customer uploaded."""
    before = {_identity(a) for a in _attachment_values(old)}
    drafts = []
    for att in sorted(_attachment_values(new), key=_identity):
        kind = str(att.get("kind") or "")
        if _identity(att) in before or kind.casefold() == MEDIA_KIND:
            continue
        drafts.append(
            EventDraft(
                type="rev.order.attachment_added",
                severity=Severity.INFO,
                summary=f"{label}: {kind or 'attachment'} “{att.get('name')}” ready",
                data={
                    "kind": att.get("kind"),
                    "name": att.get("name"),
                    "id": att.get("id"),
                    "content_url": _content_url(att),
                },
            )
        )
    return drafts


def _comment_key(c: dict[str, Any]) -> tuple[str, str, str]:
    return str(c.get("by")), str(c.get("timestamp")), str(c.get("text"))


def _comments_added(label: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    """Comments have no id: a comment is new when (by, timestamp, text) was not there
    before, counted, so that the same words said twice are two comments."""
    before = Counter(_comment_key(c) for c in old.get("comments") or () if isinstance(c, dict))
    drafts = []
    for comment in new.get("comments") or ():
        if not isinstance(comment, dict):
            continue
        key = _comment_key(comment)
        if before[key] > 0:
            before[key] -= 1
            continue
        drafts.append(
            EventDraft(
                type="rev.order.comment_added",
                severity=Severity.INFO,
                summary=f"{label}: comment by {comment.get('by')}: {short(str(comment.get('text') or ''), 120)}",
                data={k: comment.get(k) for k in COMMENT_FIELDS},
            )
        )
    return drafts


def _title(ref: ResourceRef, snapshot: Snapshot) -> str:
    return str(snapshot.get("client_ref") or snapshot.get("order_number") or ref.id)


def _label(ref: ResourceRef, snapshot: Snapshot) -> str:
    """`Order “6” (TC432432)`, or `Order “TC432432”` when there is no client reference."""
    title = _title(ref, snapshot)
    number = str(snapshot.get("order_number") or ref.id)
    return f"Order “{title}”" + (f" ({number})" if number != title else "")
