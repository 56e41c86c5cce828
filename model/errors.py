"""The provider error family: how a fetch failed, which decides how the poller reacts."""

from __future__ import annotations


class ProviderError(Exception):
    """A fetch failed. Subclasses say how the poll loop should react."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status



class Unauthorized(ProviderError):
    """401/403 even after refreshing credentials: the provider is unhealthy."""



class NotFound(ProviderError):
    """404: the resource does not exist (any more)."""



class RateLimited(ProviderError):
    def __init__(self, message: str, *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after



class Unavailable(ProviderError):
    """5xx, timeout, connection error: back off and try again."""



class MalformedPayload(ProviderError):
    """The body does not parse or lacks what a snapshot needs: counted, never an event."""
