"""Slack: a Block Kit message per event, through an incoming webhook or, with a bot token,
`chat.postMessage` into one thread per resource.

Slack takes about one message per second per webhook (and per channel for the API) and
answers 429 beyond that. Every worker sending to the same webhook shares one schedule (the
store's rate schedule, store/rates.py, as provider limits do): a send takes the next free
slot; a short wait is spent inside the job, a long one is handed back as a retry at the
slot's time. A 429 holds the schedule past its Retry-After for every worker. The thread of
each resource (bot token) is remembered by store/slack.py. `invalid_payload`, `channel_not_found`,
`channel_is_archived` and `action_prohibited` (and the API's other errors) are permanent:
dead-lettered with Slack's own string as the reason.

The webhook URL and the bot token are secrets: they never appear in a log line, an error
or a Redis key (keys hold a hash).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from model.events import DIGEST_TYPE, Event, Severity
from model.outcomes import Delivered, PermanentFailure, TransientFailure
from model.values import Duration, DurationOrOff, RetryDelay, Templates
from notifiers.base import DestinationSettings, Notifier, NotifierContext
from notifiers.templates import TemplateBook, mrkdwn_escape, notable_changes
from store.rates import Busy
from store.slack import pacing_key
from transport.http import NoReply, Outcome, Reply, parse_retry_after, send

__all__ = [
    "PERMANENT_WEBHOOK_ERRORS",
    "SlackNotifier",
    "SlackSettings",
    "build_message",
]

MAX_ANSWER = 1 << 20
"""Bytes of Slack's answer read: chat.postMessage echoes the whole message (up to 50 blocks)."""
MAX_BLOCKS = 50
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
URL_CHARS = 3000
PERMANENT_WEBHOOK_ERRORS = ("invalid_payload", "channel_not_found", "channel_is_archived", "action_prohibited")
"""Slack's answers that no retry changes (its documented incoming-webhook errors)."""

TRANSIENT_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)

class SlackSettings(DestinationSettings):
    kind: Literal["slack"] = "slack"
    webhook_url: SecretStr | None = Field(default=None, description="incoming webhook (a secret: set it in the env)")
    bot_token: SecretStr | None = Field(default=None, description="xoxb-… for chat.postMessage, with `channel`")
    channel: str | None = Field(default=None, description="channel id or name for the bot token")
    api_url: str = Field(
        default="https://slack.com/api",
        validation_alias=AliasChoices("api_url", "slack_api_url"),
        description="base of the Web API (chat.postMessage); tests point it at the stand-in",
    )
    thread: bool = Field(default=True, description="bot token: all events of one resource in one thread")
    broadcast: list[Severity] = Field(
        default_factory=lambda: [Severity.CRITICAL],
        description="thread replies of these severities also go to the channel",
    )
    min_interval: DurationOrOff = Field(default=1.0, description="between two messages to one webhook (0: off)")
    max_wait: RetryDelay = Field(default=5.0, description="longer waits for a slot are retries, not a busy job")
    timeout: Duration = 10.0
    templates: Templates = Field(default_factory=dict)

    def send_limit(self) -> float:
        """The post's timeout and the wait for a slot spent inside the send (`max_wait`)."""
        return self.timeout + self.max_wait

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> SlackSettings:
        if self.webhook_url is None and self.bot_token is None:
            raise ValueError("set `webhook_url` (a secret, e.g. in the environment) or `bot_token` and `channel`")
        if self.webhook_url is not None and self.bot_token is not None:
            raise ValueError("set either `webhook_url` or `bot_token`, not both")
        if self.bot_token is not None and not self.channel:
            raise ValueError("`bot_token` needs a `channel`")
        return self


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_escaped(text: str, limit: int) -> str:
    """`text` (plain) as mrkdwn, within `limit` characters, never cut inside an entity."""
    escaped = mrkdwn_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def build_message(event: Event, templates: TemplateBook) -> dict[str, Any]:
    """The Block Kit message for an event, within Slack's limits. Pure.

    The top-level `text` (what a notification, a screen reader and an old client show) is
    the `subject` template, the one the email subject uses: plain text, so it is escaped
    as a whole (`&`, `<`, `>`), like every provider-controlled string in the blocks. A
    comment by `<!here>` or a status `<https://evil.example|click>` is shown, never a
    mention or a link."""
    fallback = _clip_escaped(templates.render("subject", event).strip() or event.summary, SECTION_CHARS)
    section = templates.render("slack", event).strip() or fallback
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(section, SECTION_CHARS)}}
    ]
    if event.type == DIGEST_TYPE:
        window = event.data.get("window") or {}
        context = f"statehook digest · {window.get('label', '')} · {event.id}"
    else:
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{mrkdwn_escape(c['path'])}*\n{mrkdwn_escape(c['old'])} → "
                                             f"{mrkdwn_escape(c['new'])}", FIELD_CHARS)}
            for c in notable_changes(event, MAX_FIELDS)
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        r = event.resource
        context = (f"*{event.severity.value}* · {mrkdwn_escape(event.type)} #{event.seq} · {event.detected_at}"
                   f" · {event.id}")
        url = r.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) <= URL_CHARS:
            label = _clip(f"Open {r.get('kind') or 'resource'}", 75)
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url, "action_id": "open"}
            ]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context, SECTION_CHARS)}]})
    return {"text": fallback, "blocks": blocks[:MAX_BLOCKS]}


