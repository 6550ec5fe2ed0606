"""The CXone HTTP client: OAuth token shared through Redis, one call budget, classified errors.

Follows NICE's developer documentation: OIDC discovery for the token endpoint, the password grant
with an API access key (client credentials in HTTP Basic), the tenant's API host from
``/.well-known/cxone-configuration``, and ``Accept: application/json`` on every call. See
https://developer.niceincontact.com/Documentation/APIAuthenticationAndAuthorization and, for the
routing-queue call, https://developer.niceincontact.com/API/DigitalEngagementAPI.

Errors come out as :mod:`shared.cxone.errors` classes; the retry policy lives in the worker, not
here, so there is exactly one retry layer (no urllib3 retries on the session).

Credentials only go where they belong: the token endpoint and the API host must be https on a
trusted host (:mod:`shared.cxone.trust`), and no redirect is ever followed (a 307 would re-send the
access key secret, or the bearer token, to wherever it points). What CXone says about waiting is
shared by every worker through Redis: a 429's ``Retry-After`` pauses all API calls (in the
limiter), and rejected credentials pause all token requests (:mod:`shared.cxone.token_pause`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import redis
import requests
import requests.auth
import requests.utils
from requests.adapters import HTTPAdapter

from shared import redis_keys
from shared.cxone import metrics
from shared.cxone.contact import ContactFields, ContactState, contact_state, unknown_contact
from shared.cxone.errors import (
    CredentialsRejected,
    CXoneError,
    PausedByCXone,
    Permanent,
    RateLimited,
    Throttled,
    Transient,
    UntrustedEndpoint,
)
from shared.cxone.rate_limiter import CallLimiter
from shared.cxone.single_flight import SingleFlightTimeout, delete_if_equal, get_or_compute
from shared.cxone.token_pause import TokenPause
from shared.routing.backlog import current_pass
from shared.settings import Settings

log = logging.getLogger(__name__)

SKILLS_PATH = "/inContactAPI/services/v30.0/skills"
#: Every skill's live state in one call (see shared/cxone/skill_activity.py).
SKILL_ACTIVITY_PATH = "/inContactAPI/services/v30.0/skills/activity"
ROUTING_QUEUE_PATH = "/dfo/3.0/contacts/{contact_id}/routing-queue"
CONTACT_PATH = "/dfo/3.0/contacts/{contact_id}"
ROUTING_QUEUES_PATH = "/dfo/3.0/routing-queues"
#: NICE's agent SDK lists routing queues with ``size=500``: the default page holds only 50
#: (github.com/nice-devone/nice-cxone-agent-sdk, ``SkillService.GET_SKILL_NAME_BY_ROUTING_ID``).
ROUTING_QUEUES_PAGE_SIZE = 500
SIGNAL_PATH = "/inContactAPI/services/v30.0/interactions/{contact_id}/signal"
SKILLS_PAGE_SIZE = 100
#: How long a process reuses the token it last read from Redis before reading it again.
TOKEN_MEMO_SECONDS = 5.0
#: After a failed token request, no worker asks again for this long (they retry with backoff).
TOKEN_FAILURE_COOLDOWN_SECONDS = 5.0
#: The longest pause a 429's Retry-After can impose on every worker: a value beyond it (a garbled
#: date, a day) would stop all routing, so it is cut to this and logged.
MAX_CXONE_PAUSE_SECONDS = 3600.0
#: Token endpoint answers that mean "your configuration is wrong", by OAuth error code (RFC 6749
#: section 5.2), with what the operator should check; {grant} is CXONE_GRANT_TYPE.
CREDENTIALS_HINTS = {
    "invalid_grant": "check CXONE_ACCESS_KEY_ID/SECRET (an access key of an active CXone API user)",
    "invalid_client": "check CXONE_CLIENT_ID/SECRET",
    "unauthorized_client": "the application may not use the {grant} grant: check CXONE_GRANT_TYPE",
    "unsupported_grant_type": "CXone does not offer the {grant} grant: check CXONE_GRANT_TYPE",
}


@dataclass(frozen=True)
class Token:
    """A bearer token with what was learned with it: the tenant and the tenant's API host."""

    access_token: str
    expires_at: float
    tenant_id: str
    api_base: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Token:
        return cls(**json.loads(text))


