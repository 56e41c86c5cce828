"""A local Slack stand-in: incoming webhooks and `chat.postMessage`, with Slack's limits.

- `POST /services/{path}`: an incoming webhook; each path is one webhook. Answers `ok`, or
  Slack's errors as plain text with their status: `invalid_payload` 400, `no_text` 400,
  `invalid_blocks` 400, `action_prohibited` 403, `channel_not_found` 404,
  `channel_is_archived` 410.
- `POST /api/chat.postMessage`: bearer token, JSON body; answers `{"ok": true, "ts": …}` or
  `{"ok": false, "error": …}`; `thread_ts` must name a message of that channel.
- About one message per second per webhook (per channel for the API): a message sooner
  than `interval - tolerance` after the last accepted one gets 429 with `Retry-After`.
- Blocks are checked against Slack's limits: at most 50, section text ≤ 3000 characters,
  ≤ 10 fields of ≤ 2000, header ≤ 150.

Errors on demand: `fail(target, error, times)` from a test, or
`POST /_sim/slack/errors {"target": "<webhook path or channel>", "error": "...", "times": 1}`.
An error string not listed above is answered 400 (webhook) or as `{"ok": false}` (API);
`rate_limited` answers 429, `internal_error` answers 500. `GET /_sim/slack/messages`
lists what was accepted.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

__all__ = ["WEBHOOK_ERRORS", "SlackMessage", "SlackStandIn", "check_blocks"]

WEBHOOK_ERRORS = {
    "invalid_payload": 400,
    "no_text": 400,
    "invalid_blocks": 400,
    "action_prohibited": 403,
    "channel_not_found": 404,
    "no_service": 404,
    "channel_is_archived": 410,
    "request_timeout": 408,  # a proxy in front of Slack gave up waiting: not Slack's own string
    "rate_limited": 429,
    "internal_error": 500,
}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    target: str
    """the webhook's path (`T000/B000/xxx`) or the API channel"""
    at: float
    payload: dict[str, Any]
    ts: str
    thread_ts: str | None = None


def check_blocks(payload: dict[str, Any]) -> str | None:
    """Slack's error for a message over its limits, or None."""
    blocks = payload.get("blocks")
    if not payload.get("text") and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_blocks"
        text = block.get("text")
        if isinstance(text, dict):
            limit = 150 if block["type"] == "header" else 3000
            if not text.get("text") or len(str(text.get("text"))) > limit:
                return "invalid_blocks"
        fields = block.get("fields")
        if fields is not None and (len(fields) > 10 or any(len(str(f.get("text", ""))) > 2000 for f in fields)):
            return "invalid_blocks"
    return None


@dataclass
class SlackStandIn:
    interval: float = 1.0
    tolerance: float = 0.1
    bot_token: str = "sim-bot-token"
    on_message: Callable[[SlackMessage], None] | None = None
    """called with every accepted message"""
    messages: list[SlackMessage] = field(default_factory=list)
    rejected: list[tuple[str, float, str]] = field(default_factory=list)
    """(target, when, error) of every request answered with an error, 429s included"""
    base_url: str = ""
    _errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _last: dict[str, float] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _seq: int = 0

    def webhook_url(self, path: str = "T000/B000/standin") -> str:
        return f"{self.base_url}/services/{path}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def fail(self, target: str, error: str, times: int = 1) -> None:
        """The next `times` messages to `target` (webhook path or channel) get `error`."""
        self._errors[target].extend([error] * times)

    def to(self, target: str) -> list[SlackMessage]:
        return [m for m in self.messages if m.target == target]

    def rate_limited(self) -> int:
        return sum(1 for _, _, error in self.rejected if error in ("rate_limited", "ratelimited"))

    def make_app(self) -> web.Application:
        """The stand-in's routes, to serve on its own (`start`) or mounted in another app
        (then set `base_url` to where it is mounted)."""
        app = web.Application()
        app.router.add_post("/services/{path:.+}", self._webhook)
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/_sim/slack/errors", self._post_error)
        app.router.add_get("/_sim/slack/messages", self._get_messages)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{sock.getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    def _take_error(self, target: str) -> str | None:
        queue = self._errors.get(target)
        return queue.pop(0) if queue else None

    def _too_soon(self, target: str, now: float) -> float:
        """Seconds until `target` takes a message again (0: now)."""
        last = self._last.get(target)
        if last is None or now - last >= self.interval - self.tolerance:
            return 0.0
        return self.interval - (now - last)

    def _accept(self, target: str, now: float, payload: dict[str, Any], thread_ts: str | None) -> SlackMessage:
        self._last[target] = now
        self._seq += 1
        message = SlackMessage(target, now, payload, f"{int(now)}.{self._seq:06d}", thread_ts)
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return message

    async def _webhook(self, request: web.Request) -> web.Response:
        target = request.match_info["path"]
        now = time.time()
        wait = self._too_soon(target, now)
        error = self._take_error(target)
        if error is None and wait > 0:
            error = "rate_limited"
        if error is None:
            try:
                payload = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                payload = None
            error = "invalid_payload" if not isinstance(payload, dict) else check_blocks(payload)
        if error is not None:
            self.rejected.append((target, now, error))
            status = WEBHOOK_ERRORS.get(error, 400)
            headers = {"Retry-After": str(max(1, math.ceil(wait)))} if status == 429 else None
            return web.Response(status=status, text=error, headers=headers)
        self._accept(target, now, payload, None)
        return web.Response(text="ok")

    async def _post_message(self, request: web.Request) -> web.Response:
        now = time.time()
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return self._api_error("", now, "invalid_auth")
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self._api_error("", now, "invalid_json")
        if not isinstance(payload, dict) or not payload.get("channel"):
            return self._api_error("", now, "channel_not_found")
        channel = str(payload["channel"])
        wait = self._too_soon(channel, now)
        error = self._take_error(channel)
        if error is None and wait > 0:
            error = "ratelimited"
        thread_ts = payload.get("thread_ts")
        if error is None and thread_ts is not None and not any(
            m.ts == thread_ts and m.target == channel and m.thread_ts is None for m in self.messages
        ):
            error = "thread_not_found"
        error = error or check_blocks(payload)
        if error is not None:
            return self._api_error(channel, now, error, wait)
        message = self._accept(channel, now, payload, thread_ts)
        return web.json_response({"ok": True, "channel": channel, "ts": message.ts, "message": payload})

    def _api_error(self, target: str, now: float, error: str, wait: float = 0.0) -> web.Response:
        self.rejected.append((target, now, error))
        if error in ("ratelimited", "rate_limited"):
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return web.json_response({"ok": False, "error": error}, status=500 if error == "internal_error" else 200)

    async def _post_error(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fail(str(body["target"]), str(body["error"]), int(body.get("times", 1)))
        return web.json_response({"ok": True})

    async def _get_messages(self, request: web.Request) -> web.Response:
        return web.json_response([
            {"target": m.target, "at": m.at, "ts": m.ts, "thread_ts": m.thread_ts, "payload": m.payload}
            for m in self.messages
        ])
