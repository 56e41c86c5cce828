"""One module per provider. Adding one is a new file and one line in `REGISTRY`."""

from __future__ import annotations

from providers.artistree import ArtistreeProvider
from providers.base import Provider
from providers.deepomatic import DeepomaticProvider
from providers.rev import RevProvider
from providers.sartiq import SartiqProvider

__all__ = ["REGISTRY", "Provider"]

REGISTRY: dict[str, type[Provider]] = {
    ArtistreeProvider.name: ArtistreeProvider,
    DeepomaticProvider.name: DeepomaticProvider,
    RevProvider.name: RevProvider,
    SartiqProvider.name: SartiqProvider,
}
