"""Artistree Human: certification orders (seeds 000_*, 001_*).

Auth is OAuth2 client credentials (a Cognito token endpoint); tokens last about an hour.
`asset_preview_url` and `layers_info[].layer_url` are presigned and change on every
request, so they never reach a snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from core.listing import blank_values, split_page
from model.errors import MalformedPayload
from model.events import Change, EventDraft, Severity
from model.resources import ListedItems, ResourceInfo, ResourceRef, ScanItem, ScanPage, Snapshot
from model.values import HttpUrl
from providers.auth import ClientCredentials
from providers.base import Provider
from providers.spec import DAY, NonBlank, ProviderSpec, ScanFilter, TailedSettings

__all__ = ["ArtistreeProvider", "ArtistreeSettings", "ArtistreeSpec"]

log = logging.getLogger("statehook.providers.artistree")

STATES = ("In Progress", "Human Certified", "Action Required", "Reviewed", "Failed", "Unsupported File")
TERMINAL = frozenset({"Human Certified", "Failed", "Unsupported File"})
CRITICAL = frozenset({"Failed", "Unsupported File", "Action Required"})
VOLATILE_TOP = ("asset_preview_url",)
LIST_READ_BUFSIZE = 4 << 20
"""a list page of 1,000 orders is about 2.7 MB: let the next one arrive whole while the
current one is compared"""
VOLATILE_ANYWHERE = ("asset_preview_url", "layer_url")
"""presigned wherever they occur (the top level and `layers_info[]`): blanked in fetched
bodies and listed pages before their fingerprints are compared"""


class ArtistreeSettings(TailedSettings):
    base_url: HttpUrl = "https://api.human.prod.artistree.io"
    token_url: HttpUrl = "https://human-artistree-prod.auth.us-east-1.amazoncognito.com/oauth2/token"
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    page_size: int = Field(default=1000, ge=1, le=1000)
    stall_defaults: ClassVar[dict[str, float]] = {"In Progress": 2 * DAY, "*": 7 * DAY}


class ArtistreeScan(ScanFilter):
    project_id: NonBlank
    preview: Literal["true", "false", "yes", "no", "1", "0"] = "false"


class ArtistreeSpec(ProviderSpec):
    name = "artistree"
    settings_model = ArtistreeSettings
    kinds: ClassVar[tuple[str, ...]] = ("order", "scan")
    scan_filter = ArtistreeScan
    fingerprint_blanks = VOLATILE_ANYWHERE
    settings: ArtistreeSettings

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict):
            raise MalformedPayload(f"artistree: {ref.key}: payload is not an object")
        state = payload.get("order_state")
        if not isinstance(state, str):
            raise MalformedPayload(f"artistree: {ref.key}: payload has no order_state")
        snap = {k: v for k, v in payload.items() if k not in VOLATILE_TOP}
        layers = payload.get("layers_info")
        if isinstance(layers, list):
            snap["layers_info"] = [
                {k: v for k, v in layer.items() if k != "layer_url"} if isinstance(layer, dict) else layer
                for layer in layers
            ]
        return snap

    def normalize_preview(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict) or not isinstance(payload.get("order_state"), str):
            raise MalformedPayload(f"artistree: {ref.key}: order preview has no order_state")
        return {k: v for k, v in payload.items() if k not in VOLATILE_TOP}

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        state = snapshot.get("order_state")
        project = snapshot.get("project") if isinstance(snapshot.get("project"), dict) else None
        return ResourceInfo(
            title=str(snapshot.get("order_title") or snapshot.get("asset_name") or ref.id),
            url=f"{self.base_url}/v1/orders/{ref.id}",
            state=state,
            terminal=state in TERMINAL,
            tags=tuple(str(t) for t in snapshot.get("tags") or ()),
            project=str(project.get("name") or project.get("id")) if project else None,
        )

    def severity_of_state(self, state: str | None) -> Severity:
        return Severity.CRITICAL if state in CRITICAL else Severity.INFO

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        title = new.get("order_title") or ref.id
        drafts: list[EventDraft] = []
        was, now = old.get("order_state"), new.get("order_state")
        if was != now:
            drafts.append(EventDraft(
                type="artistree.order.state_changed",
                severity=self.severity_of_state(now),
                summary=f"Order “{title}”: {was} → {now}",
                data={"from": was, "to": now, "terminal": now in TERMINAL, "changes": [c.as_dict() for c in changes]},
            ))
        if new.get("reviewed_by") and new.get("reviewed_by") != old.get("reviewed_by"):
            drafts.append(EventDraft(
                type="artistree.order.reviewed",
                severity=Severity.INFO,
                summary=f"Order “{title}” reviewed by {new['reviewed_by']}",
                data={"reviewed_by": new["reviewed_by"], "review_timestamp": new.get("review_timestamp"), "state": now},
            ))
        return drafts + _content_events(title, old, new)


class ArtistreeProvider(Provider):
    spec_type = ArtistreeSpec
    spec: ArtistreeSpec
    settings: ArtistreeSettings

    def make_auth(self) -> ClientCredentials:
        s = self.settings
        return ClientCredentials(self.name, s.token_url, s.client_id, s.client_secret, scope=s.scope,
                                 timeout=s.timeout)

    async def fetch(self, ref: ResourceRef) -> Any:
        return self.parse(await self.fetch_body(ref))

    async def fetch_body(self, ref: ResourceRef) -> bytes:
        return await self.get_bytes(f"{self.base_url}/v1/orders/{quote(ref.id, safe='')}")

    async def scan(self, ref: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[ScanPage]:
        project_id = spec.get("project_id") or ref.id
        preview = str(spec.get("preview", "false")).lower() in ("1", "true", "yes")
        params = {"project_id": project_id, "limit": str(self.settings.page_size)}
        if preview:
            params["preview"] = "true"
        while True:
            if preview:
                page = await self.get_json(f"{self.base_url}/v1/orders", params=params)
                if not isinstance(page, dict):
                    raise MalformedPayload("artistree: order list is not an object")
                yield [
                    ScanItem(ResourceRef(self.name, "order", str(o["order_id"])), o, preview=True)
                    for o in page.get("order_previews") or ()
                    if isinstance(o, dict) and o.get("order_id")
                ]
                token = page.get("next_page_token")
            else:
                body = await self.get_bytes(f"{self.base_url}/v1/orders", params=params, read_bufsize=LIST_READ_BUFSIZE)
                try:
                    listed = split_page(blank_values(body, VOLATILE_ANYWHERE), "orders", "order_id",
                                        ("next_page_token",))
                except ValueError as exc:
                    raise MalformedPayload(f"artistree: order list: {exc}") from exc
                if listed.skipped:
                    log.warning("artistree: %d listed orders of %s are not objects with an order_id",
                                listed.skipped, ref.key, extra={"rkey": ref.key})
                yield ListedItems("order", listed.items)
                token = listed.fields["next_page_token"]
            if not token:
                return
            params = {**params, "page_token": str(token)}


def _content_events(title: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    """Failed analysis items, annotations and confidence: what changes inside an order."""
    drafts: list[EventDraft] = []
    old_failed = set(_str_list(old.get("analysis_failed_items")))
    added = [i for i in _str_list(new.get("analysis_failed_items")) if i not in old_failed]
    if added:
        drafts.append(EventDraft(
            type="artistree.order.analysis_failed",
            severity=Severity.WARNING,
            summary=f"Order “{title}”: analysis failed for {', '.join(added)}",
            data={"items": added, "state": new.get("order_state")},
        ))
    if (old.get("annotations") or []) != (new.get("annotations") or []):
        drafts.append(EventDraft(
            type="artistree.order.annotations_changed",
            severity=Severity.INFO,
            summary=f"Order “{title}”: annotations changed",
            data={"count_before": len(old.get("annotations") or []), "count_after": len(new.get("annotations") or [])},
        ))
    if old.get("confidence") != new.get("confidence"):
        drafts.append(EventDraft(
            type="artistree.order.confidence_changed",
            severity=Severity.INFO,
            summary=f"Order “{title}”: confidence {old.get('confidence')} → {new.get('confidence')}",
            data={"from": old.get("confidence"), "to": new.get("confidence")},
        ))
    return drafts


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