class CXoneClient:
    """Talks to one CXone tenant. One instance per process; safe to share between threads."""

    def __init__(
        self, settings: Settings, redis_client: redis.Redis, session: requests.Session | None = None
    ):
        self.settings = settings
        self.redis = redis_client
        self.session = session or _new_session(pool_size=settings.worker_concurrency)
        self.timeout = (settings.cxone_connect_timeout_seconds, settings.cxone_read_timeout_seconds)
        self.limiter = CallLimiter(
            redis_client,
            redis_keys.CXONE_RATE_LIMIT,
            settings.cxone_rate_limit_per_minute,
            pause_key=redis_keys.CXONE_PAUSE_UNTIL,
            backlog_key=redis_keys.BACKLOG,
        )
        self.token_pause = TokenPause(redis_client)
        self.trusted = settings.trusted_cxone_hosts()
        self._token_endpoint: str | None = None
        self._token_memo: tuple[Token, float] | None = None  # (token, reuse until)
        #: Tokens CXone answered 401 to (access token → its expiry), never to be kept again.
        self._rejected: dict[str, float] = {}
        self._memo_lock = threading.Lock()
        self._discovery_lock = threading.Lock()
        #: Counters for this process, read by metrics and the benchmark.
        self.token_requests = 0

    # ---------------------------------------------------------------- the token

    def token(self) -> Token:
        """The shared token, fetched by exactly one process when absent or about to expire."""
        # Every task needs the token twice; re-reading Redis for it each time was a measurable
        # share of a worker's CPU. A copy is kept for a few seconds (never past its expiry); a
        # 401 drops it, and then the next call reads what the other workers refreshed.
        memo = self._token_memo
        now = time.time()
        if memo is not None and memo[1] > now and memo[0].expires_at > now + 5:
            return memo[0]
        # The lock must outlive the slowest token call (discovery + token + configuration).
        lock_timeout = 3 * sum(self.timeout) + 5
        try:
            raw = get_or_compute(
                self.redis,
                redis_keys.CXONE_TOKEN,
                self._fetch_token_unless_failing,
                lock_timeout=lock_timeout,
                wait_timeout=lock_timeout,
                is_fresh=lambda text: Token.from_json(text).expires_at > time.time() + 5,
            )
        except SingleFlightTimeout as exc:
            raise Transient(
                f"token refresh by another worker is taking too long: {exc}",
                not_delivered=True,
                endpoint="token",
            ) from exc
        token = Token.from_json(raw)
        with self._memo_lock:
            # Another thread's 401 may have rejected this token since we read it from Redis: then
            # it may serve this one call (which would get a 401 and refresh), but is not kept.
            if token.access_token not in self._rejected:
                self._token_memo = (token, now + TOKEN_MEMO_SECONDS)
        return token

    def _fetch_token_unless_failing(self) -> tuple[str, float]:
        # Runs under the token lock, so one worker at a time gets here. While CXone rejects the
        # credentials, no worker asks at all until the shared pause ends (it grows up to a minute).
        paused = self.token_pause.current()
        if paused is not None:
            raise CredentialsRejected(paused.reason, error=paused.error, retry_after=paused.seconds_left)
        # While CXone's token endpoint is down or refusing us, every waiting task would otherwise
        # make its own token request the moment it gets the lock. One failure is shared instead:
        # for a few seconds, everyone fails fast with the same reason and no request is sent.
        recent = self.redis.get(redis_keys.CXONE_TOKEN_FAILURE)
        if recent is not None:
            raise _shared_failure(recent.decode() if isinstance(recent, bytes) else recent)
        try:
            fetched = self._fetch_token()
        except CredentialsRejected as exc:
            exc.retry_after = self.token_pause.start(exc.error, exc.reason)
            metrics.CREDENTIALS_REJECTED.labels(error=exc.error).inc()
            log.error(
                "%s; no worker requests a CXone token for %.0fs",
                exc.reason,
                exc.retry_after,
                extra={"oauth_error": exc.error, "status": exc.status},
            )
            raise
        except CXoneError as exc:
            failure = {"reason": exc.reason, "permanent": isinstance(exc, Permanent)}
            self.redis.set(
                redis_keys.CXONE_TOKEN_FAILURE,
                json.dumps(failure),
                px=int(TOKEN_FAILURE_COOLDOWN_SECONDS * 1000),
            )
            raise
        self.token_pause.clear()
        return fetched

    def drop_token(self, token: Token) -> None:
        """Forget ``token`` after CXone rejected it, unless another worker already replaced it."""
        now = time.time()
        with self._memo_lock:
            self._rejected = {t: until for t, until in self._rejected.items() if until > now}
            self._rejected[token.access_token] = token.expires_at
            self._token_memo = None
        delete_if_equal(self.redis, redis_keys.CXONE_TOKEN, token.to_json())

    def _fetch_token(self) -> tuple[str, float]:
        s = self.settings
        if s.cxone_grant_type == "password":
            form = {
                "grant_type": "password",
                "username": s.cxone_access_key_id,
                "password": s.cxone_access_key_secret,
            }
        else:
            form = {"grant_type": "client_credentials"}
        self.token_requests += 1
        metrics.TOKEN_REFRESHES.inc()
        log.info("requesting a CXone token", extra={"grant_type": form["grant_type"]})
        token_endpoint = self._discover_token_endpoint()
        response = self._send(
            "POST", token_endpoint, "token", data=form, auth=(s.cxone_client_id, s.cxone_client_secret)
        )
        if 300 <= response.status_code < 400:
            raise CredentialsRejected(
                f"the CXone token endpoint {token_endpoint} answered HTTP {response.status_code}, a "
                f"redirect to {_location_host(response)}: not followed, the credentials are never "
                "sent elsewhere; check CXONE_AUTH_URL",
                error="redirect",
                status=response.status_code,
            )
        if response.status_code != 200:
            rejected = _credentials_rejected(response, s.cxone_grant_type)
            if rejected is not None:
                raise rejected
            raise Transient(
                f"CXone token request refused: {_error_text(response)}",
                status=response.status_code,
                endpoint="token",
                not_delivered=True,
            )
        body = _json(response, "token")
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise Transient("CXone token response has no access_token", endpoint="token")
        expires_in = float(body.get("expires_in") or 3600)
        tenant_id = _jwt_claim(access_token, "tenantId") or ""
        if s.cxone_api_url:
            api_base = self._require_trusted(s.cxone_api_url, "CXONE_API_URL", "no token is sent there")
        else:
            api_base = self._discover_api_base(tenant_id)
        token = Token(access_token, time.time() + expires_in, tenant_id, api_base)
        margin = s.cxone_token_refresh_margin_seconds
        ttl = expires_in - margin if expires_in > 2 * margin else expires_in / 2
        return token.to_json(), ttl

    def _discover_token_endpoint(self) -> str:
        with self._discovery_lock:
            if self._token_endpoint is None:
                endpoint = self._well_known("openid-configuration", "token_endpoint", what="OIDC discovery")
                self._token_endpoint = self._require_trusted(
                    endpoint, "token_endpoint", "not sent any credentials", discovered=True
                )
            return self._token_endpoint

    def token_endpoint(self) -> str:
        """The token endpoint OIDC discovery gave (looked up once per process, and checked)."""
        return self._discover_token_endpoint()

    def _require_trusted(self, url: str, name: str, consequence: str, *, discovered: bool = False) -> str:
        """``url`` if credentials may go there, else :class:`UntrustedEndpoint` naming ``name``."""
        problem = self.trusted.problem_with(url)
        if problem is None:
            return url
        source = f"CXone discovery returned an untrusted {name}" if discovered else f"{name} is untrusted:"
        raise UntrustedEndpoint(f"{source} {url} ({problem}): {consequence}", url=url, endpoint="discovery")

    def _discover_api_base(self, tenant_id: str) -> str:
        if not tenant_id:
            raise Permanent("the CXone token carries no tenantId: set CXONE_API_URL", endpoint="discovery")
        api = self._well_known(
            "cxone-configuration", "api_endpoint", what="cxone-configuration", tenantId=tenant_id
        )
        if not api.startswith("http"):
            raise Transient("cxone-configuration has no api_endpoint", endpoint="discovery")
        return self._require_trusted(api.rstrip("/"), "api_endpoint", "no token sent there", discovered=True)

    def _well_known(self, document: str, field: str, *, what: str, **params: str) -> str:
        """``field`` of the public ``/.well-known/<document>`` on the auth host (no token needed);
        ``what`` names the lookup in the error when CXone does not give it."""
        url = f"{self.settings.cxone_auth_url}/.well-known/{document}"
        self._require_trusted(self.settings.cxone_auth_url, "CXONE_AUTH_URL", "no discovery from there")
        response = self._send("GET", url, "discovery", params=params or None)
        if response.status_code != 200:
            moved = f" (redirect to {_location_host(response)}, not followed)" if response.is_redirect else ""
            raise Transient(
                f"{what} failed: HTTP {response.status_code}{moved}",
                status=response.status_code,
                endpoint="discovery",
            )
        value = _json(response, "discovery").get(field)
        if not isinstance(value, str) or not value:
            raise Transient(f"{what} has no {field}", endpoint="discovery")
        return value

    def api_base(self) -> str:
        """The tenant's API host (pinned by CXONE_API_URL, else discovered with the token)."""
        return self.settings.cxone_api_url or self.token().api_base

    # ---------------------------------------------------------------- API calls

    def search_skills(self, search: str, skip: int = 0, top: int = SKILLS_PAGE_SIZE) -> dict:
        """One page of ``GET skills?searchString=…`` (a substring match): ``{skills, totalRecords}``."""
        response = self.call(
            "GET", SKILLS_PATH, "skills", params={"searchString": search, "skip": skip, "top": top}
        )
        if response.status_code == 204:  # CXone answers "no content" to an empty search
            return {"skills": [], "totalRecords": 0}
        return _json(response, "skills")

    def skill_activity(self) -> dict:
        """``GET skills/activity``: every skill's live state, as CXone returns it (read it through
        :func:`shared.cxone.skill_activity.parse_activity`, the one place that knows its fields)."""
        response = self.call("GET", SKILL_ACTIVITY_PATH, "skill_activity")
        if response.status_code == 204:  # no content: no skill has activity to report
            return {}
        return _json(response, "skill_activity")

    def list_routing_queues(self, size: int = ROUTING_QUEUES_PAGE_SIZE) -> dict:
        """``GET /dfo/3.0/routing-queues?size=…``: ``{hits, data: [{id, name, skillId, …}]}``."""
        return _json(
            self.call("GET", ROUTING_QUEUES_PATH, "routing_queues", params={"size": size}), "routing_queues"
        )

    def get_contact(self, contact_id: str, fields: ContactFields | None = None) -> ContactState:
        """Read a digital contact back (``GET /dfo/3.0/contacts/{id}``); a 404 is ``exists=False``.

        ``fields`` names where the queue, status and assignee are (default: the settings).
        """
        try:
            response = self.call("GET", CONTACT_PATH.format(contact_id=_path_part(contact_id)), "contact")
        except Permanent as exc:
            if exc.status == 404:
                return unknown_contact(contact_id)
            raise
        body = _json(response, "contact")
        return contact_state(contact_id, body, fields or ContactFields.from_settings(self.settings))

    def route_digital(self, contact_id: str, skill_id: int) -> None:
        """Move a digital contact to the routing queue of ``skill_id`` (idempotent PUT)."""
        self.call(
            "PUT",
            ROUTING_QUEUE_PATH.format(contact_id=_path_part(contact_id)),
            "routing_queue",
            json={"skillId": skill_id},
        )

    def signal(self, contact_id: str, params: list[str]) -> None:
        """Send the Signal API call the customer's Studio script turns into a Reskill (p1…p9)."""
        query = {f"p{i}": value for i, value in enumerate(params[:9], start=1)}
        self.call("POST", SIGNAL_PATH.format(contact_id=_path_part(contact_id)), "signal", params=query)

    def call(self, method: str, path: str, endpoint: str, **kwargs) -> requests.Response:
        """Make one metered API call; on 401 drop the token and try once more with a new one."""
        for attempt in (1, 2):
            # The token first, then the slot: getting a token can wait up to ~44 s behind another
            # worker's refresh, and a slot taken before that wait would be spent long before the
            # call reaches CXone, which could then count more calls in some 60 s than the limit.
            token = self.token()
            # Refused while the window is full, or while CXone's pause (a 429's Retry-After, set
            # by any worker) lasts: then nothing is sent by anyone, whatever the task's countdown.
            # A routing dispatched from the backlog spends the slot its dispatcher reserved (once,
            # while fresh) and passes the backlog's gate; any other waits behind the backlog.
            ticket = current_pass()
            if ticket is not None and ticket.reserved:
                ticket.reserved = False
                # The slot was granted before the task started: a pause CXone asked for since
                # (another worker's 429) still holds for it.
                if (left := self.limiter.pause_left()) > 0:
                    raise PausedByCXone(left)
            else:
                slot = self.limiter.acquire(gated=ticket is None)
                if slot.wait > 0:
                    metrics.LIMITER_WAIT.observe(slot.wait)
                    if slot.paused:
                        raise PausedByCXone(slot.wait)
                    raise RateLimited(slot.wait, behind_backlog=slot.behind_backlog)
            response = self._send(
                method,
                token.api_base + path,
                endpoint,
                headers={"Authorization": f"Bearer {token.access_token}"},
                **kwargs,
            )
            if response.status_code == 429:
                self._pause_for_retry_after(response, endpoint)
            if response.status_code == 401 and attempt == 1:
                log.info("CXone rejected the token; refreshing once", extra={"endpoint": endpoint})
                self.drop_token(token)
                continue
            return _check(response, endpoint)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause_for_retry_after(self, response: requests.Response, endpoint: str) -> None:
        """CXone's Retry-After applies to the client, not the one request: pause every worker."""
        retry_after = _retry_after(response)
        if not retry_after:
            return  # no Retry-After: only this task backs off (exponentially, with jitter)
        if retry_after > MAX_CXONE_PAUSE_SECONDS:
            log.warning("CXone's Retry-After of %.0fs is cut to %.0fs", retry_after, MAX_CXONE_PAUSE_SECONDS)
            retry_after = MAX_CXONE_PAUSE_SECONDS
        paused = self.limiter.pause(retry_after)
        log.warning(
            "CXone answered 429 with Retry-After %.0fs: no worker calls CXone for %.1fs",
            retry_after,
            paused,
            extra={"endpoint": endpoint, "retry_after": retry_after},
        )

    def _send(self, method: str, url: str, endpoint: str, **kwargs) -> requests.Response:
        started = time.perf_counter()
        status = "error"  # anything unexpected (a bug, not CXone) still gets timed
        try:
            # Never follow a redirect: requests would re-send the form body (the access key
            # secret) on a 307, and re-attach the auth, to wherever Location points.
            response = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
            status = str(response.status_code)
            return response
        except requests.ConnectTimeout as exc:
            status = "connect_timeout"
            raise Transient(f"{endpoint}: connect timeout", endpoint=endpoint, not_delivered=True) from exc
        except requests.Timeout as exc:
            status = "timeout"
            raise Transient(f"{endpoint}: no answer within {self.timeout[1]:g}s", endpoint=endpoint) from exc
        except requests.ConnectionError as exc:
            status = "connection_error"
            raise Transient(
                f"{endpoint}: connection failed", endpoint=endpoint, not_delivered=_never_connected(exc)
            ) from exc
        finally:
            metrics.CXONE_REQUEST_DURATION.labels(endpoint=endpoint, status=status).observe(
                time.perf_counter() - started
            )


