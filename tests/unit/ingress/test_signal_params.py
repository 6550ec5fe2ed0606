"""The ingress puts the route's signal parameter template into a voice routing's task message."""

from __future__ import annotations

import pytest

from ingress import create_app
from shared.routing.job import RoutingJob
from shared.routing.signal_template import DEFAULT_SIGNAL_PARAMS
from shared.routing.table import RoutingTable
from tests.support.ingress import load_payload

ROUTES_WITH_TEMPLATES = """
voice_channels: [voiceGateway2]
signal_params: ["{skill_id}", "{queue}"]
routes:
  claims: {queue: Claims, signal_params: ["Escalate", "{skill_id}"]}
  billing_dispute: Billing Disputes
"""


def voice_body(intent: str) -> dict:
    body = load_payload("cognigy-input-voice")
    body["intent"] = intent
    return body


def test_a_voice_routing_carries_the_default_template(post_json, sent):
    assert post_json(load_payload("cognigy-input-voice")).status_code == 202

    job = RoutingJob.from_message(sent.messages[0])
    assert job.mode == "voice"
    assert job.signal_params == DEFAULT_SIGNAL_PARAMS


def test_a_digital_routing_carries_none(post_json, sent):
    assert post_json(load_payload("cognigy-input-chat")).status_code == 202

    assert sent.messages[0]["signal_params"] is None


@pytest.mark.parametrize(
    ("intent", "template"),
    [("claims", ["Escalate", "{skill_id}"]), ("billing_dispute", ["{skill_id}", "{queue}"])],
)
def test_the_route_template_wins_over_the_table_template(settings, fake_redis, sent, intent, template):
    table = RoutingTable.parse(ROUTES_WITH_TEMPLATES)
    client = create_app(settings, routing_table=table, redis_client=fake_redis, send_task=sent).test_client()

    response = client.post(
        "/webhook/cognigy/route", json=voice_body(intent), headers={"X-API-Key": settings.webhook_api_keys[0]}
    )

    assert response.status_code == 202, response.get_json()
    assert sent.messages[0]["signal_params"] == template
