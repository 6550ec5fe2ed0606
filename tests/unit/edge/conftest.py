"""Fixtures for the webhook edge: an ingress with fake Redis and a recording ``send_task``,
built with whatever edge settings a test needs (signing secrets, required signatures)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ingress.auth import signature_headers
from shared.settings import Settings
from tests.support.ingress import WEBHOOK_URL, IngressUnderTest, ingress_on_fakes

API_KEY = "edge-test-key-0123456789"
SECRETS = ("whsec-current-abcdefghijkl", "whsec-next-mnopqrstuvwx")
MAX_BODY_BYTES = 64 * 1024

#: Without a fallback, unroutable webhooks are answered 422.
ROUTES_NO_FALLBACK_YAML = """
routes:
  sales_inquiry: Sales Support
"""

ROUTES_YAML = """
min_score: 0.5
fallback: General Inquiry
routes:
  sales_inquiry: Sales Support
  claims: {queue: Claims, mode: voice}
  vip_callback: {skill_id: 1200042}
"""


class Edge(IngressUnderTest):
    """One ingress under test and what it touched, posting webhooks with the edge's API key."""

    def post(
        self,
        body: object,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        sign_with: str | None = None,
        url: str = "",
    ):
        """POST ``body`` (dict/list, or raw str/bytes) with the API key; sign it if asked. ``url``
        is appended to the webhook's path (a query string)."""
        data = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        all_headers = {"X-API-Key": API_KEY, **(headers or {})}
        if sign_with is not None:
            all_headers.update(signature_headers(sign_with, data))
        return self.client.post(WEBHOOK_URL + url, data=data, content_type=content_type, headers=all_headers)


@pytest.fixture
def make_edge() -> Callable[..., Edge]:
    """Build an ingress with ``Settings`` overrides, e.g. ``make_edge(webhook_signing_secrets=…)``,
    and optionally another routing table (``routes_yaml``)."""

    def make(routes_yaml: str = ROUTES_YAML, **overrides) -> Edge:
        settings = Settings(
            **{
                "webhook_api_keys": (API_KEY,),
                "max_body_bytes": MAX_BODY_BYTES,
                "routing_status_ttl_seconds": 3600,
                **overrides,
            }
        )
        return Edge(**vars(ingress_on_fakes(settings, routes_yaml)))

    return make


@pytest.fixture
def edge(make_edge) -> Edge:
    """No signing secrets: the API key alone, as a Cognigy HTTP Request node sends it."""
    return make_edge()


@pytest.fixture
def signed_edge(make_edge) -> Edge:
    """Signing secrets configured, signatures optional."""
    return make_edge(webhook_signing_secrets=SECRETS)


@pytest.fixture
def strict_edge(make_edge) -> Edge:
    """Signing secrets configured and every webhook must be signed."""
    return make_edge(webhook_signing_secrets=SECRETS, webhook_signature_required=True)
