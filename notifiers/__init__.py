"""One module per destination kind. Adding one is a new file and one line in `REGISTRY`."""

from __future__ import annotations

from notifiers.base import Notifier
from notifiers.console import ConsoleNotifier
from notifiers.email import EmailNotifier
from notifiers.slack import SlackNotifier
from notifiers.templates import bind_routes
from notifiers.webhook import WebhookNotifier

__all__ = ["REGISTRY", "Notifier", "bind_routes"]

REGISTRY: dict[str, type[Notifier]] = {
    ConsoleNotifier.kind: ConsoleNotifier,
    EmailNotifier.kind: EmailNotifier,
    SlackNotifier.kind: SlackNotifier,
    WebhookNotifier.kind: WebhookNotifier,
}
