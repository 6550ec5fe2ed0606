"""The voice signal speaks the script's language: the routing table's signal_params template, as the
sandbox receives it from real workers (gunicorn → Redis → Celery worker → Signal API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxone_sandbox import SEED_SKILLS
from tests.integration.stack import wait_until

ROUTES = Path(__file__).with_name("routes-exit-interaction.yaml")
SKILL_IDS = {skill.skill_name: skill.skill_id for skill in SEED_SKILLS}


def voice_body(contact_id: str, intent: str) -> dict:
    return {
        "sessionId": f"session-{contact_id}",
        "channel": "voiceGateway2",
        "intent": intent,
        "intentScore": 0.9,
        "text": "customer words never go into a signal",
        "data": {"contactId": contact_id},
    }


@pytest.mark.parametrize("stack", [{"ROUTES_FILE": str(ROUTES)}], indirect=True)
def test_each_voice_route_signals_its_template_rendered_by_the_worker(stack):
    stack.start_worker()
    sent = {
        "7000101": ("claims", ["Escalate", str(SKILL_IDS["Claims"]), "Claims", "7000101"]),
        "7000102": ("sales_inquiry", ["Escalate", str(SKILL_IDS["Sales Support"])]),
        "7000103": ("weather_smalltalk", ["Escalate", str(SKILL_IDS["General Inquiry"])]),  # the fallback
    }
    routing_ids = {}
    for contact, (intent, _params) in sent.items():
        response = stack.post_webhook(voice_body(contact, intent))
        assert response.status_code == 202, response.text
        assert response.json()["mode"] == "voice"
        routing_ids[contact] = response.json()["routingId"]

    wait_until(
        lambda: all(stack.routing(rid)["state"] == "routed" for rid in routing_ids.values()),
        60,
        what="the voice routings to be routed",
    )
    signals = stack.sandbox_stats()["signals"]
    for contact, (_intent, params) in sent.items():
        (signal,) = signals[contact]
        assert signal["params"] == {f"p{n}": value for n, value in enumerate(params, start=1)}
        assert "customer words" not in str(signal)
