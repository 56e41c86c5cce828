"""One module per destination kind. Adding one is a new file and one line in `REGISTRY`."""

from __future__ import annotations

from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from notifiers.webhook import WebhookNotifier

__all__ = ["REGISTRY", "Notifier"]

REGISTRY: dict[str, type[Notifier]] = {
    ConsoleNotifier.kind: ConsoleNotifier,
    WebhookNotifier.kind: WebhookNotifier,
}