def _check(response: requests.Response, endpoint: str) -> requests.Response:
    status = response.status_code
    if 200 <= status < 300:
        return response
    if 300 <= status < 400:
        # Not followed (see _send): the bearer token only goes to the API host we checked.
        raise Permanent(
            f"{endpoint}: HTTP {status}, a redirect to {_location_host(response)}: not followed "
            "(the CXone token is only sent to the configured API host)",
            status=status,
            endpoint=endpoint,
        )
    reason = f"{endpoint}: HTTP {status}: {_error_text(response)}"
    if status == 429:
        raise Throttled(reason, retry_after=_retry_after(response), status=status, endpoint=endpoint)
    if status == 401:
        raise Transient(
            reason + " (token rejected twice)", status=status, endpoint=endpoint, not_delivered=True
        )
    if status >= 500:
        # 503 means the service refused before doing anything; 500/502/504 may have acted.
        raise Transient(reason, status=status, endpoint=endpoint, not_delivered=status == 503)
    raise Permanent(reason, status=status, endpoint=endpoint)


def _location_host(response: requests.Response) -> str:
    """The host a redirect points to (``Location`` may be relative: then the same host)."""
    location = response.headers.get("Location")
    if not location:
        return "nowhere (no Location header)"
    try:
        host = urlsplit(urljoin(response.url or "", location)).hostname
    except ValueError:
        host = None
    return host or f"an unreadable Location {location[:100]!r}"