class SlackNotifier(Notifier):
    kind = "slack"
    settings_model = SlackSettings
    settings: SlackSettings

    def __init__(self, name: str, settings: DestinationSettings, ctx: NotifierContext) -> None:
        super().__init__(name, settings, ctx)
        self.templates = TemplateBook(name, self.settings.templates)
        s = self.settings
        target = s.webhook_url.get_secret_value() if s.webhook_url else f"{s.channel}\x00{s.bot_token}"
        self.rate_key = pacing_key(target)

    async def send(self, event: Event) -> Delivered:
        message = build_message(event, self.templates)
        if self.settings.bot_token is not None:
            return await self._post_message(event, message)
        await self._wait_for_slot()
        return await self._post_webhook(message)

    async def _wait_for_slot(self) -> None:
        rates = self.ctx.rates
        if rates is None or self.settings.min_interval <= 0:
            return
        taken = await rates.take(self.rate_key, 1, self.settings.min_interval, max_wait=self.settings.max_wait)
        if isinstance(taken, Busy):
            raise TransientFailure(f"webhook busy: next free slot in {taken.wait:.1f}s", retry_after=taken.wait)
        if taken.wait > 0:
            await asyncio.sleep(taken.wait)

    async def _rate_limited(self, retry_after: str | None) -> TransientFailure:
        after = parse_retry_after(retry_after, default=max(1.0, self.settings.min_interval))
        if self.ctx.rates is not None:
            await self.ctx.rates.hold(self.rate_key, after)
        return TransientFailure("rate limited by Slack", status=429, retry_after=after)

    async def _post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> Reply:
        try:
            return await send(self.ctx.session, "POST", url, data=orjson.dumps(payload),
                              headers={"content-type": "application/json; charset=utf-8", **headers},
                              timeout=self.settings.timeout, max_body=MAX_ANSWER, allow_redirects=False)
        except NoReply as exc:
            raise TransientFailure(exc.reason) from exc

    async def _post_webhook(self, message: dict[str, Any]) -> Delivered:
        assert self.settings.webhook_url is not None
        reply = await self._post(self.settings.webhook_url.get_secret_value(), message, {})
        status, text = reply.status, reply.text()
        if reply.outcome is Outcome.OK:
            return Delivered(status=status, detail=text[:100])
        if reply.outcome is Outcome.RATE_LIMITED:
            raise await self._rate_limited(reply.retry_after_header)
        if reply.outcome is Outcome.RETRY:  # 5xx, 408, 425 (transport/http.py's mapping)
            after = reply.retry_after(0.0) if reply.retry_after_header else None
            raise TransientFailure(f"HTTP {status}" + (f": {text}" if text else ""), status=status, retry_after=after)
        if text in PERMANENT_WEBHOOK_ERRORS:
            raise PermanentFailure(text, status=status)
        raise PermanentFailure(f"HTTP {status}" + (f": {text}" if text else ""), status=status)

    # -- chat.postMessage ---------------------------------------------------------------

    async def _post_message(self, event: Event, message: dict[str, Any]) -> Delivered:
        s = self.settings
        assert s.bot_token is not None
        await self._wait_for_slot()
        threads = self.ctx.slack_threads if s.thread and event.type != DIGEST_TYPE else None
        if threads is None:
            delivered, _ = await self._chat_post(message, None, event.severity in s.broadcast)
            assert delivered is not None  # only a reply in a thread finds its thread gone
            return delivered
        key = threads.key(self.name, s.channel or "", event.rkey)
        claim = await threads.claim(key, pending_for=s.timeout + 5)
        try:
            delivered, posted_ts = await self._chat_post(message, claim.ts, event.severity in s.broadcast)
            if delivered is None:  # the thread is gone: start a new one
                await threads.forget(key)
                claim = await threads.claim(key, pending_for=s.timeout + 5)
                delivered, posted_ts = await self._chat_post(message, claim.ts, event.severity in s.broadcast)
                if delivered is None:
                    raise TransientFailure("the resource's thread vanished twice")
        except BaseException:
            if claim.root:
                await threads.release(key)
            raise
        if claim.root and posted_ts:
            await threads.started(key, posted_ts)
        elif claim.ts is not None:
            await threads.used(key)
        return delivered

    async def _chat_post(
        self, message: dict[str, Any], thread_ts: str | None, broadcast: bool
    ) -> tuple[Delivered | None, str | None]:
        """One chat.postMessage. Returns (delivered, ts of the message), or (None, None)
        when the thread to answer in no longer exists."""
        s = self.settings
        assert s.bot_token is not None
        payload: dict[str, Any] = {**message, "channel": s.channel, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            payload["thread_ts"] = thread_ts
            if broadcast:
                payload["reply_broadcast"] = True
        url = s.api_url.rstrip("/") + "/chat.postMessage"
        auth = {"authorization": f"Bearer {s.bot_token.get_secret_value()}"}
        reply = await self._post(url, payload, auth)
        status, retry_after = reply.status, reply.retry_after_header
        if reply.outcome is Outcome.RATE_LIMITED:
            raise await self._rate_limited(retry_after)
        if reply.outcome is Outcome.RETRY:
            raise TransientFailure(f"HTTP {status}", status=status)
        try:
            answer = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise TransientFailure(f"HTTP {status}: not a Slack API answer", status=status)
        if answer.get("ok"):
            return Delivered(status=status, detail=str(answer.get("ts", ""))), str(answer.get("ts") or "") or None
        error = str(answer.get("error") or "unknown_error")
        if thread_ts and error in ("thread_not_found", "invalid_thread_ts", "message_not_found"):
            return None, None
        if error == "ratelimited":
            raise await self._rate_limited(retry_after)
        if error in TRANSIENT_API_ERRORS:
            raise TransientFailure(error, status=status)
        raise PermanentFailure(error, status=status)
