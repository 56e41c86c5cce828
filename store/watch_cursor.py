"""Where a page of the watch listing ends, as a token to pass back: `GET /v1/watches`, the
console's pages and `statehook watch ls` read the watch hash by HSCAN, whose calls return
"about" COUNT entries (a small hash: all of them at once). A page holds at most `limit`
watches, so it may end inside one call's entries; the token then names that call (its
cursor and COUNT) and the last rkey given, and the next page makes the same call again and
goes on after that rkey in rkey order. HSCAN returns the same entries for the same call
while the hash keeps them, so no watch present throughout a listing is left out.

Forms: `"12"` (the next call starts at HSCAN cursor 12), `"12.100.<rkey, base64url>"`
(call 12 with COUNT 100 again, after that rkey). `"0"` starts. Pure.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

__all__ = ["MAX_TOKEN", "PATTERN", "WatchCursor"]

MAX_TOKEN = 1200
"""a token's length at most (an rkey is at most ~800 bytes: base64 of it and two numbers)"""
PATTERN = r"^(0|[1-9][0-9]{0,18})(\.[1-9][0-9]{0,3}\.[A-Za-z0-9_-]{2,1100})?$"
"""every token `WatchCursor.token` makes (HSCAN's cursor is below 2**64, COUNT at most
SEARCH_COUNT), and nothing else: each string of this form parses"""
_FORM = re.compile(PATTERN)


@dataclass(frozen=True, slots=True)
class WatchCursor:
    scan: int = 0
    """the HSCAN cursor of the call to make"""
    count: int = 0
    """its COUNT, when the page ended inside it (`after`)"""
    after: str | None = None
    """the last rkey given of that call's entries, in rkey order"""

    @property
    def start(self) -> bool:
        return self.scan == 0 and self.after is None

    def token(self) -> str:
        if self.after is None:
            return str(self.scan)
        packed = base64.urlsafe_b64encode(self.after.encode()).decode().rstrip("=")
        return f"{self.scan}.{self.count}.{packed}"

    @classmethod
    def parse(cls, token: str) -> WatchCursor:
        """Raises ValueError for a string not of `PATTERN`'s form. One of that form that no
        page returned (made by hand) still reads as a place to go on from."""
        found = _FORM.fullmatch(token) if len(token) <= MAX_TOKEN else None
        if found is None:
            raise ValueError("not a cursor this listing returned")
        scan, rest = found.groups()
        if rest is None:
            return cls(int(scan))
        _, count, packed = rest.split(".")
        packed = packed[: len(packed) - (len(packed) % 4 == 1)]  # a length base64 cannot have
        after = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode(errors="replace")
        return cls(int(scan), int(count), after or None)
