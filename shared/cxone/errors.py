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

    def __init__(self, wait: float, reason: str | None = None):
        super().__init__(reason or f"rate limiter: next CXone call slot in {wait:.2f}s", not_delivered=True)
        self.wait = wait


class PausedByCXone(RateLimited):
    """CXone answered a 429 with Retry-After: no worker calls the tenant's API before it has passed.

    Refused by the limiter like :class:`RateLimited` (nothing was sent), ``wait`` seconds to go.
    """

    def __init__(self, wait: float):
        super().__init__(
            wait, f"CXone asked us to wait (429 with Retry-After): no CXone API call for {wait:.1f}s more"
        )


class CredentialsRejected(Transient):
    """The token endpoint refused our configuration: wrong credentials (``invalid_grant``,
    ``invalid_client``), a grant the application may not use (``unauthorized_client``,
    ``unsupported_grant_type``), or it redirected elsewhere (``redirect``, not followed).

    Retrying quickly cannot help and may lock the API user, so every worker stops asking for a
    while (a shared pause); routings keep retrying in their window so they complete once an
    operator fixes the credentials. ``error`` is the OAuth error code; ``retry_after`` the seconds
    until the shared pause ends.
    """

    def __init__(self, reason: str, *, error: str, retry_after: float | None = None, **kwargs):
        kwargs.setdefault("endpoint", "token")
        super().__init__(reason, not_delivered=True, **kwargs)
        self.error = error
        self.retry_after = retry_after


class Permanent(CXoneError):
    """400/403/404, unknown queue, inactive skill: retrying cannot help."""


class UntrustedEndpoint(Permanent):
    """CXone discovery (or a setting) names a URL credentials must not go to (see
    :mod:`shared.cxone.trust`); ``url`` is that URL. Nothing was sent there."""

    def __init__(self, reason: str, *, url: str, **kwargs):
        super().__init__(reason, **kwargs)
        self.url = url


class OutcomeUnknown(Permanent):
    """A non-idempotent call (voice signal) may or may not have reached CXone; never re-send it."""
