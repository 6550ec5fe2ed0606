"""Webhook authentication: the API key every sender presents, and optional HMAC signatures.

API key: ``X-API-Key: <key>`` or ``Authorization: ApiKey <key>`` (the two a Cognigy HTTP Request
node can send), compared in constant time against every configured key (several keys allow
rotation without downtime).

Signature (optional, for senders that can sign: a Cognigy Extension or Transformer, or a proxy)::

    X-Signature-Timestamp: 1767225600
    X-Signature: v1=<hex hmac_sha256(secret, "1767225600." + raw body)>

Several ``v1=`` values may be sent, separated by spaces or commas (a sender rotating its secret
signs with both). The timestamp must be within :data:`SIGNATURE_TOLERANCE_SECONDS` of our clock,
either way, which bounds how long a captured request can be replayed; a replay inside that window
is a resend, which the duplicate guard answers with the first routing. The signature is checked on
the raw body bytes, before anything parses them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from werkzeug.datastructures import Headers

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_TOLERANCE_SECONDS = 300
#: More candidate signatures than this is not rotation but someone guessing.
MAX_SIGNATURES = 8
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SEPARATORS = re.compile(r"[\s,]+")


def presented_key(headers: Headers | Mapping[str, str]) -> str | None:
    """The key the sender presented, from either header, or None."""
    key = headers.get("X-API-Key")
    if key:
        return key.strip()
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "apikey" and value.strip():
        return value.strip()
    return None


def is_valid_key(presented: str | None, keys: Iterable[str]) -> bool:
    """True when ``presented`` equals one of ``keys``; compares against all of them, in constant time."""
    if not presented:
        return False
    candidate = presented.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return matched


# ------------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class SignatureProblem:
    """Why a request's signature is refused: ``reason`` is a stable name, ``message`` says it to people."""

    reason: str  # "signature_missing" or "signature_invalid"
    message: str


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds): ``v1=<hex>``."""
    return "v1=" + _digest(secret, str(timestamp), body)


def signature_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Both headers a signing sender adds (used by tests and tools; the README shows the same)."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def check_signature(
    headers: Headers | Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    required: bool,
    now: float | None = None,
) -> SignatureProblem | None:
    """None when the request may pass; else the problem (answered 401).

    Without configured ``secrets`` nothing is checked. With them, a request that carries either
    signature header must verify; one that carries neither passes unless ``required``.
    """
    if not secrets:
        return None
    raw_signature = headers.get(SIGNATURE_HEADER)
    raw_timestamp = headers.get(TIMESTAMP_HEADER)
    if raw_signature is None and raw_timestamp is None:  # present but empty counts as present
        if required:
            return SignatureProblem(
                "signature_missing",
                f"missing webhook signature: send '{TIMESTAMP_HEADER}' and '{SIGNATURE_HEADER}'",
            )
        return None
    raw_signature, raw_timestamp = (raw_signature or "").strip(), (raw_timestamp or "").strip()
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        return _invalid(f"'{TIMESTAMP_HEADER}' must be the signing time in Unix seconds")
    skew = int(raw_timestamp) - (time.time() if now is None else now)
    if abs(skew) > SIGNATURE_TOLERANCE_SECONDS:
        return _invalid(
            f"'{TIMESTAMP_HEADER}' is {abs(skew):.0f}s in the "
            f"{'future' if skew > 0 else 'past'}; the tolerance is "
            f"{SIGNATURE_TOLERANCE_SECONDS}s (check the sender's clock)"
        )
    candidates = [part[3:].lower() for part in _SEPARATORS.split(raw_signature) if part[:3].lower() == "v1="]
    if not candidates:
        return _invalid(f"'{SIGNATURE_HEADER}' has no 'v1=<hex>' value")
    if len(candidates) > MAX_SIGNATURES:
        return _invalid(f"'{SIGNATURE_HEADER}' has more than {MAX_SIGNATURES} signatures")
    matched = False
    for secret in secrets:  # every pair is compared: the time taken does not tell which matched
        expected = _digest(secret, raw_timestamp, body).encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        return _invalid("no signature matches the body and timestamp with any configured secret")
    return None


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()


def _invalid(detail: str) -> SignatureProblem:
    return SignatureProblem("signature_invalid", f"invalid webhook signature: {detail}")