def _credentials_rejected(response: requests.Response, grant_type: str) -> CredentialsRejected | None:
    """The token endpoint's answer as :class:`CredentialsRejected` when it says our configuration is
    wrong (an OAuth error code of :data:`CREDENTIALS_HINTS`, or any 401), else None."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 401 and code not in CREDENTIALS_HINTS:
        code = "invalid_client"  # a 401 from the token endpoint is failed client authentication
    if code not in CREDENTIALS_HINTS or response.status_code not in (400, 401):
        return None
    hint = CREDENTIALS_HINTS[code].format(grant=grant_type)
    if code == "invalid_grant" and grant_type == "client_credentials":
        hint = "check CXONE_CLIENT_ID/SECRET and CXONE_GRANT_TYPE"
    return CredentialsRejected(
        f"CXone rejected the credentials ({code}): {hint}", error=code, status=response.status_code
    )


def _shared_failure(raw: str) -> CXoneError:
    """The token failure another worker recorded a moment ago, raised here without a request."""
    try:
        failure = json.loads(raw)
        reason, permanent = str(failure["reason"]), bool(failure.get("permanent"))
    except (ValueError, KeyError, TypeError):
        reason, permanent = raw, False
    if permanent:
        return Permanent(reason, endpoint="token")
    return Transient(reason, not_delivered=True, endpoint="token")


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_text(response: requests.Response) -> str:
    """The message of a DFO or OAuth error body, else a snippet of the body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:200]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("errorCode"))[:200]
        for key in ("error_description", "error", "message"):
            if body.get(key):
                return str(body[key])[:200]
    return json.dumps(body)[:200]


