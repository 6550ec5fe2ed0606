"""The ingress under test: the real Flask app on a fake Redis, with a recorder in place of Celery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import fakeredis
from flask import Flask
from flask.testing import FlaskClient

from ingress import create_app
from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.support.send_recorder import SendRecorder

WEBHOOK_URL = "/webhook/cognigy/route"
#: Example webhook bodies, as Cognigy sends them (and two it must refuse).
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"

#: The webhook keys an ingress under test accepts: the current one and the next (a key rotation).
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


def ingress_settings(**overrides) -> Settings:
    """An ingress's settings for tests: two webhook keys, a 4 KiB body limit, records kept an hour."""
    return Settings(
        **{
            "webhook_api_keys": API_KEYS,
            "max_body_bytes": MAX_BODY_BYTES,
            "routing_status_ttl_seconds": 3600,
            **overrides,
        }
    )


def load_payload(name: str) -> dict:
    """One example body from ``tests/payloads`` (decoded), by file name without ``.json``."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class IngressUnderTest:
    """One ingress app, its test client, and the fakes it writes to."""

    app: Flask
    client: FlaskClient
    sent: SendRecorder
    redis: fakeredis.FakeRedis
    settings: Settings


def ingress_on_fakes(
    settings: Settings,
    routes: str | RoutingTable,
    *,
    redis_client: fakeredis.FakeRedis | None = None,
    sent: SendRecorder | None = None,
) -> IngressUnderTest:
    """``create_app`` with ``settings`` and a routing table (YAML or parsed), on its own fake Redis
    and a new recorder unless given: what every ingress test builds, in one place."""
    table = routes if isinstance(routes, RoutingTable) else RoutingTable.parse(routes, source="test-routes")
    redis_client = (
        fakeredis.FakeRedis(server=fakeredis.FakeServer()) if redis_client is None else redis_client
    )
    sent = SendRecorder() if sent is None else sent
    app = create_app(settings, routing_table=table, redis_client=redis_client, send_task=sent)
    return IngressUnderTest(app, app.test_client(), sent, redis_client, settings)
