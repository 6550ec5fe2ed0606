"""How a CXone call can fail, classified by what the worker should do about it.

The classes, not status codes, drive the retry policy: ``Transient`` and its kin are retried with
backoff inside the retry window; ``Permanent`` fails the routing at once with the reason recorded.

Each error says what went wrong twice: ``reason`` (for the routing record and the logs) may quote
CXone's own error message, which helps an operator but may echo what was sent, a credential's name
included; ``summary`` is built from the classification alone (status, endpoint, kind of failure), so
it can be shown where anyone with a Flower login looks.
"""

from __future__ import annotations

import requests

from shared.cxone.single_flight import SingleFlightTimeout

#: How a status reads in a summary: our words, never CXone's.
STATUS_WORDS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    408: "request timeout",
    409: "conflict",
    422: "unprocessable",
    429: "throttled",
    500: "server error",
    502: "bad gateway",
    503: "outage",
    504: "gateway timeout",
    # Redirects are never followed (see shared.cxone.client): the answer is the failure.
    301: "redirect, not followed",
    302: "redirect, not followed",
    303: "redirect, not followed",
    307: "redirect, not followed",
    308: "redirect, not followed",
}


class CXoneError(Exception):
    """Base class. ``reason`` is a short, secret-free sentence for the routing record and logs."""

    #: True on the classes whose ``reason`` is only our own words (never text CXone sent), so
    #: ``summary`` may quote it.
    reason_is_ours = False

    def __init__(self, reason: str, *, status: int | None = None, endpoint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.endpoint = endpoint

    @property
    def summary(self) -> str:
        """What went wrong in our words, e.g. ``CXone answered 503 (outage) on skills``: the status,
        the endpoint and the kind of failure, never text from CXone's answer."""
        if self.reason_is_ours:
            return self.reason
        where = f" on {self.endpoint}" if self.endpoint else ""
        if self.status is not None:
            words = STATUS_WORDS.get(self.status) or ("server error" if self.status >= 500 else "refused")
            return f"CXone answered {self.status} ({words}){where}"
        if isinstance(self.__cause__, CXoneError):
            return self.__cause__.summary
        return _no_answer_words(self.__cause__) + where


def _no_answer_words(cause: BaseException | None) -> str:
    """A failure without an HTTP status, described by the exception that caused it."""
    if isinstance(cause, requests.ConnectTimeout):
        return "no connection to CXone within the connect timeout"
    if isinstance(cause, requests.Timeout):
        return "no answer from CXone within the read timeout"
    if isinstance(cause, requests.ConnectionError):
        return "the connection to CXone failed"
    if isinstance(cause, ValueError):
        return "CXone's answer was not the JSON expected"
    if isinstance(cause, SingleFlightTimeout):
        return "waited too long for another worker's CXone request"
    return "the CXone request failed"


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

    def __init__(self, wait: float, reason: str | None = None, *, behind_backlog: bool = False):
        if reason is None:
            reason = (
                "rate limiter: routings accepted earlier wait for a CXone call slot"
                if behind_backlog
                else f"rate limiter: next CXone call slot in {wait:.2f}s"
            )
        super().__init__(reason, not_delivered=True)
        self.wait = wait
        #: Refused because routings accepted earlier wait in the backlog (they go first).
        self.behind_backlog = behind_backlog

    @property
    def summary(self) -> str:
        """Our own limit, not CXone's answer: nothing was sent."""
        return "waiting for a CXone call slot (CXONE_RATE_LIMIT_PER_MINUTE)"


class PausedByCXone(RateLimited):
    """CXone answered a 429 with Retry-After: no worker calls the tenant's API before it has passed.

    Refused by the limiter like :class:`RateLimited` (nothing was sent), ``wait`` seconds to go.
    """

    def __init__(self, wait: float):
        super().__init__(
            wait, f"CXone asked us to wait (429 with Retry-After): no CXone API call for {wait:.1f}s more"
        )

    @property
    def summary(self) -> str:
        """CXone's pause, not our own limit: nothing was sent."""
        return "waiting as CXone asked (429 with Retry-After)"


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

    @property
    def summary(self) -> str:
        """The OAuth error code and what to check (our words: the code is one of a fixed set, CXone's
        description is never quoted); for a redirect, not where it pointed."""
        if self.error == "redirect":
            return f"{super().summary}: check CXONE_AUTH_URL"
        return self.reason


class Permanent(CXoneError):
    """400/403/404, unknown queue, inactive skill: retrying cannot help."""


class UntrustedEndpoint(Permanent):
    """CXone discovery (or a setting) names a URL credentials must not go to (see
    :mod:`shared.cxone.trust`); ``url`` is that URL. Nothing was sent there."""

    def __init__(self, reason: str, *, url: str, **kwargs):
        super().__init__(reason, **kwargs)
        self.url = url

    @property
    def summary(self) -> str:
        """That a URL was refused, not the URL (a discovery's answer may name anything)."""
        return "an untrusted CXone URL (not https on CXONE_TRUSTED_HOSTS): nothing was sent to it"


class OutcomeUnknown(Permanent):
    """A non-idempotent call (voice signal) may or may not have reached CXone; never re-send it."""

    @property
    def summary(self) -> str:
        """Why the outcome is unknown (the failure that caused it, or an earlier start), in our words."""
        if self.status is None and self.__cause__ is None:
            what = "a signal for this routing was already started"
        else:
            what = super().summary
        return f"signal outcome unknown ({what}); not sent twice"
