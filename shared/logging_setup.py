"""Logging for the web and worker processes: one JSON object per line, routing context, no secrets.

- **JSON lines** (``LOG_FORMAT=json``, the default): every record becomes one JSON object with
  ``ts``, ``level``, ``logger``, ``message``, the fields bound with :func:`log_context`, and every
  ``extra={…}`` the call passed (``routing_id``, ``contact_id``, ``intent``, ``skill_id``, …).
  ``LOG_FORMAT=text`` prints the same fields as ``key=value`` after the message, for a terminal.
- **Routing context**: the worker binds ``routing_id``, ``contact_id`` and ``intent`` for the
  duration of a task (:func:`bind_log_context`), so lines logged deeper down (the CXone client, the
  token cache) carry them too without passing them along.
- **Redaction** (:class:`RedactSecrets`, on every handler): configured secret values (webhook keys
  and signing secrets, the CXone client and access key secrets, the Redis password) and anything
  that looks like a bearer token, basic credentials or a JWT become ``***`` before a record is
  written. It is a safety net: the code logs no secrets and no customer text in the first place.

:func:`configure_logging` is called once per process: by ``ingress/wsgi.py`` and by the worker's
``setup_logging`` signal (``worker/observability.py``), and for gunicorn's own loggers by
``gunicorn.conf.py``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from urllib.parse import urlparse

from shared.settings import Settings

REDACTED = "***"
#: Shorter configured values are not redacted: masking every "abc" would mangle the logs, and a
#: secret that short protects nothing anyway.
MIN_SECRET_LENGTH = 4

#: Fields bound for the current task or request (empty outside one).
_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "router_log_context", default=MappingProxyType({})
)

#: Attributes every LogRecord has; anything else on a record came from ``extra={…}``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Extras that only repeat the message: Celery attaches its log arguments as ``data``.
_DUPLICATE_EXTRAS = frozenset({"data"})

_TOKEN_PATTERNS = (
    # Authorization header values: "Bearer eyJ…", "Basic c2FuZGJveC1jbGllbnQ6…"
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"),
    # Anything shaped like a JWT (header.payload.signature), wherever it appears.
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    # access_token=…, "client_secret": "…", password: … in form bodies, JSON or query strings.
    re.compile(
        r"(?i)\b(access_token|refresh_token|id_token|client_secret|password)"
        r"(\"?\s*[:=]\s*\"?)[^\"&\s,;}]+"
    ),
)


# ---------------------------------------------------------------- routing context


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the ``with`` block (this thread or task only)."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


def bind_log_context(**fields: object) -> contextvars.Token:
    """Add ``fields`` to every line logged from now on in this context; undo with the token."""
    return _context.set({**_context.get(), **fields})


def reset_log_context(token: contextvars.Token) -> None:
    """Undo one :func:`bind_log_context`."""
    _context.reset(token)


def current_log_context() -> dict[str, object]:
    """The fields bound right now."""
    return dict(_context.get())


# ---------------------------------------------------------------- redaction


class SecretRedactor:
    """Replaces known secret values and token-shaped strings with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another one is masked whole.
        self.secrets = tuple(sorted(values, key=len, reverse=True))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretRedactor:
        """Every secret ``settings`` holds: webhook keys, signing secrets, CXone secrets, Redis password."""
        secrets = [
            *settings.webhook_api_keys,
            *getattr(settings, "webhook_signing_secrets", ()),
            settings.cxone_client_secret,
            settings.cxone_access_key_secret,
        ]
        try:
            secrets.append(urlparse(settings.redis_url).password or "")
        except ValueError:
            pass
        return cls(secrets)

    def __call__(self, text: str) -> str:
        """``text`` with each configured secret, and anything shaped like a credential, masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(_mask_match, text)
        return text

    def redact_value(self, value: object) -> object:
        """Redact strings, also inside dicts, lists and tuples; other values pass unchanged."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {key: self.redact_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(item) for item in value]
        return value


def _mask_match(match: re.Match) -> str:
    # Keep the label ("Bearer", "password=") so the line still says what was there.
    if match.re is _TOKEN_PATTERNS[0]:
        return f"{match.group(1)} {REDACTED}"
    if match.re is _TOKEN_PATTERNS[2]:
        return f"{match.group(1)}{match.group(2)}{REDACTED}"
    return REDACTED


class RedactSecrets(logging.Filter):
    """Handler filter: renders the message, traceback and extras of a record, then redacts them."""

    def __init__(self, redactor: SecretRedactor):
        super().__init__()
        self.redactor = redactor
        self._exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always keeps it (returns True)."""
        redact = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, redact.redact_value(value))
        return True


# ---------------------------------------------------------------- formatters


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The bound context, then the record's extras (an explicit extra wins over the context)."""
    fields: dict[str, object] = dict(_context.get())
    for name, value in vars(record).items():
        if name not in _RECORD_ATTRIBUTES and name not in _DUPLICATE_EXTRAS:
            fields[name] = value
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """The record, its bound fields and any traceback as one line of JSON."""
        entry: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            entry["service"] = self.service
        for name, value in _fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The classic line with the bound fields appended as ``key=value``."""
        line = super().format(record)
        fields = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        if not fields:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{first} {fields}{newline}{rest}"


def make_formatter(settings: Settings, service: str = "") -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for."""
    return JsonFormatter(service) if settings.log_format == "json" else TextFormatter()


# ---------------------------------------------------------------- configuration


def configure_logging(settings: Settings, service: str, stream=None) -> logging.Handler:
    """Send every record (root and all loggers that propagate) to ``stream`` (stderr), formatted
    as ``LOG_FORMAT`` says, redacted, at ``LOG_LEVEL``. Replaces the root logger's handlers, so
    calling it twice does not double the lines. Returns the handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(settings, service))
    handler.addFilter(RedactSecrets(SecretRedactor.from_settings(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler


def restyle_handlers(loggers: Iterable[logging.Logger], settings: Settings, service: str) -> None:
    """Give the handlers of ``loggers`` (gunicorn's own, which do not propagate) the same format
    and redaction as :func:`configure_logging`."""
    formatter = make_formatter(settings, service)
    redact = RedactSecrets(SecretRedactor.from_settings(settings))
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(redact)
