"""What one delivery attempt came to: delivered, worth retrying, or never going to work."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivered:
    status: int | None = None
    detail: str = ""



class TransientFailure(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after



class PermanentFailure(Exception):
    def __init__(self, reason: str, *, status: int | None = None, disable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.disable = disable
