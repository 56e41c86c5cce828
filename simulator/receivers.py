"""Local receivers for deliveries: a webhook endpoint that verifies Standard Webhooks
signatures and can be told how to answer. Used by the demo, the tests and benchmarks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Received", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    event: dict[str, Any]
    verified: bool
    at: float
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    """Verifies every request with `secret`; answers from `script` (a list of statuses,
    consumed in order, then 200), or 400 when the signature does not verify."""

    secret: str
    script: list[int] = field(default_factory=list)
    retry_after: str | None = None
    on_receive: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    @property
    def delivered(self) -> list[Received]:
        """Requests answered 2xx, the ones the sender counts as delivered."""
        return [r for r in self.received if r.verified]

    def unique_ids(self) -> Counter[str]:
        return Counter(r.webhook_id for r in self.delivered)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        wid = headers.get("webhook-id", "")
        self.attempts[wid] += 1
        if self.script:
            status = self.script.pop(0)
            if status >= 300:
                extra = {"Retry-After": self.retry_after} if self.retry_after else {}
                return web.Response(status=status, text=f"scripted {status}", headers=extra)
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            return web.Response(status=400, text=f"bad signature: {exc}")
        item = Received(wid, orjson.loads(body), True, time.time(), headers)
        self.received.append(item)
        if self.on_receive:
            self.on_receive(item)
        return web.Response(status=204)
