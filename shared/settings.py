"""Every setting of the router, read from the environment in exactly one place.

Both the ingress and the workers call :func:`load_settings` once at start-up. A missing or malformed
variable stops start-up with a :class:`SettingsError` that names it, rather than failing later in
the middle of a routing. Tests build settings from a plain dict with :meth:`Settings.from_env`.

Each setting is declared once, as a field of :class:`Settings` made by :func:`setting`: the
attribute, its type, its environment variable, the parser that checks the value, and its default.
``.env.example`` and the README's settings table list the same variables (a test compares them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from shared.cxone import trust
from shared.routing.contact_id import DEFAULT_CONTACT_ID_PATTERN, pattern_problem

DEFAULT_CXONE_AUTH_URL = "https://cxone.niceincontact.com"


class SettingsError(ValueError):
    """One or more settings are missing or malformed; the message names each of them."""


class InvalidValue(ValueError):
    """A parser refuses a value; its message completes ``NAME=`` (e.g. ``'abc' is not an integer``)."""


#: Turns a variable's text (stripped, never empty) into the setting's value, or raises InvalidValue.
Parser = Callable[[str], Any]


# ----------------------------------------------------------------------------------- parsers


def text(raw: str) -> str:
    """Any text, as given."""
    return raw


def comma_separated(raw: str) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")``: items trimmed, empty ones dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def boolean(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, in any case."""
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidValue(f"{raw!r} is not true or false")


def integer(raw: str) -> int:
    """A whole number."""
    try:
        return int(raw)
    except ValueError:
        raise InvalidValue(f"{raw!r} is not an integer") from None


def number(raw: str) -> float:
    """A decimal number."""
    try:
        return float(raw)
    except ValueError:
        raise InvalidValue(f"{raw!r} is not a number") from None


def choice(options: tuple[str, ...], normalise: Callable[[str], str]) -> Parser:
    """One of ``options``, compared after ``normalise`` (``str.upper``, ``str.lower``)."""

    def parse(raw: str) -> str:
        value = normalise(raw)
        if value not in options:
            raise InvalidValue(f"{raw!r} must be one of {', '.join(options)}")
        return value

    return parse


def host_list(raw: str) -> tuple[str, ...]:
    """Comma-separated host entries (see :mod:`shared.cxone.trust`), lower-cased."""
    try:
        return tuple(trust.normalise_entry(entry) for entry in comma_separated(raw))
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None


def url(*schemes: str) -> Parser:
    """A URL with one of ``schemes`` (default http, https), without a trailing slash."""
    schemes = schemes or ("http", "https")

    def parse(raw: str) -> str:
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
            raise InvalidValue(f"{raw!r} is not a URL starting with {' or '.join(schemes)}://")
        return raw.rstrip("/")

    return parse


def host_port_list(raw: str) -> tuple[str, ...]:
    """Comma-separated ``host:port`` entries (``[::1]:26379`` for IPv6)."""
    entries = comma_separated(raw)
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidValue(f"{entry!r} is not host:port")
    return entries


def contact_id_regex(raw: str) -> str:
    """A regular expression for CXone contact ids that refuses ids able to escape a URL path."""
    problem = pattern_problem(raw)
    if problem is not None:
        raise InvalidValue(problem)
    return raw


def field_path(raw: str) -> str:
    """A JSON field name, or a dotted path into nested objects (``routingQueue.id``)."""
    if not all(part.strip() for part in raw.split(".")):
        raise InvalidValue(f"{raw!r} is not a field name or a dotted path of field names")
    return raw


# ------------------------------------------------------------------------- declaring settings


@dataclass(frozen=True)
class EnvironmentVariable:
    """Where a setting comes from: its variable, the parser, and the names it had before a rename."""

    name: str
    parse: Parser
    #: Bounds of a number, checked after parsing; a value outside them is reported but kept, so
    #: the checks of how settings relate to each other still see what the operator set.
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False
    #: Still read when ``name`` is unset, so a deployment configured before a rename keeps working.
    old_names: tuple[str, ...] = ()

    def lookup(self, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """``(the name found, its stripped value)``, trying ``name`` then each old name; blank is unset."""
        for name in (self.name, *self.old_names):
            value = (environ.get(name) or "").strip()
            if value:
                return name, value
        return None

    def out_of_bounds(self, value: float) -> str | None:
        """What is wrong with ``value`` (``"must be at least 1"``), or None when it is within bounds."""
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum}"
        return None


_ENV = "environment_variable"


