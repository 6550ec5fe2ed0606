"""The ingress puts the queue's overflow rules in the task message (the worker decides on them), and
answers show an overflow the worker recorded."""

from __future__ import annotations

from shared.routing.job import RoutingJob
from shared.routing.records import RoutingStatusStore
from shared.routing.table import RoutingTable
from tests.support.ingress import WEBHOOK_URL, ingress_on_fakes, load_payload

ROUTES = """
fallback:
  queue: General Inquiry
  overflow: [{to: {skill_id: 1200042}, when: {queue_count_above: 40}}]
routes:
  billing_dispute:
    queue: Billing Disputes
    overflow:
      - to: General Inquiry
        when: {agents_available_below: 1}
  sales_inquiry: Sales Support
"""


def post(ingress, body: dict):
    return ingress.client.post(
        WEBHOOK_URL, json=body, headers={"X-API-Key": ingress.settings.webhook_api_keys[0]}
    )


def test_the_queues_rules_travel_in_the_task_message(settings) -> None:
    ingress = ingress_on_fakes(settings, ROUTES)
    chat = load_payload("cognigy-input-chat")  # billing_dispute

    response = post(ingress, chat)

    assert response.status_code == 202
    body = response.get_json()
    assert body["queue"] == "Billing Disputes" and "overflow" not in body  # decided later, by a worker
    job = RoutingJob.from_message(ingress.sent.messages[0])
    assert job.overflow == RoutingTable.parse(ROUTES).overflow_rules(
        RoutingTable.parse(ROUTES).routes["billing_dispute"]
    )
    (to_general,) = job.overflow
    assert to_general.label == "General Inquiry"
    assert [rule.label for rule in to_general.then] == ["skill 1200042"]  # General Inquiry's own rules


def test_a_route_without_rules_carries_none(settings) -> None:
    ingress = ingress_on_fakes(settings, ROUTES)
    chat = load_payload("cognigy-input-chat")
    chat["intent"] = "sales_inquiry"

    assert post(ingress, chat).status_code == 202

    assert ingress.sent.messages[0]["overflow"] is None


def test_a_resend_is_answered_with_the_overflow_the_worker_recorded(settings) -> None:
    ingress = ingress_on_fakes(settings, ROUTES)
    chat = load_payload("cognigy-input-chat")
    first = post(ingress, chat).get_json()
    store = RoutingStatusStore(ingress.redis, 3600)
    overflow = {
        "from": "Billing Disputes",
        "to": "General Inquiry",
        "rule": "agents_available_below 1",
        "agentsAvailable": 0,
    }
    store.note_overflow(first["routingId"], overflow)
    store.mark_routed(first["routingId"], 1200009)

    again = post(ingress, chat).get_json()
    shown = ingress.client.get(
        f"/routings/{first['routingId']}", headers={"X-API-Key": ingress.settings.webhook_api_keys[0]}
    ).get_json()

    assert again["duplicate"] is True and again["status"] == "routed"
    for answer in (again, shown):
        assert (answer["queue"], answer["queueAsked"], answer["skillId"]) == (
            "General Inquiry",
            "Billing Disputes",
            1200009,
        )
        assert answer["overflow"] == overflow