def _json(response: requests.Response, endpoint: str) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise Transient(f"{endpoint}: answer is not JSON", endpoint=endpoint) from exc
    if not isinstance(body, dict):
        raise Transient(f"{endpoint}: answer is not a JSON object", endpoint=endpoint)
    return body


def _jwt_claim(token: str, claim: str) -> str | None:
    """Read one claim from a JWT payload without verifying it (only to learn the tenant id)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    value = data.get(claim) if isinstance(data, dict) else None
    return str(value) if value else None


def _path_part(value: str) -> str:
    """``value`` as one path segment: every reserved character encoded, so that ``/``, ``?``
    and ``#`` cannot end it. Dot segments are refused: requests (urllib3) resolves ``.`` and
    ``..`` before sending (``/contacts/../routing-queue`` becomes ``/routing-queue``), and
    ``%2E`` is decoded back to a dot on the way. The ingress and the worker refuse such ids
    already (``CONTACT_ID_PATTERN``); this is the client's own guard."""
    if value.strip(".") == "":
        raise Permanent(f"{value!r} cannot be a CXone id in a URL path; nothing was sent")
    return quote(value, safe="")


def _never_connected(exc: requests.ConnectionError) -> bool:
    # Connection refused / DNS failure: the request never left, so even a signal may be re-sent.
    text = repr(exc)
    return "NewConnectionError" in text or "NameResolutionError" in text


