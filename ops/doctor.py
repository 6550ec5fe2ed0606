"""``python -m ops doctor``: check a deployment before it takes traffic.

Reads the same environment as the web and worker processes and checks, in order: the settings,
demo secrets (refused with a real tenant), webhook authentication, the CXone credentials (for
CXONE_GRANT_TYPE), the CXone hosts credentials may go to (CXONE_AUTH_URL, CXONE_API_URL, then the
token_endpoint and api_endpoint discovery gives), the routing table, Redis (reachable; eviction
policy and persistence; the topology: the primary each sentinel names, the replicas and their
lag, failing when REDIS_MIN_REPLICAS_ACK asks for more replicas than are connected), whether CXone
has paused the workers (rejected credentials, a 429's Retry-After), a CXone token (grant, tenant,
API host; or CXone's OAuth error), and every queue of
the routing table resolved to a skill id, with each route's voice/digital mode next to the skill's
media type and, for voice, the signal parameters of an example routing. Then each queue the
table can send to (overflow alternatives included) with its live state from CXone's skill activity
(agents available, queue count, longest wait) and its overflow rules, and the activity fields CXone
returned for one skill, to check the names against the CXone supervisor view. With ``--contact ID``
it also reads that contact back from CXone (``GET /dfo/3.0/contacts/{id}``) and says what it found,
so an operator can check on a live test chat that the id the bot sends is the DFO contact id, and
see the contact's field names as the tenant returns them. Prints a table (or ``--json``) and exits
1 when anything failed (``--strict``: or warned), 0 otherwise.

Two promises:

* **No secret is printed.** Only counts and names of settings are shown, URLs lose their
  password, and everything written passes through :class:`Redactor`, which blanks any configured
  secret value that might still hide in an error message. Nor is a customer's data: a contact is
  shown with its ids, status, queue and times only (``without_customer_data``).
* **The doctor leaves the workers' shared state alone.** It fetches a token of its own and never
  reads or writes the shared token cache: a cached token would prove nothing about the configured
  credentials (a wrong secret would pass until the cached token expired), and a token written by a
  doctor run with a different environment (another ``CXONE_API_URL``, new credentials being tried)
  would send every worker to that host with that identity. The price is one token request per run.
  Skill lookups are made fresh too (the skill cache is neither read nor written), but they do take
  slots from the shared CXone rate limiter, because they spend the same tenant's call budget.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TextIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis

from shared import redis_keys
from shared.cxone.client import CXoneClient, Token
from shared.cxone.contact import ContactFields, ContactState, dropped_fields, without_customer_data
from shared.cxone.errors import (
    CredentialsRejected,
    CXoneError,
    PausedByCXone,
    RateLimited,
    UntrustedEndpoint,
)
from shared.cxone.queue_directory import QueueDirectory
from shared.cxone.rate_limiter import CallLimiter
from shared.cxone.skill_activity import FIELDS, LIST_FIELD, SKILL_ID_FIELD, SkillActivity, parse_activity
from shared.cxone.token_pause import TokenPause
from shared.demo_secrets import demo_secrets_in_effect, demo_secrets_problem
from shared.redis_connection import redis_client as connect_redis
from shared.redis_connection import sentinel_addresses, sentinel_connection_kwargs
from shared.routing.backlog import BacklogPass, carrying
from shared.routing.contact_id import is_contact_id
from shared.routing.overflow import OverflowRule
from shared.routing.read_back import status_meaning
from shared.routing.signal_template import render as render_signal
from shared.routing.signal_template import signal_values
from shared.routing.table import Queue, RoutingTable, RoutingTableError, queue_key
from shared.settings import Settings, SettingsError, load_settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
#: Settings whose values are secrets (comma-separated lists are split into their parts).
SECRET_SETTINGS = (
    "CXONE_CLIENT_SECRET",
    "CXONE_ACCESS_KEY_SECRET",
    "WEBHOOK_API_KEYS",
    "WEBHOOK_SIGNING_SECRETS",
    "FLOWER_BASIC_AUTH",
)
#: An API key shorter than this is guessable; warn about it.
MIN_KEY_LENGTH = 16
#: How long the doctor waits in total for slots of the shared CXone rate limiter.
MAX_LIMITER_WAIT_SECONDS = 30.0
T = TypeVar("T")

#: CXone's media type id of voice skills ("Phone Call"); others are Email 1, Chat 3, Voice Mail 5,
#: Work Item 6, Digital 9, … (the ``MediaTypeId`` enum of NICE's CXone agent SDK).
PHONE_CALL_MEDIA_TYPE_ID = 4
#: How :meth:`RoutingTable.queues` names the fallback queue.
FALLBACK_ROUTE = "<fallback>"


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``doctor`` on the top-level parser."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check settings, routing table, Redis, CXone token and every queue",
        description="Check a deployment before it takes traffic. Exit 0: ready; 1: problems found.",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--strict", action="store_true", help="count warnings as problems")
    doctor.add_argument(
        "--contact",
        metavar="ID",
        help="also read this CXone contact back (GET /dfo/3.0/contacts/ID) and show what CXone says",
    )
    # The doctor reports bad settings itself, as one of its checks.
    doctor.set_defaults(handler=doctor_command, without_settings=True)


def doctor_command(args: argparse.Namespace, _settings: Settings | None, out: TextIO) -> int:
    """Run every check against ``os.environ`` and print the report."""
    report = run_checks(os.environ, contact_id=args.contact)
    redactor = Redactor.from_environ(os.environ)
    text = (
        json.dumps(report.to_dict(args.strict), indent=2) + "\n" if args.json else render(report, args.strict)
    )
    out.write(redactor.scrub(text))
    return 1 if report.problems(args.strict) else 0


# ------------------------------------------------------------------------------ the report


@dataclass
class Check:
    """One line of the report: what was checked, ok/warn/fail/skip, and what was found."""

    name: str
    status: str
    detail: str


@dataclass
class RouteCheck:
    """One queue of the routing table: its skill id (or why there is none), its mode, the skill's
    media type, and for a route that can be voice the signal parameters of an example routing."""

    intent: str
    queue: str
    skill_id: int | None
    status: str
    lookup: str  # found, "pinned, not looked up", missing, inactive, ambiguous, error, skipped
    detail: str
    mode: str
    media_type_id: int | None = None
    media_type_name: str | None = None
    #: p1 … of the signal a voice contact on this route gets (ids of one routing shown as <…>).
    signal_params: list[str] | None = None

    @property
    def media_type(self) -> str:
        """The media type as the report shows it: ``Phone Call (4)``, or ``-`` when unknown."""
        return media_label(self.media_type_id, self.media_type_name)


@dataclass
class ContactCheck:
    """One contact read back from CXone (``--contact``): what CXone says, without customer data."""

    contact_id: str
    exists: bool | None = None  # None: not read
    status: str | None = None
    routing_queue_id: str | None = None
    routing_queue: str | None = None  # the queue's name, when the routing queue list has it
    skill_id: int | None = None
    assignee: str | None = None
    #: The contact as CXone returned it, with only ids, status, queue, priority and times.
    returned: dict | None = None
    #: The fields left out of ``returned`` (names only).
    omitted: list[str] = field(default_factory=list)
    #: What a routing reads back after an attempt whose outcome is unknown: for status, queue and
    #: assignee, the field's name, the setting that names it, whether the contact has it, the value.
    read_back: list[dict] = field(default_factory=list)
    #: What such a routing would do with the contact's status.
    read_back_meaning: str | None = None


@dataclass
class QueueStateCheck:
    """One queue the table can send to (a route's, the fallback's or an overflow alternative's):
    its live state as CXone's skill activity gives it (None: not given), and its overflow rules."""

    queue: str
    skill_id: int | None
    status: str
    agents_available: int | None = None
    queue_count: int | None = None
    longest_wait_seconds: float | None = None
    #: The queue's own overflow rules, e.g. ``-> General Inquiry if agents_available_below 1``.
    overflow: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass
class Report:
    """What the doctor found: the deployment's checks, one line per route of the table, each
    queue's live state, and the contact read back (``--contact``)."""

    checks: list[Check] = field(default_factory=list)
    routes: list[RouteCheck] = field(default_factory=list)
    contact: ContactCheck | None = None
    queues: list[QueueStateCheck] = field(default_factory=list)
    #: One skill's activity exactly as CXone returned it: ``{"skillId", "queue", "fields"}``.
    activity: dict | None = None

    def add(self, name: str, status: str, detail: str) -> Check:
        """Record one check's outcome and return it."""
        check = Check(name, status, detail)
        self.checks.append(check)
        return check

    def statuses(self) -> list[str]:
        """The status of every check and route, in report order."""
        return (
            [c.status for c in self.checks]
            + [r.status for r in self.routes]
            + [q.status for q in self.queues]
        )

    def problems(self, strict: bool = False) -> int:
        """Failed checks (and, when ``strict``, warnings)."""
        counted = (FAIL, WARN) if strict else (FAIL,)
        return sum(status in counted for status in self.statuses())

    def to_dict(self, strict: bool = False) -> dict:
        """The report as ``--json`` prints it."""
        return {
            "ok": not self.problems(strict),
            "problems": self.statuses().count(FAIL),
            "warnings": self.statuses().count(WARN),
            "checks": [asdict(c) for c in self.checks],
            "routes": [asdict(r) for r in self.routes],
            **({"contact": asdict(self.contact)} if self.contact is not None else {}),
            "queues": [asdict(q) for q in self.queues],
            **({"activity": self.activity} if self.activity is not None else {}),
        }


# ------------------------------------------------------------------------------ the checks


def run_checks(
    environ: Mapping[str, str],
    redis_factory: Callable[[Settings], redis.Redis] | None = None,
    contact_id: str | None = None,
) -> Report:
    """Every check, in order; later ones are skipped when what they need failed. ``contact_id``:
    read that contact back too (``--contact``)."""
    report = Report()
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        report.add("settings", FAIL, str(exc))
        for name in (
            "demo secrets",
            "webhook auth",
            "cxone credentials",
            "cxone hosts",
            "routing table",
            "redis",
            "cxone token",
        ):
            report.add(name, SKIP, "settings are invalid")
        if contact_id is not None:
            report.add("cxone contact", SKIP, "settings are invalid")
        return report
    report.add("settings", OK, "every setting present is well-formed")

    _check_demo_secrets(report, settings)
    _check_webhook_auth(report, settings)
    credentials = _check_credentials(report, settings)
    hosts = _check_hosts(report, settings)
    table = _check_routing_table(report, settings)
    client = (redis_factory or _redis_client)(settings)
    try:
        redis_ok = _check_redis(report, settings, client)
        if redis_ok:
            _check_pauses(report, client)
        trusted = hosts.status == OK
        cxone = _DoctorClient(settings, client) if credentials and trusted else None
        try:
            token = _check_token(report, settings, cxone, hosts)
            if table is not None:
                why = "no CXone token" if not token else "Redis unreachable"
                found = _check_routes(report, table, cxone if token and redis_ok else None, why)
                _check_queue_state(report, table, cxone if token and redis_ok else None, why, found)
            if contact_id is not None:
                _check_contact(report, settings, cxone if token and redis_ok else None, contact_id)
        finally:
            if cxone is not None:
                cxone.session.close()
    finally:
        client.close()
    return report


def _check_demo_secrets(report: Report, settings: Settings) -> None:
    problem = demo_secrets_problem(settings)
    if problem is not None:
        report.add("demo secrets", FAIL, problem)
        return
    found = [secret.variable for secret in demo_secrets_in_effect(settings)]
    if found:
        report.add(
            "demo secrets",
            OK,
            f"demo values in {', '.join(found)}: allowed because CXone is the sandbox "
            f"({settings.cxone_auth_url}); refused with a real tenant",
        )
    else:
        report.add("demo secrets", OK, "none in effect")


def _check_webhook_auth(report: Report, settings: Settings) -> None:
    signatures = _signatures(settings)
    if settings.webhook_auth_disabled:
        report.add(
            "webhook auth",
            WARN,
            "WEBHOOK_AUTH_DISABLED=true: webhooks are accepted "
            f"without an API key (local use only); {signatures}",
        )
        return
    keys = settings.webhook_api_keys
    if not keys:
        report.add(
            "webhook auth",
            FAIL,
            "WEBHOOK_API_KEYS is empty: set one or more "
            "comma-separated keys (or WEBHOOK_AUTH_DISABLED=true, local use only)",
        )
        return
    short = [str(i) for i, key in enumerate(keys, start=1) if len(key) < MIN_KEY_LENGTH]
    if short:
        report.add(
            "webhook auth",
            WARN,
            f"{len(keys)} API key(s); key #{', #'.join(short)} is "
            f"shorter than {MIN_KEY_LENGTH} characters; {signatures}",
        )
        return
    report.add("webhook auth", OK, f"{len(keys)} API key(s); {signatures}")


def _signatures(settings: Settings) -> str:
    count = len(settings.webhook_signing_secrets)
    if not count:
        return "signatures not configured"
    return (
        f"signatures {'required' if settings.webhook_signature_required else 'optional'} ({count} secret(s))"
    )


def _check_credentials(report: Report, settings: Settings) -> bool:
    try:
        settings.require_cxone_credentials()
    except SettingsError as exc:
        report.add("cxone credentials", FAIL, str(exc))
        return False
    if settings.cxone_grant_type == "password":
        report.add(
            "cxone credentials", OK, "password grant: client id and secret, access key id and secret set"
        )
    elif settings.cxone_access_key_id or settings.cxone_access_key_secret:
        report.add(
            "cxone credentials",
            WARN,
            "client_credentials grant (CXONE_GRANT_TYPE): client id and secret set; the access key "
            "that is also set is not used (NICE's default for back-end integrations is "
            "CXONE_GRANT_TYPE=password)",
        )
    else:
        report.add(
            "cxone credentials", OK, "client_credentials grant (CXONE_GRANT_TYPE): client id and secret set"
        )
    return True


def _check_hosts(report: Report, settings: Settings) -> Check:
    """CXONE_AUTH_URL and CXONE_API_URL against CXONE_TRUSTED_HOSTS, one line each; the token check
    adds the endpoints discovery gives. A fail here means no credential is sent anywhere."""
    trusted = settings.trusted_cxone_hosts()
    lines, status = [], OK
    for name, value in (
        ("CXONE_AUTH_URL", settings.cxone_auth_url),
        ("CXONE_API_URL", settings.cxone_api_url),
    ):
        if not value:
            lines.append(f"{name}: not set (api_endpoint is discovered)")
            continue
        problem = trusted.problem_with(value)
        lines.append(f"{name} {value}: {'ok' if problem is None else 'FAIL: ' + problem}")
        status = status if problem is None else FAIL
    return report.add("cxone hosts", status, "\n".join(lines))


def _check_pauses(report: Report, client: redis.Redis) -> None:
    """Whether CXone has made every worker wait: rejected credentials, or a 429's Retry-After."""
    findings = []
    paused = TokenPause(client).current()
    if paused is not None:
        findings.append(f"token requests paused {paused.seconds_left:.0f}s more: {paused.reason}")
    limiter = CallLimiter(client, redis_keys.CXONE_RATE_LIMIT, 1, pause_key=redis_keys.CXONE_PAUSE_UNTIL)
    calls_left = limiter.pause_left()
    if calls_left > 0:
        findings.append(f"API calls paused {calls_left:.0f}s more (CXone answered 429 with Retry-After)")
    if findings:
        report.add("cxone pauses", WARN, "\n".join(findings))
    else:
        report.add("cxone pauses", OK, "none: the workers may ask for tokens and call CXone")


def _check_routing_table(report: Report, settings: Settings) -> RoutingTable | None:
    try:
        table = RoutingTable.load(settings.routes_file)
    except RoutingTableError as exc:
        report.add("routing table", FAIL, str(exc))
        return None
    fallback = f"fallback '{table.fallback.label}'" if table.fallback else "no fallback (422)"
    report.add(
        "routing table",
        OK,
        f"{settings.routes_file}: {len(table.routes)} route(s), {fallback}, min_score {table.min_score:g}",
    )
    return table


def _redis_client(settings: Settings) -> redis.Redis:
    return connect_redis(settings, socket_timeout=3, socket_connect_timeout=2, decode_responses=True)


def _check_redis(report: Report, settings: Settings, client: redis.Redis) -> bool:
    where = safe_url(settings.redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        report.add("redis", FAIL, f"no answer from {where}: {exc.__class__.__name__}: {exc}")
        report.add("redis durability", SKIP, "Redis unreachable")
        return False
    try:
        version = f" (Redis {client.info('server').get('redis_version', '?')})"
    except redis.ResponseError:
        version = ""
    report.add("redis", OK, f"PING answered by {where}{version}")
    policy, appendonly = _redis_config(client)
    findings, status = [], OK
    if policy is None:
        findings.append("maxmemory-policy unknown")
        status = WARN
    elif policy != "noeviction":
        findings.append(
            f"maxmemory-policy is {policy}: Redis may evict queued tasks and routing "
            "records under memory pressure; set noeviction"
        )
        status = WARN
    else:
        findings.append("maxmemory-policy noeviction")
    if appendonly is None:
        findings.append("appendonly unknown")
        status = WARN
    elif appendonly != "yes":
        findings.append(
            "appendonly is off: a Redis restart loses the queued tasks accepted since "
            "the last snapshot; set appendonly yes"
        )
        status = WARN
    else:
        findings.append("appendonly yes")
    if policy is None or appendonly is None:
        findings.append(
            "(CONFIG GET and INFO refused, as on some managed Redis: check these in the provider's settings)"
        )
    report.add("redis durability", status, "; ".join(findings))
    _check_topology(report, settings, client)
    return True


#: A replica further behind than this (seconds since its last acknowledgement) is worth a warning.
REPLICA_LAG_WARN_SECONDS = 5


def _check_topology(report: Report, settings: Settings, client: redis.Redis) -> None:
    """The primary, its replicas (with their lag) and the sentinels as they answer now. FAIL when
    the server is not a primary, or when REDIS_MIN_REPLICAS_ACK asks for more replicas than are
    connected (every webhook would be answered 503)."""
    wanted = settings.redis_min_replicas_ack
    try:
        info = client.info("replication")
    except redis.RedisError as exc:
        status = FAIL if wanted else WARN
        report.add(
            "redis topology",
            status,
            f"INFO replication refused ({exc.__class__.__name__}): replicas unknown"
            + (f"; REDIS_MIN_REPLICAS_ACK={wanted} cannot be checked" if wanted else ""),
        )
        return
    status, findings = OK, []
    role = info.get("role", "?")
    if role != "master":
        status = FAIL
        findings.append(f"the server is a {role}, not the primary: writes are refused")
    offset = int(info.get("master_repl_offset") or 0)
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    online = [r for r in replicas if r.get("state") == "online"]
    described = [
        f"{r.get('ip')}:{r.get('port')} {r.get('state')}, lag {r.get('lag', '?')} s, "
        f"{max(0, offset - int(r.get('offset') or 0))} bytes behind"
        for r in replicas
    ]
    findings.append(f"{len(replicas)} replica(s)" + (": " + "; ".join(described) if described else ""))
    if any(int(r.get("lag") or 0) > REPLICA_LAG_WARN_SECONDS for r in online) and status == OK:
        status = WARN
    if wanted > len(online):
        status = FAIL
        findings.append(
            f"REDIS_MIN_REPLICAS_ACK={wanted} but {len(online)} replica(s) connected: every webhook "
            "would be answered 503"
        )
    elif wanted:
        findings.append(f"REDIS_MIN_REPLICAS_ACK={wanted}: a 202 waits for the replica(s)")
    else:
        findings.append("REDIS_MIN_REPLICAS_ACK=0: a primary's crash can lose the last routings accepted")
    if settings.redis_sentinels:
        sentinel_status, sentinel_finding = _sentinels_view(settings)
        findings.insert(0, sentinel_finding)
        if sentinel_status == WARN and status == OK:
            status = WARN
    report.add("redis topology", status, "; ".join(findings))


def _sentinels_view(settings: Settings) -> tuple[str, str]:
    """``(OK or WARN, which primary each sentinel names)``: WARN when one does not answer or they
    disagree (a failover in progress, or a split)."""
    named: dict[str, list[str]] = {}
    silent = []
    for host, port in sentinel_addresses(settings):
        sentinel = redis.Redis(host=host, port=port, **sentinel_connection_kwargs(settings))
        try:
            found = sentinel.execute_command(
                "SENTINEL", "get-master-addr-by-name", settings.redis_sentinel_master
            )
            primary = f"{_text(found[0])}:{_text(found[1])}" if found else "none"
            named.setdefault(primary, []).append(f"{host}:{port}")
        except redis.RedisError as exc:
            silent.append(f"{host}:{port} ({exc.__class__.__name__})")
        finally:
            sentinel.close()
    total = len(settings.redis_sentinels)
    views = [f"{primary} per {len(by)}/{total} sentinel(s)" for primary, by in named.items()]
    finding = f"primary '{settings.redis_sentinel_master}': " + ("; ".join(views) or "named by no sentinel")
    if silent:
        finding += "; not answering: " + ", ".join(silent)
    return (WARN if silent or len(named) != 1 else OK), finding


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis_config(client: redis.Redis) -> tuple[str | None, str | None]:
    """``(maxmemory-policy, appendonly)`` from CONFIG GET, else INFO; None where both are refused.

    Managed Redis services often rename or disable CONFIG but still answer INFO.
    """
    try:
        config = client.config_get("maxmemory-policy")
        config.update(client.config_get("appendonly"))
        return config.get("maxmemory-policy"), config.get("appendonly")
    except redis.ResponseError:
        pass
    policy = appendonly = None
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except redis.ResponseError:
        pass
    try:
        aof = client.info("persistence").get("aof_enabled")
        appendonly = None if aof is None else ("yes" if int(aof) else "no")
    except redis.ResponseError:
        pass
    return policy, appendonly


def _check_token(
    report: Report, settings: Settings, cxone: _DoctorClient | None, hosts: Check
) -> Token | None:
    if cxone is None:
        why = (
            "CXone credentials are incomplete"
            if hosts.status == OK
            else "untrusted CXone URL: no credential sent"
        )
        report.add("cxone token", SKIP, why)
        return None
    try:
        token = cxone.fresh_token()
    except CXoneError as exc:
        hint = ""
        if isinstance(exc, CredentialsRejected):
            hint = f" (CXone's OAuth error: {exc.error}, HTTP {exc.status})"
        elif isinstance(exc, UntrustedEndpoint):
            hosts.status = FAIL
            hosts.detail += f"\ndiscovered {exc.url}: FAIL: not trusted, no credential sent"
        elif exc.status in (400, 401, 403):
            hint = (
                " (check CXONE_CLIENT_ID/CXONE_CLIENT_SECRET and the access key pair; an "
                "access key must belong to an active CXone API user)"
            )
        report.add("cxone token", FAIL, f"no token from {settings.cxone_auth_url}: {exc.reason}{hint}")
        return None
    hosts.detail += f"\ntoken_endpoint {cxone.token_endpoint()}: ok (discovered)"
    if not settings.cxone_api_url:
        hosts.detail += f"\napi_endpoint {token.api_base}: ok (discovered)"
    host = (
        f"{token.api_base} (pinned by CXONE_API_URL)"
        if settings.cxone_api_url
        else f"{token.api_base} (discovered for the tenant)"
    )
    report.add(
        "cxone token",
        OK,
        f"{settings.cxone_grant_type} grant; tenant {token.tenant_id or '(none in token)'}; "
        f"API {host}; valid {max(0, token.expires_at - time.time()):.0f}s",
    )
    return token


def _check_routes(
    report: Report, table: RoutingTable, cxone: _DoctorClient | None, why_skipped: str
) -> dict[str, _Found]:
    """One line per route; returns what each queue name was found to be (looked up once)."""
    directory = QueueDirectory(cxone, cxone.redis, 1) if cxone is not None else None
    found: dict[str, _Found] = {}  # one lookup per distinct name
    for intent, queue in table.queues().items():
        if queue.skill_id is not None:
            result = _Found(queue.skill_id, OK, "pinned, not looked up", "skill id from the table")
        elif directory is None:
            result = _Found(None, SKIP, f"skipped: {why_skipped}", "not looked up")
        else:
            name = queue.name
            assert name is not None, "the routing table gives every queue a name or a skill id"
            if name not in found:
                found[name] = _lookup(directory, name)
            result = found[name]
        route = RouteCheck(
            intent,
            queue.label,
            result.skill_id,
            result.status,
            result.lookup,
            result.detail,
            _mode(table, queue),
            result.media_type_id,
            result.media_type_name,
            _example_signal(table, queue, intent, result.skill_id),
        )
        mismatch = _media_mismatch(table, queue, result)
        if mismatch is not None and route.status == OK:
            route.status, route.detail = WARN, mismatch
        report.routes.append(route)
    return found


# ------------------------------------------------------------------------------ live queue state


def _check_queue_state(
    report: Report,
    table: RoutingTable,
    cxone: _DoctorClient | None,
    why_skipped: str,
    found: dict[str, _Found],
) -> None:
    """Each queue the table can send to, with its live state and overflow rules; the activity
    fields of one skill as CXone returned them. One ``skills/activity`` call (a limiter slot)."""
    has_rules = bool(table.overflow)
    consequence = ": overflow rules never apply (the routes' own queues are used)" if has_rules else ""
    if cxone is None:
        report.add("cxone skill activity", SKIP, why_skipped)
        return
    try:
        body = _in_turn(cxone.skill_activity)
    except (LimiterBusy, CXoneError) as exc:
        reason = exc.reason if isinstance(exc, CXoneError) else str(exc)
        hint = (
            " (the API user's role may lack the permission to read skill activity)" if "403" in reason else ""
        )
        report.add(
            "cxone skill activity",
            FAIL if has_rules else WARN,
            f"GET …/skills/activity failed: {reason}{hint}{consequence}",
        )
        return
    activity = parse_activity(body)
    directory = QueueDirectory(cxone, cxone.redis, 1)
    missing: set[str] = set()
    for label, (name, pinned, rules, is_alternative) in _routed_queues(table).items():
        skill_id: int | None
        problem: str | None
        if pinned is not None:
            skill_id, problem = pinned, None
        else:
            assert name is not None, "the routing table gives every queue a name or a skill id"
            if name not in found:
                found[name] = _lookup(directory, name)
            skill_id, problem = found[name].skill_id, found[name].detail
        checked = QueueStateCheck(label, skill_id, OK, overflow=[_rule_text(rule) for rule in rules])
        report.queues.append(checked)
        if skill_id is None:
            if is_alternative:
                checked.status, checked.detail = FAIL, f"overflow alternative with no skill: {problem}"
            else:
                checked.status, checked.detail = SKIP, "no skill id (see the route above)"
            continue
        state = activity.get(skill_id)
        if state is None:
            checked.detail = f"CXone lists no activity for skill {skill_id}"
            if rules:
                checked.status, checked.detail = WARN, checked.detail + ": its overflow rules never apply"
            continue
        checked.agents_available, checked.queue_count = state.agents_available, state.queue_count
        checked.longest_wait_seconds = state.longest_wait_seconds
        unusable = _fields_rules_need(state, rules)
        missing.update(state.missing())
        if unusable:
            checked.status = WARN
            checked.detail = (
                f"CXone gives no {', '.join(unusable)} for skill {skill_id}: the rules on it never apply"
            )
    report.activity = _sample_activity(body, [q.skill_id for q in report.queues], report)
    listed = f"{len(activity)} skill(s) listed"
    if missing:
        report.add(
            "cxone skill activity",
            WARN if has_rules else OK,
            f"{listed}; no {', '.join(sorted(missing))} for some routed skills: compare the fields "
            "below with the CXone supervisor view (a missing value never moves a contact)",
        )
    else:
        report.add(
            "cxone skill activity", OK, f"{listed}; every routed skill has {', '.join(FIELDS.values())}"
        )


def _routed_queues(
    table: RoutingTable,
) -> dict[str, tuple[str | None, int | None, tuple[OverflowRule, ...], bool]]:
    """Each queue the table can send to by its label: ``(name, skill id, its own overflow rules,
    True when only an overflow rule sends to it)``."""
    queues: dict[str, tuple[str | None, int | None, tuple[OverflowRule, ...], bool]] = {}
    for queue in table.queues().values():
        queues.setdefault(
            queue.label, (queue.name, queue.skill_id, _own_rules(table, queue.name, queue.skill_id), False)
        )
    for label, rule in table.alternatives().items():
        queues.setdefault(
            label, (rule.queue_name, rule.skill_id, _own_rules(table, rule.queue_name, rule.skill_id), True)
        )
    return queues


def _own_rules(table: RoutingTable, name: str | None, skill_id: int | None) -> tuple[OverflowRule, ...]:
    return tuple(table.overflow.get(queue_key(name, skill_id), ()))


def _rule_text(rule: OverflowRule) -> str:
    return f"-> {rule.label} if {rule.condition.text}"


def _fields_rules_need(state: SkillActivity, rules: tuple[OverflowRule, ...]) -> list[str]:
    """CXone's names of the values the rules read that the skill's activity lacks."""
    needed = {rule.condition.kind.quantity for rule in rules}
    return [FIELDS[q] for q in FIELDS if q in needed and state.value(q) is None]


def _sample_activity(body: dict, skill_ids: list[int | None], report: Report) -> dict | None:
    """The activity of the first routed skill CXone lists (else of the first skill it lists),
    exactly as returned: skill names and counts, nothing about customers."""
    entries = [e for e in body.get(LIST_FIELD) or [] if isinstance(e, dict)]
    for skill_id in [*skill_ids, None]:
        entry = next((e for e in entries if skill_id is None or e.get(SKILL_ID_FIELD) == skill_id), None)
        if entry is not None:
            queue = next((q.queue for q in report.queues if q.skill_id == entry.get(SKILL_ID_FIELD)), None)
            return {"skillId": entry.get(SKILL_ID_FIELD), "queue": queue, "fields": entry}
    return None


class LimiterBusy(Exception):
    """The shared CXone rate limiter had no slot for the doctor within its bounded wait."""

    def __str__(self) -> str:
        return f"shared CXone rate limiter busy for over {MAX_LIMITER_WAIT_SECONDS:g}s"


def _in_turn(call: Callable[[], T]) -> T:
    """``call()``, waiting (bounded) while the workers use the shared call budget."""
    waited = 0.0
    while True:
        try:
            # An operator's check does not queue behind the routings waiting in the backlog (it
            # would wait for the whole backlog to drain): it takes the next free slot, like them.
            with carrying(BacklogPass(reserved=False)):
                return call()
        except RateLimited as exc:
            if waited + exc.wait > MAX_LIMITER_WAIT_SECONDS:
                if isinstance(exc, PausedByCXone):
                    raise  # CXone's own pause: its reason says how long it lasts
                raise LimiterBusy from exc
            time.sleep(exc.wait)
            waited += exc.wait


@dataclass(frozen=True)
class _Found:
    """What the skills list says about one queue name."""

    skill_id: int | None
    status: str
    lookup: str
    detail: str
    media_type_id: int | None = None
    media_type_name: str | None = None


def _lookup(directory: QueueDirectory, name: str) -> _Found:
    """The skill of one queue name, or why there is none."""
    try:
        result = _in_turn(lambda: directory.lookup(name))
    except LimiterBusy as exc:
        return _Found(None, FAIL, "error", str(exc))
    except CXoneError as exc:
        return _Found(None, FAIL, "error", f"skill search failed: {exc.reason}")
    if result.skill_id is not None:
        return _Found(
            result.skill_id,
            OK,
            "found",
            f"found ({result.pages} page(s) searched)",
            result.media_type_id,
            result.media_type_name,
        )
    kind = (result.problem or "missing").split(":", 1)[0]
    return _Found(None, FAIL, kind, result.problem or "missing")


def _check_contact(report: Report, settings: Settings, cxone: _DoctorClient | None, contact_id: str) -> None:
    """Read ``contact_id`` back from CXone and report what was found (``--contact``)."""
    checked = report.contact = ContactCheck(contact_id)
    if not is_contact_id(contact_id, settings.contact_id_pattern):
        report.add(
            "cxone contact",
            FAIL,
            f"{contact_id!r} is not a CXone contact id (CONTACT_ID_PATTERN {settings.contact_id_pattern}): "
            "the router answers 400 to a webhook naming it; not sent to CXone",
        )
        return
    if cxone is None:
        report.add("cxone contact", SKIP, "no CXone token or Redis unreachable")
        return
    fields = ContactFields.from_settings(settings)
    try:
        state = _in_turn(lambda: cxone.get_contact(contact_id, fields))
    except (LimiterBusy, CXoneError) as exc:
        reason = exc.reason if isinstance(exc, CXoneError) else str(exc)
        report.add("cxone contact", FAIL, f"GET /dfo/3.0/contacts/{contact_id} failed: {reason}")
        return
    checked.exists = state.exists
    if not state.exists:
        report.add(
            "cxone contact",
            FAIL,
            f"{contact_id}: not a digital contact of this tenant (CXone answered 404): check that the bot "
            "sends the DFO contact id (a voice contact is not a digital one: for voice this is expected)",
        )
        return
    checked.status, checked.routing_queue_id, checked.assignee = (
        state.status,
        state.routing_queue_id,
        state.assignee,
    )
    checked.returned, checked.omitted = without_customer_data(state.raw), dropped_fields(state.raw)
    checked.read_back = _read_back_fields(state, fields)
    checked.read_back_meaning = status_meaning(state.status)
    if state.routing_queue_id is not None:
        checked.routing_queue, checked.skill_id = _queue_named(cxone, state.routing_queue_id)
    status, detail = _contact_verdict(state, checked, fields)
    report.add("cxone contact", status, detail)


def _queue_named(cxone: _DoctorClient, routing_queue_id: str) -> tuple[str | None, int | None]:
    """The name and skill id of a routing queue, from the DFO list (None, None when unknown)."""
    try:
        listing = _in_turn(cxone.list_routing_queues)
    except (LimiterBusy, CXoneError):
        return None, None
    for queue in listing.get("data") or []:
        if isinstance(queue, dict) and str(queue.get("id")) == routing_queue_id:
            skill = queue.get("skillId")
            return queue.get("name"), skill if isinstance(skill, int) else None
    return None, None


#: The contact fields a routing reads back, and the setting that names each.
CONTACT_FIELD_SETTINGS = (
    ("status", "CXONE_CONTACT_STATUS_FIELD"),
    ("queue", "CXONE_CONTACT_QUEUE_FIELD"),
    ("assignee", "CXONE_CONTACT_ASSIGNEE_FIELD"),
)


def _read_back_fields(state: ContactState, fields: ContactFields) -> list[dict]:
    """Status, queue and assignee as a routing reads them back: field, setting, present, value."""
    values = {
        "status": state.status,
        "queue": state.routing_queue_id,
        "assignee": f"{state.assignee} (a bot user: no agent)" if state.assignee_is_bot else state.assignee,
    }
    return [
        {
            "reads": what,
            "field": getattr(fields, what),
            "setting": setting,
            "present": what not in state.absent,
            "value": values[what],
        }
        for what, setting in CONTACT_FIELD_SETTINGS
    ]


def _contact_verdict(state: ContactState, checked: ContactCheck, fields: ContactFields) -> tuple[str, str]:
    """``(status, detail)`` of the contact check: what CXone said, and whether the router can use it."""
    if checked.routing_queue_id is None:
        queue = "no routing queue"
    else:
        named = f" = skill {checked.skill_id} '{checked.routing_queue}'" if checked.routing_queue else ""
        queue = f"routing queue {checked.routing_queue_id}{named}"
    agent = f"assigned to agent {checked.assignee}" if checked.assignee else "no agent assigned"
    found = f"{state.contact_id}: a digital contact of this tenant"
    detail = f"{found}; status {state.status or '?'}; {queue}; {agent}"
    missing = [f"{read['field']} ({read['setting']})" for read in checked.read_back if not read["present"]]
    if missing:
        return WARN, (
            f"{detail}; the contact has no field {', '.join(missing)}: compare the names with the "
            "contact below and set the setting"
        )
    if state.finished:
        return (
            WARN,
            f"{detail}: CXone does not move a {state.status} contact (the routing would fail with 404)",
        )
    return OK, detail


def _mode(table: RoutingTable, queue: Queue) -> str:
    if queue.mode:
        return f"{queue.mode} (forced)"
    return f"by channel: voice on {', '.join(table.voice_channels)}; else digital"


def _can_be_voice(table: RoutingTable, queue: Queue) -> bool:
    """Some contact on this route is signalled: forced voice, or decided by channel with voice channels."""
    return queue.mode == "voice" or (queue.mode is None and bool(table.voice_channels))


def _example_signal(table: RoutingTable, queue: Queue, intent: str, skill_id: int | None) -> list[str] | None:
    """The signal parameters of one example routing on a route that can be voice, else None.

    What differs from one routing to the next (routing id, contact id; the intent, on the fallback)
    is shown as ``<routing id>``, ``<contact id>``, ``<intent>``.
    """
    if not _can_be_voice(table, queue):
        return None
    values = signal_values(
        skill_id=skill_id if skill_id is not None else "<skill id>",
        queue=queue.label,
        intent="<intent>" if intent == FALLBACK_ROUTE else intent,
        routing_id="<routing id>",
        contact_id="<contact id>",
    )
    return render_signal(table.signal_template(queue), values)


def _media_mismatch(table: RoutingTable, queue: Queue, found: _Found) -> str | None:
    """Why the skill's media type does not fit the contacts the route sends to it, or None.

    A voice contact is reskilled by the Studio script, which needs a phone skill; a digital contact
    is moved with the DFO routing-queue PUT, which needs a digital skill. A route decided by channel
    sends both kinds to one skill, which fits only one of them (unless no voice channel is set).
    """
    voice = _is_voice_skill(found)
    if voice is None:
        return None  # not looked up, or the skills list did not say
    skill = f"skill {found.skill_id}, media type {media_label(found.media_type_id, found.media_type_name)}"
    if queue.mode == "voice" and not voice:
        return f"voice route to {skill}: the Studio script's Reskill needs a Phone Call skill"
    if queue.mode == "digital" and voice:
        return f"digital route to {skill}: the DFO routing-queue PUT needs a digital skill (chat, email, …)"
    if queue.mode is None and not voice and table.voice_channels:
        return (
            f"a voice contact here would be signalled to reskill to {skill}, but Reskill needs a Phone "
            "Call skill; if no voice bot sends this intent, set mode: digital"
        )
    if queue.mode is None and voice:
        return (
            f"a digital contact here would be put into {skill}, but the DFO routing-queue PUT needs a "
            "digital skill; if only voice bots send this intent, set mode: voice"
        )
    return None


def media_label(media_type_id: int | None, media_type_name: str | None) -> str:
    """A skill's media type for people: ``Phone Call (4)``, ``Chat``, ``(7)``, or ``-`` when unknown."""
    if media_type_id is None:
        return media_type_name or "-"
    return f"{media_type_name} ({media_type_id})" if media_type_name else f"({media_type_id})"


def _is_voice_skill(found: _Found) -> bool | None:
    """True for CXone's Phone Call media type (mediaTypeId 4), False for any other, None when unknown."""
    if found.media_type_id is not None:
        return found.media_type_id == PHONE_CALL_MEDIA_TYPE_ID
    if found.media_type_name is not None:
        return found.media_type_name.strip().lower() in ("phone call", "voice")
    return None


class _DoctorClient(CXoneClient):
    """A CXone client that uses a token of its own, never the workers' shared token cache."""

    _own_token: Token | None = None

    def fresh_token(self) -> Token:
        """A new token from CXone (discovery, token request, API host) with the configured credentials."""
        value, _ttl = self._fetch_token()
        self._own_token = Token.from_json(value)
        return self._own_token

    def token(self) -> Token:
        return self._own_token or self.fresh_token()

    def drop_token(self, token: Token) -> None:
        self._own_token = None


# ------------------------------------------------------------------------------ output


def render(report: Report, strict: bool = False) -> str:
    """The report as two plain-text tables and a verdict line."""
    lines = ["cognigy-cxone-router doctor", ""]
    lines += _table(
        ["CHECK", "RESULT", "DETAIL"], [[c.name, _shown(c.status), c.detail] for c in report.checks]
    )
    if report.routes:
        lines.append("")
        rows, notes = [], []
        for r in report.routes:
            rows.append(
                [r.intent, r.queue, str(r.skill_id or "-"), r.media_type, _shown(r.status), r.lookup, r.mode]
            )
            below = [f"-> {r.detail}"] if r.status in (FAIL, WARN) else []
            if r.signal_params is not None:
                below.append("signal: " + ", ".join(f"p{n}={v}" for n, v in enumerate(r.signal_params, 1)))
            notes.append(below)
        lines += _table(
            ["INTENT", "QUEUE", "SKILL ID", "MEDIA TYPE", "RESULT", "LOOKUP", "MODE"], rows, notes=notes
        )
    if report.queues:
        lines.append("")
        rows, notes = [], []
        for q in report.queues:
            rows.append(
                [
                    q.queue,
                    str(q.skill_id or "-"),
                    _live(q.agents_available),
                    _live(q.queue_count),
                    _live(q.longest_wait_seconds, "s"),
                    _shown(q.status),
                ]
            )
            below = [f"-> {q.detail}"] if q.status in (FAIL, WARN) else []
            notes.append(below + [f"overflow {rule}" for rule in q.overflow])
        lines += _table(
            ["QUEUE", "SKILL ID", "AGENTS AVAILABLE", "QUEUE COUNT", "LONGEST WAIT", "RESULT"],
            rows,
            notes=notes,
        )
    if report.activity is not None:
        named = f" '{report.activity['queue']}'" if report.activity.get("queue") else ""
        lines += [
            "",
            f"skill activity of skill {report.activity['skillId']}{named} as CXone returned it "
            "(compare the names with the CXone supervisor view):",
        ]
        lines += ["  " + line for line in json.dumps(report.activity["fields"], indent=2).splitlines()]
    if report.contact is not None and report.contact.returned is not None:
        lines += [
            "",
            f"contact {report.contact.contact_id} as CXone returned it (ids, status, queue and times only):",
        ]
        lines += ["  " + line for line in json.dumps(report.contact.returned, indent=2).splitlines()]
        if report.contact.omitted:
            lines.append(
                "  left out (customer and agent data, values not shown): " + ", ".join(report.contact.omitted)
            )
        lines += _read_back_lines(report.contact)
    problems, warnings = report.statuses().count(FAIL), report.statuses().count(WARN)
    verdict = "NOT READY" if report.problems(strict) else "ready for traffic"
    lines += [
        "",
        f"{verdict}: {problems} problem(s), {warnings} warning(s)"
        f"{' (--strict: warnings count)' if strict and warnings else ''}",
    ]
    return "\n".join(lines) + "\n"


def _read_back_lines(contact: ContactCheck) -> list[str]:
    """What a routing reads back from this contact, by field and setting (see shared/routing/read_back.py)."""
    if not contact.read_back:
        return []
    rows = [
        [
            read["reads"],
            f"{read['setting']}={read['field']}",
            ("-" if read["value"] is None else str(read["value"])) if read["present"] else "(no such field)",
        ]
        for read in contact.read_back
    ]
    return [
        "",
        "what a routing reads back from it before repeating a call whose outcome is unknown:",
        *("  " + line for line in _table(["READS", "FIELD (SETTING=NAME)", "VALUE"], rows)),
        f"  so, with status {contact.read_back[0]['value'] or '?'}: {contact.read_back_meaning}",
    ]


def _table(header: list[str], rows: list[list[str]], notes: list[list[str]] | None = None) -> list[str]:
    """Left-aligned columns; multi-line cells continue under their column; ``notes`` go below a row."""
    widths = [
        max(len(header[i]), *(len(_first_line(row[i])) for row in rows)) if rows else len(header[i])
        for i in range(len(header))
    ]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for n, row in enumerate(rows):
        first, *rest = row[-1].split("\n") or [""]
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)] + [first]
        out.append("  ".join(cells).rstrip())
        out += [" " * indent + more.strip() for more in rest]
        out += ["    " + note for note in (notes[n] if notes else [])]
    return out


def _live(value: float | None, unit: str = "") -> str:
    """A live value for the table: the number, or ``?`` when CXone did not give it."""
    if value is None:
        return "?"
    return f"{value:g}{unit}"


def _shown(status: str) -> str:
    return status.upper() if status == FAIL else status


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def safe_url(url: str) -> str:
    """``url`` without its password (``redis://:***@host:6379/0``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class Redactor:
    """Blanks every configured secret value out of text about to be printed."""

    secrets: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Redactor:
        """Every secret value the environment configures, including each of a comma-separated list."""
        values: list[str] = []
        for name in SECRET_SETTINGS:
            raw = environ.get(name) or ""
            values += [raw.strip()] + [part.strip() for part in raw.split(",")]
            if name == "FLOWER_BASIC_AUTH" and ":" in raw:
                values.append(raw.split(":", 1)[1].strip())
        password = urlsplit(environ.get("REDIS_URL") or "").password
        if password:
            values.append(password)
        # Longest first, so a secret that contains another is blanked whole; very short values
        # are left alone (blanking "a" would garble the report and such a secret protects nothing).
        return cls(tuple(sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)))

    def scrub(self, text: str) -> str:
        """``text`` with each secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text
