"""Fixtures for the webhook edge: an ingress with fake Redis and a recording ``send_task``,
built with whatever edge settings a test needs (signing secrets, required signatures)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from ingress import create_app
from ingress.auth import signature_headers
from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.support.send_recorder import SendRecorder

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"
WEBHOOK_URL = "/webhook/cognigy/route"
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


@dataclass
class Edge:
    """One ingress under test and what it touched."""

    app: Flask
    client: FlaskClient
    sent: SendRecorder
    redis: fakeredis.FakeRedis
    settings: Settings

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


def load_payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def make_edge() -> Callable[..., Edge]:
    """Build an ingress with ``Settings`` overrides, e.g. ``make_edge(webhook_signing_secrets=…)``,
    and optionally another routing table (``routes_yaml``)."""

    def make(routes_yaml: str = ROUTES_YAML, **overrides) -> Edge:
        settings = dataclasses.replace(
            Settings(
                webhook_api_keys=(API_KEY,), max_body_bytes=MAX_BODY_BYTES, routing_status_ttl_seconds=3600
            ),
            **overrides,
        )
        sent = SendRecorder()
        fake = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        app = create_app(
            settings, routing_table=RoutingTable.parse(routes_yaml), redis_client=fake, send_task=sent
        )
        return Edge(app, app.test_client(), sent, fake, settings)

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
