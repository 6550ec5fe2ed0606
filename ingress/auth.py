"""Webhook authentication: the two API-key headers a Cognigy HTTP Request node can send.

``X-API-Key: <key>`` or ``Authorization: ApiKey <key>``, compared in constant time against every
configured key (several keys allow rotation without downtime).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping


def presented_key(headers: Mapping[str, str]) -> str | None:
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
