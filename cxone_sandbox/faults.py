"""Fault knobs operators and tests turn at run time, and validation of updates to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


def _string_list(value: Any) -> frozenset[str]:
    """Validator for a list of strings."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of strings")
    return frozenset(value)


# Every key POST /sandbox/faults accepts. outage_seconds, revoke_tokens and release_held are
# actions, not state.
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
}
KNOB_NAMES = tuple(_VALIDATORS)


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
