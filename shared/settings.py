"""Every setting of the router, read from the environment in exactly one place.

Both the ingress and the workers call :func:`load_settings` once at start-up. A missing or malformed
variable stops start-up with a :class:`SettingsError` that names it, rather than failing later in
the middle of a routing. Tests build settings from a plain dict with :meth:`Settings.from_env`.

Every variable here is documented in ``.env.example`` and the README; keep the three in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

DEFAULT_CXONE_AUTH_URL = "https://cxone.niceincontact.com"


class SettingsError(ValueError):
    """One or more settings are missing or malformed; the message names each of them."""


@dataclass(frozen=True)
class Settings:
    """The router's configuration. Secrets are excluded from ``repr`` so they never reach a log."""

    # repr=False: a Redis URL often carries a password (rediss://:secret@host).
    redis_url: str = field(default="redis://localhost:6379/0", repr=False)
    port: int = 8000

    # Webhook edge
    webhook_api_keys: tuple[str, ...] = field(default=(), repr=False)
    webhook_auth_disabled: bool = False
    # HMAC signatures (optional, see ingress/auth.py): secrets for rotation, and whether to insist.
    webhook_signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    webhook_signature_required: bool = False
    max_body_bytes: int = 64 * 1024
    routes_file: str = "config/routes.example.yaml"

    # CXone
    cxone_auth_url: str = DEFAULT_CXONE_AUTH_URL
    cxone_api_url: str | None = None
    cxone_client_id: str = ""
    cxone_client_secret: str = field(default="", repr=False)
    cxone_access_key_id: str = field(default="", repr=False)
    cxone_access_key_secret: str = field(default="", repr=False)
    cxone_rate_limit_per_minute: int = 100
    cxone_connect_timeout_seconds: float = 3.05
    cxone_read_timeout_seconds: float = 10.0
    cxone_token_refresh_margin_seconds: int = 600
    cxone_skill_cache_ttl_seconds: int = 900

    # Routing lifecycle
    routing_retry_window_seconds: int = 600
    routing_max_countdown_seconds: int = 30
    routing_status_ttl_seconds: int = 7 * 24 * 3600
    dedupe_window_seconds: int = 600

    # Broker
    broker_visibility_timeout_seconds: int = 60
    worker_concurrency: int = 16

    # Observability
    log_level: str = "INFO"
    log_format: str = "json"  # "json": one JSON object per line; "text": for people at a terminal
    metrics_enabled: bool = True  # the ingress serves GET /metrics (no API key)
    worker_metrics_port: int = 9808  # each worker process serves /metrics here; 0: no server
    # gunicorn's processes share their metrics through files here; gunicorn.conf.py makes a
    # private temporary directory when it is unset.
    prometheus_multiproc_dir: str | None = None

    @property
    def cxone_grant_type(self) -> str:
        """``password`` when an API access key is configured (NICE's default), else ``client_credentials``."""
        return "password" if self.cxone_access_key_id else "client_credentials"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise :class:`SettingsError` naming every bad one."""
        reader = _Reader(environ)
        defaults = cls()
        settings = cls(
            redis_url=reader.url("REDIS_URL", defaults.redis_url, schemes=("redis", "rediss", "unix")),
            port=reader.integer("PORT", defaults.port, minimum=1, maximum=65535),
            webhook_api_keys=reader.csv("WEBHOOK_API_KEYS"),
            webhook_auth_disabled=reader.boolean("WEBHOOK_AUTH_DISABLED", False),
            webhook_signing_secrets=reader.csv("WEBHOOK_SIGNING_SECRETS"),
            webhook_signature_required=reader.boolean("WEBHOOK_SIGNATURE_REQUIRED", False),
            max_body_bytes=reader.integer("WEBHOOK_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1024),
            routes_file=reader.text("ROUTES_FILE", defaults.routes_file),
            cxone_auth_url=reader.url("CXONE_AUTH_URL", defaults.cxone_auth_url),
            cxone_api_url=reader.url("CXONE_API_URL", None),
            cxone_client_id=reader.text("CXONE_CLIENT_ID", ""),
            cxone_client_secret=reader.text("CXONE_CLIENT_SECRET", ""),
            cxone_access_key_id=reader.text("CXONE_ACCESS_KEY_ID", ""),
            cxone_access_key_secret=reader.text("CXONE_ACCESS_KEY_SECRET", ""),
            cxone_rate_limit_per_minute=reader.integer(
                "CXONE_RATE_LIMIT_PER_MINUTE", defaults.cxone_rate_limit_per_minute, minimum=1
            ),
            cxone_connect_timeout_seconds=reader.number(
                "CXONE_CONNECT_TIMEOUT_SECONDS", defaults.cxone_connect_timeout_seconds, minimum=0.1
            ),
            cxone_read_timeout_seconds=reader.number(
                "CXONE_READ_TIMEOUT_SECONDS", defaults.cxone_read_timeout_seconds, minimum=0.1
            ),
            cxone_token_refresh_margin_seconds=reader.integer(
                "CXONE_TOKEN_REFRESH_MARGIN_SECONDS",
                defaults.cxone_token_refresh_margin_seconds,
                minimum=0,
            ),
            cxone_skill_cache_ttl_seconds=reader.integer(
                "CXONE_SKILL_CACHE_TTL_SECONDS", defaults.cxone_skill_cache_ttl_seconds, minimum=1
            ),
            routing_retry_window_seconds=reader.integer(
                "ROUTING_RETRY_WINDOW_SECONDS", defaults.routing_retry_window_seconds, minimum=1
            ),
            routing_max_countdown_seconds=reader.integer(
                "ROUTING_MAX_COUNTDOWN_SECONDS", defaults.routing_max_countdown_seconds, minimum=1
            ),
            routing_status_ttl_seconds=reader.integer(
                "ROUTING_STATUS_TTL_SECONDS", defaults.routing_status_ttl_seconds, minimum=60
            ),
            dedupe_window_seconds=reader.integer(
                "DEDUPE_WINDOW_SECONDS", defaults.dedupe_window_seconds, minimum=0
            ),
            broker_visibility_timeout_seconds=reader.integer(
                "BROKER_VISIBILITY_TIMEOUT_SECONDS",
                defaults.broker_visibility_timeout_seconds,
                minimum=10,
            ),
            worker_concurrency=reader.integer(
                "WORKER_CONCURRENCY", defaults.worker_concurrency, minimum=1, maximum=512
            ),
            log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True),
            log_format=reader.choice("LOG_FORMAT", defaults.log_format, ("json", "text"), lower=True),
            metrics_enabled=reader.boolean("METRICS_ENABLED", defaults.metrics_enabled),
            worker_metrics_port=reader.integer(
                "WORKER_METRICS_PORT", defaults.worker_metrics_port, minimum=0, maximum=65535
            ),
            prometheus_multiproc_dir=reader.text("PROMETHEUS_MULTIPROC_DIR", "") or None,
        )
        reader.check_relations(settings)
        reader.raise_if_errors()
        return settings

    def require_webhook_auth(self) -> None:
        """Refuse to serve webhooks with no keys unless the operator explicitly turned auth off."""
        if not self.webhook_api_keys and not self.webhook_auth_disabled:
            raise SettingsError(
                "WEBHOOK_API_KEYS is empty: set one or more comma-separated keys, or set "
                "WEBHOOK_AUTH_DISABLED=true for local use only"
            )

    def require_cxone_credentials(self) -> None:
        """Workers need client credentials (and usually an access key pair) to obtain a token."""
        missing = [
            name
            for name, value in (
                ("CXONE_CLIENT_ID", self.cxone_client_id),
                ("CXONE_CLIENT_SECRET", self.cxone_client_secret),
            )
            if not value
        ]
        if bool(self.cxone_access_key_id) != bool(self.cxone_access_key_secret):
            missing.append("CXONE_ACCESS_KEY_SECRET" if self.cxone_access_key_id else "CXONE_ACCESS_KEY_ID")
        if missing:
            raise SettingsError("missing CXone credentials: " + ", ".join(missing))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``os.environ`` (or the mapping given)."""
    return Settings.from_env(os.environ if environ is None else environ)