class _EnvironmentOnceSession(requests.Session):
    """A Session that reads the environment once per CXone host instead of once per call.

    With ``trust_env`` (kept on: a deployment may route CXone through ``HTTPS_PROXY``, or trust
    its own CA with ``REQUESTS_CA_BUNDLE``), requests looks up the proxy variables, the CA bundle
    variables and ``~/.netrc`` again for every request: 8 % of a worker's CPU under load (py-spy),
    for answers that cannot change while the process runs. The answers are kept per scheme and
    host; a call that passes its own proxies, verify, cert or auth goes the usual way.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[str, Any] = {}
        self._netrc: dict[str, requests.auth.AuthBase | tuple[str, str]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """requests' merge, from the first answer for ``url``'s host when nothing is overridden."""
        if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = _origin(url)
        settings: Any = self._environment.get(origin)
        if settings is None:
            settings = self._environment[origin] = super().merge_environment_settings(
                url, {}, None, None, None
            )
        return {**settings, "proxies": dict(settings["proxies"])}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """requests' preparation, with ``.netrc``'s credentials for the host looked up once."""
        if self.trust_env and not request.auth and not self.auth:
            origin = _origin(request.url)
            auth = self._netrc.get(origin)
            if auth is None:
                found = requests.utils.get_netrc_auth(request.url)
                auth = self._netrc[origin] = found if found else _NO_AUTH
            request.auth = auth  # set (even to "none"): requests does not look .netrc up again
        return super().prepare_request(request)


class _NoAuth(requests.auth.AuthBase):
    """No credentials (``.netrc`` has none for the host), as an object requests takes as given."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _new_session(pool_size: int) -> requests.Session:
    session = _EnvironmentOnceSession()
    # max_retries=0: Celery is the one retry layer; retries here would multiply with it.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "cognigy-cxone-router/0.1"})
    return session
