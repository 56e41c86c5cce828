"""What a watched thing is: its reference, its normalized snapshot, what a scan lists, and
what the routes need to know about it (`ResourceInfo`). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Snapshot = dict[str, Any]
"""A normalized resource: JSON-compatible, volatile fields already removed."""



@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One watched thing at one provider. Its `key` (the rkey) names it everywhere."""

    provider: str
    kind: str
    id: str

    @property
    def key(self) -> str:
        return self.key_of(self.provider, self.kind, self.id)

    @staticmethod
    def key_of(provider: str, kind: str, rid: str) -> str:
        """The rkey of a resource, without building its ResourceRef."""
        return f"{provider}:{kind}:{rid}"

    @classmethod
    def parse(cls, rkey: str) -> ResourceRef:
        provider, sep, rest = rkey.partition(":")
        kind, sep2, rid = rest.partition(":")
        if not (sep and sep2 and provider and kind and rid):
            raise ValueError(f"not a resource key (provider:kind:id): {rkey!r}")
        return cls(provider, kind, rid)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """What the core and the routes need to know about a resource, from its snapshot."""

    title: str
    url: str | None = None
    state: str | None = None
    terminal: bool = False
    tags: tuple[str, ...] = ()
    project: str | None = None



@dataclass(frozen=True, slots=True)
class ScanItem:
    """One resource of a listed page. With `preview`, the payload is a lightweight summary:
    the poller compares its digest and fetches full details only for what changed."""

    ref: ResourceRef
    payload: Any
    preview: bool = False



@dataclass(frozen=True, slots=True)
class ListedItems:
    """A listed page kept as bytes (core/listing.py): each resource's id and its JSON
    as listed, volatile values blanked. The poller compares a fingerprint of each item's
    bytes and parses only the items that changed; nothing is built per unchanged item."""

    kind: str
    items: list[tuple[str, bytes]]

    def __len__(self) -> int:
        return len(self.items)



ScanPage = list[ScanItem] | ListedItems