class _Reader:
    """Parses environment values and collects every problem before reporting them together."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ
        self.errors: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: Any, convert: Callable[[str], Any], expected: str) -> Any:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return convert(raw)
        except (TypeError, ValueError):
            self.errors.append(f"{name}={raw!r} is not {expected}")
            return default

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def csv(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._parse(name, default, int, "an integer")
        self._check_range(name, value, minimum, maximum)
        return value

    def number(self, name: str, default: float, minimum: float | None = None) -> float:
        value = self._parse(name, default, float, "a number")
        self._check_range(name, value, minimum, None)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        truthy, falsy = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

        def convert(raw: str) -> bool:
            if raw.lower() in truthy:
                return True
            if raw.lower() in falsy:
                return False
            raise ValueError(raw)

        return self._parse(name, default, convert, "true or false")

    def choice(
        self, name: str, default: str, options: tuple[str, ...], upper: bool = False, lower: bool = False
    ) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower() if lower else raw
        if value not in options:
            self.errors.append(f"{name}={raw!r} must be one of {', '.join(options)}")
            return default
        return value

    def url(self, name: str, default: str | None, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return default
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
            self.errors.append(f"{name}={raw!r} is not a URL starting with {' or '.join(schemes)}://")
            return default
        return raw.rstrip("/")

    def _check_range(self, name: str, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            self.errors.append(f"{name}={value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            self.errors.append(f"{name}={value} must be at most {maximum}")

    def check_relations(self, settings: Settings) -> None:
        if settings.webhook_signature_required and not settings.webhook_signing_secrets:
            self.errors.append("WEBHOOK_SIGNATURE_REQUIRED=true needs WEBHOOK_SIGNING_SECRETS")
        # A countdown longer than the visibility timeout makes Redis hand the same message to a
        # second worker while the first still holds it: a doubled routing.
        if settings.routing_max_countdown_seconds * 2 > settings.broker_visibility_timeout_seconds:
            self.errors.append(
                f"ROUTING_MAX_COUNTDOWN_SECONDS={settings.routing_max_countdown_seconds} must be at "
                f"most half of BROKER_VISIBILITY_TIMEOUT_SECONDS="
                f"{settings.broker_visibility_timeout_seconds}"
            )

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SettingsError("invalid settings: " + "; ".join(self.errors))
