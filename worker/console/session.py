"""The console's sessions, CSRF tokens and flash messages: signed values, no server state.

A session is a cookie `{sid}.{expires}.{mac}`: a random id, when it ends (unix seconds),
and an HMAC-SHA256 of both under a key derived from the API token. Nothing is stored in
Redis, so every API process behind a balancer accepts it, and changing the token ends
every session at once. Signing out clears the cookie in the browser; a copy taken before
that stays valid until it expires (SESSION_SECONDS), as with any bearer token.

The CSRF token of a session is an HMAC of its id under the same key (the synchronizer
token pattern, without storing it); the sign-in form, before there is a session, carries
one of a nonce cookie of its own. A flash message (what a POST did, shown once by the
page it redirects to) is a signed cookie too, so no one can make a link that shows text
of their choosing. Pure: no I/O, the time is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

__all__ = [
    "FLASH_COOKIE",
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Flash",
    "Session",
    "Signer",
]

SESSION_COOKIE = "statehook_session"
LOGIN_COOKIE = "statehook_login"
FLASH_COOKIE = "statehook_flash"
SESSION_SECONDS = 8 * 3600
"""how long a session lasts from sign-in (a working day); then the console asks again"""
_KEY_LABEL = b"statehook console session key v1"
_MAX_COOKIE = 512


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str, mac: str) -> bool:
    """Whether `given` is `mac` (constant time). Every MAC is ASCII, and compare_digest
    refuses a str that is not (TypeError): a cookie or field of other characters is no MAC."""
    return given.isascii() and hmac.compare_digest(given, mac)


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    expires: int

    def remaining(self, now: float) -> float:
        return self.expires - now


@dataclass(frozen=True, slots=True)
class Flash:
    """What the last POST did: `kind` is "ok" or "error"."""

    kind: str
    text: str


class Signer:
    """Signs and checks the console's cookies and CSRF tokens under a key derived from the
    API token (never the token itself: a cookie's MAC reveals nothing of it)."""

    def __init__(self, token: bytes) -> None:
        self._key = hmac.new(token, _KEY_LABEL, hashlib.sha256).digest()

    def _mac(self, label: str, value: str) -> str:
        # a cookie's bytes that are not UTF-8 arrive as surrogate escapes (the sign-in form MACs its nonce as sent)
        raw = f"{label}|{value}".encode("utf-8", "surrogateescape")
        return _b64(hmac.new(self._key, raw, hashlib.sha256).digest())

    # -- sessions ----------------------------------------------------------------------------

    def new_session(self, now: float, seconds: int = SESSION_SECONDS) -> tuple[Session, str]:
        """A fresh session and its cookie value."""
        session = Session(_b64(secrets.token_bytes(18)), int(now) + seconds)
        payload = f"{session.sid}.{session.expires}"
        return session, f"{payload}.{self._mac('session', payload)}"

    def session(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie names if its MAC holds and it has not expired; else None."""
        if not cookie or len(cookie) > _MAX_COOKIE or cookie.count(".") != 2:
            return None
        sid, expires, mac = cookie.split(".")
        if not expires.isdigit() or not _same(mac, self._mac("session", f"{sid}.{expires}")):
            return None
        if int(expires) <= now:
            return None
        return Session(sid, int(expires))

    # -- CSRF --------------------------------------------------------------------------------

    def csrf(self, sid: str) -> str:
        return self._mac("csrf", sid)

    def csrf_ok(self, sid: str, given: str | None) -> bool:
        return bool(given) and _same(str(given), self.csrf(sid))

    @staticmethod
    def login_nonce() -> str:
        return _b64(secrets.token_bytes(18))

    def login_csrf(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def login_csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given or len(nonce) > _MAX_COOKIE:
            return False
        return _same(str(given), self.login_csrf(nonce))

    def token_ok(self, given: str, token: bytes) -> bool:
        """Whether a sign-in gave the API token (constant time)."""
        return hmac.compare_digest(given.strip().encode(), token)

    # -- flash messages ----------------------------------------------------------------------

    def flash_cookie(self, flash: Flash) -> str:
        payload = _b64(orjson.dumps([flash.kind, flash.text[:300]]))
        return f"{payload}.{self._mac('flash', payload)}"

    def flash(self, cookie: str | None) -> Flash | None:
        if not cookie or len(cookie) > 2 * _MAX_COOKIE or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not _same(mac, self._mac("flash", payload)):
            return None
        try:
            kind, text = orjson.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        return Flash(str(kind), str(text))
