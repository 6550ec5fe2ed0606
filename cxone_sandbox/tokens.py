"""Issued OAuth tokens: JWT-shaped access tokens that really expire and can be revoked."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
CLUSTER = "B32"
AREA = "na1"

# Refresh tokens outlive access tokens; a day is plenty for any test or benchmark run.
REFRESH_TOKEN_TTL_SECONDS = 86400
# Beyond this many remembered tokens, forget the long-expired ones (clients that never cache).
_PRUNE_THRESHOLD = 10000


def _base64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(claims: dict[str, Any]) -> str:
    """A JWT with the given claims and a random signature: decodable, never verifiable."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "cxone-sandbox"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(64)]
    return ".".join(_base64url(part) for part in parts)


@dataclass
class _IssuedToken:
    """What the sandbox remembers about one token."""

    subject: str
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class TokenIdentity:
    """The tenant facts stamped into every token."""

    issuer: str
    tenant_id: str
    business_unit_id: int
    client_id: str


class TokenRegistry:
    """Access and refresh tokens issued so far. Not thread-safe: the state lock guards it."""

    def __init__(self) -> None:
        self._access: dict[str, _IssuedToken] = {}
        self._refresh: dict[str, _IssuedToken] = {}

    def issue(self, identity: TokenIdentity, subject: str, ttl: int, now: float) -> dict[str, Any]:
        """Mint a token response body (access, refresh and id token) valid for ttl seconds."""
        self._prune(now)
        issued_at = int(now)
        claims = {
            "iss": identity.issuer,
            "sub": subject,
            "aud": "cxone",
            "iat": issued_at,
            "exp": issued_at + ttl,
            "jti": str(uuid.uuid4()),
            "tenantId": identity.tenant_id,
            "icBUId": identity.business_unit_id,
            "icClusterId": CLUSTER,
            "area": AREA,
        }
        access_token = mint_jwt(claims)
        id_token = mint_jwt(
            {
                "iss": identity.issuer,
                "sub": subject,
                "aud": identity.client_id,
                "iat": issued_at,
                "exp": issued_at + ttl,
                "tenantId": identity.tenant_id,
            }
        )
        refresh_token = secrets.token_urlsafe(32)
        self._access[access_token] = _IssuedToken(subject, now + ttl)
        self._refresh[refresh_token] = _IssuedToken(subject, now + REFRESH_TOKEN_TTL_SECONDS)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh_token,
            "id_token": id_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
        }

    def problem_with(self, access_token: str | None, now: float) -> str | None:
        """Why this bearer token is refused, or None when it is valid."""
        if not access_token:
            return "missing bearer token"
        issued = self._access.get(access_token)
        if issued is None:
            return "unknown token"
        if issued.revoked:
            return "token has been revoked"
        if now >= issued.expires_at:
            return "token has expired"
        return None

    def redeem_refresh_token(self, refresh_token: str, now: float) -> str | None:
        """The subject of a usable refresh token (consuming it), or None when it is not usable."""
        issued = self._refresh.pop(refresh_token, None)
        if issued is None or issued.revoked or now >= issued.expires_at:
            return None
        return issued.subject

    def revoke_all(self) -> None:
        """Invalidate every token issued so far; tokens issued later are unaffected."""
        for issued in (*self._access.values(), *self._refresh.values()):
            issued.revoked = True

    def _prune(self, now: float) -> None:
        """Drop tokens that expired over an hour ago, once there are many."""
        for store in (self._access, self._refresh):
            if len(store) > _PRUNE_THRESHOLD:
                for token in [t for t, issued in store.items() if issued.expires_at < now - 3600]:
                    del store[token]
