"""A provider as the poller and the worker hold it: a pure spec and an HTTP client.

A provider knows one API. Its file defines a `ProviderSpec` (providers/spec.py: settings,
kinds, normalize, describe, classify, built from settings alone) and a `Provider` naming
that spec as `spec_type`, with the auth strategy it needs (providers/auth.py) and how it
fetches one resource and scans a collection over a `Client` (providers/client.py). A
provider knows nothing about Redis or ARQ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import aiohttp
from pydantic import ValidationError

from model.errors import MalformedPayload, ProviderError
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, ScanPage, Snapshot
from providers.client import Auth, Client, error_for_reply
from providers.spec import NonBlank, ProviderSettings, ProviderSpec, ScanFilter

__all__ = [
    "NonBlank",
    "Provider",
    "ProviderSettings",
    "ProviderSpec",
    "ScanFilter",
    "error_for_reply",
    "scan_filter_problems",
]

T = TypeVar("T")


def scan_filter_problems(
    provider: type[Provider] | type[ProviderSpec], spec: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with `spec` as `provider`'s scan filter, each
    naming the keys it accepts; [] when it is right."""
    model = provider.scan_filter
    if model is None:
        return [("", f"{provider.name} cannot scan (it watches ids only)")]
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        accepted = f"(accepted: {', '.join(model.model_fields)})" if model.model_fields else "(it takes no parameters)"
        out = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(x) for x in error["loc"])
            if error["type"] == "extra_forbidden":
                out.append((key, f"not a key of {provider.name}'s scan {accepted}"))
            elif error["type"] == "missing":
                out.append((key, f"required by {provider.name}'s scan {accepted}"))
            else:
                out.append((key, str(error["msg"])))
        return out
    return []


class Provider(ABC):
    """`spec` answers what a payload means, `client` GETs with `auth`. The spec's class
    attributes (name, settings_model, default_kind, kinds, scan_filter) are the
    provider's, so the registry and the config loader read them off the class."""

    spec_type: ClassVar[type[ProviderSpec]]
    name: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]]
    default_kind: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    scan_filter: ClassVar[type[ScanFilter] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec_type")
        if spec is not None:
            cls.name, cls.settings_model, cls.default_kind = spec.name, spec.settings_model, spec.default_kind
            cls.kinds, cls.scan_filter = spec.kinds, spec.scan_filter

    def __init__(self, settings: ProviderSettings, session: aiohttp.ClientSession) -> None:
        self.spec = self.spec_type(settings)
        self.settings = settings
        self.session = session
        self.base_url = self.spec.base_url
        self.auth = self.make_auth()
        self.client = Client(self.name, session, self.auth, timeout=settings.timeout,
                             error_reason=self.spec.error_reason)

    # ---- what a provider implements -------------------------------------------------

    @abstractmethod
    def make_auth(self) -> Auth:
        """The auth strategy of this provider's requests (providers/auth.py)."""

    @abstractmethod
    async def fetch(self, ref: ResourceRef) -> Any:
        """The parsed payload of one resource. Raises a ProviderError subclass."""

    async def fetch_body(self, ref: ResourceRef) -> bytes:
        """The raw body of one resource, for providers that set `fingerprint_blanks`."""
        raise NotImplementedError(f"{self.name} does not fetch raw bodies")

    async def scan(self, ref: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[ScanPage]:
        """Pages of the resources of a collection. Providers that list override this."""
        raise NotImplementedError(f"{self.name} cannot scan")
        yield []  # pragma: no cover

    async def close(self) -> None:
        """Release anything beyond the shared session (which the worker owns)."""

    # ---- HTTP, through the client ---------------------------------------------------

    async def get_bytes(
        self, url: str, *, params: Mapping[str, str] | None = None, read_bufsize: int | None = None
    ) -> bytes:
        return await self.client.get_bytes(url, params=params, read_bufsize=read_bufsize)

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET `url` with auth, parsed (`parse`); refreshes the token once on 401."""
        return self.parse(await self.get_bytes(url, params=params))

    # ---- the spec's answers ---------------------------------------------------------

    @property
    def fingerprint_blanks(self) -> tuple[str, ...] | None:
        return self.spec.fingerprint_blanks

    # A spec that meets a field of a type it does not expect (`"tags": 5`) raises what Python
    # raises; that is this payload's failure (MalformedPayload: counted, logged with its
    # resource), never the batch's, whose other resources would not be polled while it lasts.

    def parse(self, body: bytes) -> Any:
        return _payload_step("parse", self.spec.parse, body)

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        return _payload_step("normalize", self.spec.normalize, ref, payload)

    def normalize_preview(self, ref: ResourceRef, payload: Any) -> Snapshot:
        return _payload_step("normalize_preview", self.spec.normalize_preview, ref, payload)

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        return _payload_step("describe", self.spec.describe, ref, snapshot)

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        return _payload_step("classify", self.spec.classify, ref, old, new, changes)

    def label(self, ref: ResourceRef, snapshot: Snapshot) -> str:
        return self.spec.label(ref, snapshot)

    def discovered(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        return self.spec.discovered(ref, snapshot)

    def gone(self, ref: ResourceRef, snapshot: Snapshot) -> EventDraft:
        return self.spec.gone(ref, snapshot)

    def stalled(self, ref: ResourceRef, snapshot: Snapshot, *, state: str, since: float, seconds: float) -> EventDraft:
        return self.spec.stalled(ref, snapshot, state=state, since=since, seconds=seconds)

    def severity_of_state(self, state: str | None) -> Severity:
        return self.spec.severity_of_state(state)

    def error_reason(self, body: bytes) -> str:
        return self.spec.error_reason(body)


def _payload_step(step: str, call: Callable[..., T], *args: Any) -> T:
    try:
        return call(*args)
    except ProviderError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        raise MalformedPayload(f"{step}: unexpected {type(exc).__name__}") from exc
