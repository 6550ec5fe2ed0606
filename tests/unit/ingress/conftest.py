"""Fixtures for the ingress: the Flask app with fake Redis, a recording ``send_task``, no broker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from ingress import create_app
from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.support.send_recorder import SendRecorder

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"
WEBHOOK_URL = "/webhook/cognigy/route"
API_KEYS = ("key-current-0123456789", "key-next-9876543210")
MAX_BODY_BYTES = 4096

#: The example routing table's shape, inline so these tests do not follow edits to config/.
ROUTES_YAML = """
min_score: 0.5
fallback: General Inquiry
voice_channels: [voiceGateway2, voiceGateway, voice, phone]
routes:
  sales_inquiry: Sales Support
  support_ticket: Technical Support
  billing_dispute: Billing Disputes
  claims: Claims
  vip_callback: {skill_id: 1200042}
"""

#: The same routes without a fallback: low scores and unmapped intents are unroutable (422).
ROUTES_NO_FALLBACK_YAML = """
min_score: 0.5
routes:
  sales_inquiry: Sales Support
  claims: Claims
"""


def load_payload(name: str) -> dict:
    """One example body from ``tests/payloads`` (decoded)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def settings() -> Settings:
    return Settings(webhook_api_keys=API_KEYS, max_body_bytes=MAX_BODY_BYTES, routing_status_ttl_seconds=3600)


@pytest.fixture
def routing_table() -> RoutingTable:
    return RoutingTable.parse(ROUTES_YAML, source="test-routes")


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def sent() -> SendRecorder:
    return SendRecorder()


@pytest.fixture
def app(settings, routing_table, fake_redis, sent) -> Flask:
    return create_app(settings, routing_table=routing_table, redis_client=fake_redis, send_task=sent)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": API_KEYS[0]}


@pytest.fixture
def post_json(client: FlaskClient, auth) -> Callable:
    """POST a body (dict/list, or raw str/bytes) to the webhook with a valid key by default."""

    def post(body, headers: dict[str, str] | None = None, content_type: str = "application/json"):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return client.post(
            WEBHOOK_URL, data=data, content_type=content_type, headers=auth if headers is None else headers
        )

    return post
