"""Fault knobs operators and tests turn at run time, and validation of updates to them.

Each knob makes the sandbox answer as CXone does in some situation (:data:`KNOB_HELP` says which);
``GET /sandbox`` lists them with their current values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class FaultKnobs:
    """Current misbehaviour of the sandbox; the defaults make it a well-behaved CXone."""

    token_ttl_seconds: int
    latency_ms: float = 0
    rate_limit_per_minute: int | None = None
    retry_after: bool = True
    error_rate: float = 0.0
    seed: int = 0
    outage_until: float | None = None  # wall-clock time.time(); None when no outage
    closed_contacts: frozenset[str] = field(default_factory=frozenset)
    #: How many of the next contact calls (routing PUT, signal) to hold until released: a CXone
    #: that is slow on one call, at a moment the test chooses.
    hold_calls: int = 0
    # What a 429 says in Retry-After: None computes it from the rate window (throttle_next: 1 s);
    # an integer or any text (an HTTP date, garbage) is sent as it is.
    retry_after_seconds: int | str | None = None
    throttle_next: int = 0
    redirect_token_to: str | None = None
    redirect_api_to: str | None = None
    discovery_token_endpoint: str | None = None
    discovery_api_endpoint: str | None = None
    # A registered application gets client_credentials only when NICE enabled it for it.
    client_credentials_grant: bool = False
    invalid_client: bool = False
    invalid_grant: bool = False
    #: Until then (time.time()), the skill activity endpoint alone answers 503; None: it answers.
    skill_activity_outage_until: float | None = None
    #: Fields left out of every skill's activity: a tenant that names them otherwise.
    skill_activity_omit_fields: frozenset[str] = field(default_factory=frozenset)
    #: How many of the next contact calls to carry out and record, and *then* hold the answer of
    #: until released: CXone acted, and the caller has not heard it yet (a window the caller may
    #: die in, or lose Redis in).
    hold_answers: int = 0


def _number(minimum: float, maximum: float) -> Callable[[Any], float]:
    """Validator for a JSON number in [minimum, maximum]."""

    def validate(value: Any) -> float:
        # bool is an int subclass in Python, but `true` is not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return validate


def _integer(minimum: int | None) -> Callable[[Any], int]:
    """Validator for a JSON integer, optionally at least minimum."""

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return validate


def _optional_integer(value: Any) -> int | None:
    """Validator for a non-negative integer or null (null meaning unlimited)."""
    return None if value is None else _integer(0)(value)


def _boolean(value: Any) -> bool:
    """Validator for a JSON boolean."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _optional_url(value: Any) -> str | None:
    """Validator for an http(s) URL with a host (any host: the point is to point elsewhere) or null."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or urlsplit(value).scheme not in ("http", "https")
        or not urlsplit(value).netloc
    ):
        raise ValueError("must be an http:// or https:// URL, or null")
    return value.rstrip("/")


def _retry_after_value(value: Any) -> int | str | None:
    """Validator for a Retry-After: seconds (integer >= 0), any non-empty text, or null."""
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    return _integer(0)(value)


def _string_list(value: Any) -> frozenset[str]:
    """Validator for a list of strings."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    return frozenset(value)


# Every key POST /sandbox/faults accepts. outage_seconds, skill_activity_outage_seconds,
# revoke_tokens and release_held are actions, not state.
_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "latency_ms": _number(0, 60000),
    "rate_limit_per_minute": _optional_integer,
    "retry_after": _boolean,
    "error_rate": _number(0, 1),
    "seed": _integer(None),
    "outage_seconds": _number(0, 86400),
    "revoke_tokens": _boolean,
    "token_ttl_seconds": _integer(1),
    "closed_contacts": _string_list,
    "hold_calls": _integer(0),
    "hold_answers": _integer(0),
    "release_held": _boolean,
    "retry_after_seconds": _retry_after_value,
    "throttle_next": _integer(0),
    "redirect_token_to": _optional_url,
    "redirect_api_to": _optional_url,
    "discovery_token_endpoint": _optional_url,
    "discovery_api_endpoint": _optional_url,
    "client_credentials_grant": _boolean,
    "invalid_client": _boolean,
    "invalid_grant": _boolean,
    "skill_activity_outage_seconds": _number(0, 86400),
    "skill_activity_omit_fields": _string_list,
}
KNOB_NAMES = tuple(_VALIDATORS)

#: One line per knob for the help page (GET /sandbox).
KNOB_HELP = {
    "latency_ms": "delay before every API call is answered",
    "rate_limit_per_minute": "API calls accepted per sliding 60 s, 429 beyond (null: no limit)",
    "retry_after": "false: 429s carry no Retry-After header",
    "error_rate": "share of API calls answered 500/502/503 at random",
    "seed": "seed of that randomness (same seed, same sequence)",
    "outage_seconds": "answer 503 to every token and API call for this long",
    "revoke_tokens": "every token issued so far is refused (401)",
    "token_ttl_seconds": "lifetime of the tokens issued from now on",
    "closed_contacts": "contact ids answered 404, as closed or unknown contacts",
    "hold_calls": "hold the next N contact calls (routing PUT, signal) until release_held",
    "hold_answers": "carry out and record the next N contact calls; hold the answers until release_held",
    "release_held": "let every held contact call go on",
    "retry_after_seconds": "what a 429's Retry-After says: seconds or any text (null: the time until a slot)",
    "throttle_next": "answer exactly the next N API calls with 429 (whatever the rate limit)",
    "redirect_token_to": "answer token requests with a 307 to this base URL + the path (null: off)",
    "redirect_api_to": "answer API calls with a 307 to this base URL + the path (null: off)",
    "discovery_token_endpoint": "openid-configuration advertises this token_endpoint (null: our own)",
    "discovery_api_endpoint": "cxone-configuration advertises this api_endpoint (null: our own)",
    "client_credentials_grant": "true: the application may use grant_type=client_credentials "
    "(else 400 unauthorized_client)",
    "invalid_client": "true: every token request is answered 401 invalid_client (client id/secret refused)",
    "invalid_grant": "true: password grants are answered 400 invalid_grant (access key refused)",
    "skill_activity_outage_seconds": "the skill activity endpoint alone answers 503 this long (0 ends it)",
    "skill_activity_omit_fields": "fields left out of every skill's activity (named otherwise by a tenant)",
}


def parse_fault_update(update: Any) -> dict[str, Any]:
    """Validate a whole partial update before any of it is applied; ValueError names the key."""
    if not isinstance(update, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(update) - set(_VALIDATORS))
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}; known: {list(KNOB_NAMES)}")
    parsed = {}
    for name, value in update.items():
        try:
            parsed[name] = _VALIDATORS[name](value)
        except ValueError as error:
            raise ValueError(f"{name} {error}") from None
    return parsed