def setting(
    name: str,
    default: Any,
    parse: Parser = text,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    secret: bool = False,
    old_names: tuple[str, ...] = (),
) -> Any:
    """A settings field read from the variable ``name`` by ``parse``; ``default`` when unset or blank.

    ``minimum``/``maximum`` bound a number; ``secret=True`` keeps the value out of ``repr`` (and so
    out of every log line); ``old_names`` are read when ``name`` is unset (a renamed variable).
    """
    variable = EnvironmentVariable(name, parse, minimum, maximum, secret, old_names)
    return field(default=default, repr=not secret, metadata={_ENV: variable})


def environment_variables(settings_class: type) -> list[EnvironmentVariable]:
    """The variables a settings dataclass reads, in the order its fields are declared."""
    return [f.metadata[_ENV] for f in fields(settings_class)]


def parse_environment(settings_class: type, environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The values found in ``environ`` for the fields of ``settings_class``, and one problem per
    malformed variable (``NAME='abc' is not an integer``, ``NAME=0 must be at least 1``).

    Unset and unparseable values are left out, so the field's default stands in for them.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(settings_class):
        variable: EnvironmentVariable = f.metadata[_ENV]
        found = variable.lookup(environ)
        if found is None:
            continue
        name, raw = found
        try:
            value = variable.parse(raw)
        except InvalidValue as exc:
            problems.append(f"{name}={exc}")
            continue
        values[f.name] = value
        bounds_problem = variable.out_of_bounds(value) if isinstance(value, int | float) else None
        if bounds_problem is not None:
            problems.append(f"{name}={value} {bounds_problem}")
    return values, problems


# -------------------------------------------------------------------------------- the settings

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    """The router's configuration. Secrets are excluded from ``repr`` so they never reach a log."""

    # Secret: a Redis URL often carries a password (rediss://:secret@host).
    redis_url: str = setting(
        "REDIS_URL", "redis://localhost:6379/0", url("redis", "rediss", "unix"), secret=True
    )
    # Sentinel (shared/redis_connection.py): when set, every client finds the primary through
    # these sentinels; REDIS_URL then only gives the database number and the password.
    redis_sentinels: tuple[str, ...] = setting("REDIS_SENTINELS", (), host_port_list)
    redis_sentinel_master: str = setting("REDIS_SENTINEL_MASTER", "")
    redis_sentinel_password: str = setting("REDIS_SENTINEL_PASSWORD", "", secret=True)
    # TLS for a rediss:// URL: the CA bundle (else the system's) and how strictly to verify.
    redis_ssl_ca_certs: str | None = setting("REDIS_SSL_CA_CERTS", None)
    redis_ssl_cert_reqs: str = setting(
        "REDIS_SSL_CERT_REQS", "required", choice(("required", "optional", "none"), str.lower)
    )
    # The ingress answers 202 only once this many replicas hold the routing (Redis WAIT); 0:
    # asynchronous replication, the last writes before a primary's crash can be lost.
    redis_min_replicas_ack: int = setting("REDIS_MIN_REPLICAS_ACK", 0, integer, minimum=0)
    redis_replica_ack_timeout_seconds: float = setting(
        "REDIS_REPLICA_ACK_TIMEOUT_SECONDS", 1.0, number, minimum=0.01, maximum=5
    )
    port: int = setting("PORT", 8000, integer, minimum=1, maximum=65535)

    # Webhook edge
    webhook_api_keys: tuple[str, ...] = setting("WEBHOOK_API_KEYS", (), comma_separated, secret=True)
    webhook_auth_disabled: bool = setting("WEBHOOK_AUTH_DISABLED", False, boolean)
    # HMAC signatures (optional, see ingress/auth.py): secrets for rotation, and whether to insist.
    webhook_signing_secrets: tuple[str, ...] = setting(
        "WEBHOOK_SIGNING_SECRETS", (), comma_separated, secret=True
    )
    webhook_signature_required: bool = setting("WEBHOOK_SIGNATURE_REQUIRED", False, boolean)
    max_body_bytes: int = setting("WEBHOOK_MAX_BODY_BYTES", 64 * 1024, integer, minimum=1024)
    routes_file: str = setting("ROUTES_FILE", "config/routes.example.yaml")
    # The longest a webhook may wait for its routing's outcome (?wait= / Prefer: wait=; more is
    # capped). 7 s fits inside a Cognigy HTTP Request node's 8 s time-out; 0 never waits.
    webhook_max_wait_seconds: float = setting("WEBHOOK_MAX_WAIT_SECONDS", 7.0, number, minimum=0, maximum=7)
    # Which ids are CXone contact ids (a full match, ASCII): others get 400 and are never sent.
    contact_id_pattern: str = setting("CONTACT_ID_PATTERN", DEFAULT_CONTACT_ID_PATTERN, contact_id_regex)

    # CXone
    cxone_auth_url: str = setting("CXONE_AUTH_URL", DEFAULT_CXONE_AUTH_URL, url())
    cxone_api_url: str | None = setting("CXONE_API_URL", None, url())
    cxone_client_id: str = setting("CXONE_CLIENT_ID", "")
    cxone_client_secret: str = setting("CXONE_CLIENT_SECRET", "", secret=True)
    cxone_access_key_id: str = setting("CXONE_ACCESS_KEY_ID", "", secret=True)
    cxone_access_key_secret: str = setting("CXONE_ACCESS_KEY_SECRET", "", secret=True)
    # NICE's default for back-end integrations is the password grant (the API user's access key);
    # client_credentials only for applications registered for it. Never guessed from what is set.
    cxone_grant_type: str = setting(
        "CXONE_GRANT_TYPE", "password", choice(("password", "client_credentials"), str.lower)
    )
    # Where the access key and tokens may be sent: https on these domains (and their subdomains),
    # or loopback. Checked at worker start-up and on every discovered endpoint.
    cxone_trusted_hosts: tuple[str, ...] = setting(
        "CXONE_TRUSTED_HOSTS", trust.DEFAULT_TRUSTED_HOSTS, host_list
    )
    cxone_rate_limit_per_minute: int = setting("CXONE_RATE_LIMIT_PER_MINUTE", 100, integer, minimum=1)
    cxone_connect_timeout_seconds: float = setting("CXONE_CONNECT_TIMEOUT_SECONDS", 3.05, number, minimum=0.1)
    cxone_read_timeout_seconds: float = setting("CXONE_READ_TIMEOUT_SECONDS", 10.0, number, minimum=0.1)
    cxone_token_refresh_margin_seconds: int = setting(
        "CXONE_TOKEN_REFRESH_MARGIN_SECONDS", 600, integer, minimum=0
    )
    cxone_skill_cache_ttl_seconds: int = setting("CXONE_SKILL_CACHE_TTL_SECONDS", 900, integer, minimum=1)
    # How often one worker (for all) asks CXone for every skill's live state, for overflow rules;
    # a copy older than three times this is not used (the route's own queue is).
    cxone_activity_ttl_seconds: int = setting("CXONE_ACTIVITY_TTL_SECONDS", 5, integer, minimum=1)
    # Where a digital contact read back (GET /dfo/3.0/contacts/{id}) keeps its routing queue, status
    # and assigned agent (shared/cxone/contact.py says which sources these names come from).
    cxone_contact_queue_field: str = setting("CXONE_CONTACT_QUEUE_FIELD", "routingQueueId", field_path)
    cxone_contact_status_field: str = setting("CXONE_CONTACT_STATUS_FIELD", "status", field_path)
    cxone_contact_assignee_field: str = setting(
        "CXONE_CONTACT_ASSIGNEE_FIELD", "inboxAssigneeUser", field_path
    )

    # Routing lifecycle
    routing_retry_window_seconds: int = setting("ROUTING_RETRY_WINDOW_SECONDS", 600, integer, minimum=1)
    routing_max_countdown_seconds: int = setting("ROUTING_MAX_COUNTDOWN_SECONDS", 30, integer, minimum=1)
    routing_status_ttl_seconds: int = setting(
        "ROUTING_STATUS_TTL_SECONDS", 7 * 24 * 3600, integer, minimum=60
    )
    dedupe_window_seconds: int = setting("DEDUPE_WINDOW_SECONDS", 600, integer, minimum=0)
    # A webhook without inputId is a resend only if the contact's latest routing has its intent
    # and arrived within this many seconds (sender retries come within seconds); 0: never.
    dedupe_contact_intent_seconds: int = setting("DEDUPE_CONTACT_INTENT_SECONDS", 60, integer, minimum=0)

    # Broker
    broker_visibility_timeout_seconds: int = setting(
        "BROKER_VISIBILITY_TIMEOUT_SECONDS", 60, integer, minimum=10
    )
    worker_concurrency: int = setting("WORKER_CONCURRENCY", 16, integer, minimum=1, maximum=512)

    # Observability
    log_level: str = setting("LOG_LEVEL", "INFO", choice(_LOG_LEVELS, str.upper))
    # "json": one JSON object per line; "text": for people at a terminal.
    log_format: str = setting("LOG_FORMAT", "json", choice(("json", "text"), str.lower))
    # The ingress serves GET /metrics (no API key).
    metrics_enabled: bool = setting("METRICS_ENABLED", True, boolean)
    # Each worker process serves /metrics here; 0: no server.
    worker_metrics_port: int = setting("WORKER_METRICS_PORT", 9808, integer, minimum=0, maximum=65535)
    # gunicorn's processes share their metrics through files here; gunicorn.conf.py makes a
    # private temporary directory when it is unset.
    prometheus_multiproc_dir: str | None = setting("PROMETHEUS_MULTIPROC_DIR", None)

    # Flower reads FLOWER_BASIC_AUTH (user:password) itself; it is a setting here so the demo
    # password is refused with a real tenant (shared/demo_secrets.py).
    flower_basic_auth: str = setting("FLOWER_BASIC_AUTH", "", secret=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise :class:`SettingsError` naming every bad one."""
        values, problems = parse_environment(cls, environ)
        settings = cls(**values)
        problems += settings._relation_problems()
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return settings

    def require_webhook_auth(self) -> None:
        """Refuse to serve webhooks with no keys unless the operator explicitly turned auth off."""
        if not self.webhook_api_keys and not self.webhook_auth_disabled:
            raise SettingsError(
                "WEBHOOK_API_KEYS is empty: set one or more comma-separated keys, or set "
                "WEBHOOK_AUTH_DISABLED=true for local use only"
            )

    def require_cxone_credentials(self) -> None:
        """Workers need the client credentials and, for the password grant, the access key pair."""
        required = [
            ("CXONE_CLIENT_ID", self.cxone_client_id),
            ("CXONE_CLIENT_SECRET", self.cxone_client_secret),
        ]
        if self.cxone_grant_type == "password":
            required += [
                ("CXONE_ACCESS_KEY_ID", self.cxone_access_key_id),
                ("CXONE_ACCESS_KEY_SECRET", self.cxone_access_key_secret),
            ]
        missing = [name for name, value in required if not value]
        if not missing:
            return
        message = "missing CXone credentials: " + ", ".join(missing)
        if any(name.startswith("CXONE_ACCESS_KEY") for name in missing):
            message += (
                " (CXONE_GRANT_TYPE=password, the default, needs the API user's access key; set "
                "CXONE_GRANT_TYPE=client_credentials only if the application is registered for that grant)"
            )
        raise SettingsError(message)

    def trusted_cxone_hosts(self) -> trust.TrustedHosts:
        """The hosts CXone credentials may go to (CXONE_TRUSTED_HOSTS, plus loopback)."""
        return trust.TrustedHosts.from_entries(self.cxone_trusted_hosts)

    def require_trusted_cxone_urls(self) -> None:
        """Workers send credentials to CXONE_AUTH_URL's token endpoint and CXONE_API_URL: refuse to
        start unless both are https on a trusted host (or loopback)."""
        hosts = self.trusted_cxone_hosts()
        problems = [
            f"{name}={value}: {problem}"
            for name, value in (
                ("CXONE_AUTH_URL", self.cxone_auth_url),
                ("CXONE_API_URL", self.cxone_api_url),
            )
            if value and (problem := hosts.problem_with(value))
        ]
        if problems:
            raise SettingsError("untrusted CXone URL: " + "; ".join(problems))

    def _relation_problems(self) -> list[str]:
        """Settings that are each valid but do not fit together."""
        problems = []
        if self.redis_sentinels and not self.redis_sentinel_master:
            problems.append("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the name the sentinels monitor)")
        if self.webhook_signature_required and not self.webhook_signing_secrets:
            problems.append("WEBHOOK_SIGNATURE_REQUIRED=true needs WEBHOOK_SIGNING_SECRETS")
        # A countdown longer than the visibility timeout makes Redis hand the same message to a
        # second worker while the first still holds it: a doubled routing.
        if self.routing_max_countdown_seconds * 2 > self.broker_visibility_timeout_seconds:
            problems.append(
                f"ROUTING_MAX_COUNTDOWN_SECONDS={self.routing_max_countdown_seconds} must be at "
                f"most half of BROKER_VISIBILITY_TIMEOUT_SECONDS={self.broker_visibility_timeout_seconds}"
            )
        return problems


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``os.environ`` (or the mapping given)."""
    return Settings.from_env(os.environ if environ is None else environ)
