"""How a CXone call can fail, classified by what the worker should do about it.

The classes, not status codes, drive the retry policy: ``Transient`` and its kin are retried with
backoff inside the retry window; ``Permanent`` fails the routing at once with the reason recorded.
"""

from __future__ import annotations


class CXoneError(Exception):
    """Base class. ``reason`` is a short, secret-free sentence for the routing record and logs."""

    def __init__(self, reason: str, *, status: int | None = None, endpoint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.endpoint = endpoint


class Transient(CXoneError):
    """5xx, timeout, connection error, token refresh failure: back off and retry."""

    #: True when CXone certainly did not act on the request (connection refused, 503 before
    #: processing, 429). A voice signal may only be re-sent after such a failure.
    not_delivered: bool = False

    def __init__(self, reason: str, *, not_delivered: bool = False, **kwargs):
        super().__init__(reason, **kwargs)
        self.not_delivered = not_delivered


class Throttled(Transient):
    """CXone answered 429. ``retry_after`` is its Retry-After in seconds, when it sent one."""

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(reason, not_delivered=True, **kwargs)
        self.retry_after = retry_after


class RateLimited(Transient):
    """Our own shared limiter refused the call before it was sent; ``wait`` seconds until a slot."""

    def __init__(self, wait: float):
        super().__init__(f"rate limiter: next CXone call slot in {wait:.2f}s", not_delivered=True)
        self.wait = wait


class Permanent(CXoneError):
    """400/403/404, unknown queue, inactive skill: retrying cannot help."""


class OutcomeUnknown(Permanent):
    """A non-idempotent call (voice signal) may or may not have reached CXone; never re-send it."""
