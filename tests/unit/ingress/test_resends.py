"""Which webhooks are resends, and what a resend is answered: the first routing's current state."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from ingress import create_app
from ingress.answers import queued_record, routing_answer
from shared import redis_keys
from shared.routing.job import RoutingJob
from shared.routing.records import RoutingStatusStore

CONTACT = "7000101"


def chat(intent: str, input_id: str | None = None, contact: str = CONTACT) -> dict:
    body = {"sessionId": "9a8b7c6d", "channel": "webchat3", "intent": intent, "intentScore": 0.9}
    body["data"] = {"contactId": contact}
    if input_id is not None:
        body["inputId"] = input_id
    return body


@pytest.fixture
def store(fake_redis, settings) -> RoutingStatusStore:
    return RoutingStatusStore(fake_redis, settings.routing_status_ttl_seconds)


def test_a_new_routing_is_answered_queued_without_duplicate(post_json):
    answer = post_json(chat("billing_dispute", "in-1")).get_json()

    assert answer["status"] == "queued" and "duplicate" not in answer
    assert set(answer) == {"status", "routingId", "intent", "queue", "contactId", "contactSource", "mode"}


def test_a_resend_of_a_queued_routing_is_answered_queued(post_json):
    first = post_json(chat("billing_dispute", "in-1")).get_json()

    again = post_json(chat("billing_dispute", "in-1"))

    assert again.status_code == 202
    assert again.get_json() == {**first, "duplicate": True}


def test_a_resend_of_a_routed_routing_is_answered_routed(post_json, store, sent):
    first = post_json(chat("billing_dispute", "in-1")).get_json()
    store.mark_routed(first["routingId"], 1203344)  # a worker carried it out meanwhile

    again = post_json(chat("billing_dispute", "in-1"))

    assert again.status_code == 202
    body = again.get_json()
    assert body["status"] == "routed" and body["duplicate"] is True
    assert (body["routingId"], body["skillId"]) == (first["routingId"], 1203344)
    assert body["routedAt"].endswith("Z")
    assert len(sent.messages) == 1


def test_a_resend_of_a_superseded_routing_says_which_routing_replaced_it(post_json, store, sent):
    billing = post_json(chat("billing_dispute", "in-1")).get_json()
    sales = post_json(chat("sales_inquiry", "in-2")).get_json()
    store.mark_superseded(billing["routingId"], sales["routingId"])

    again = post_json(chat("billing_dispute", "in-1")).get_json()

    assert again["status"] == "failed"  # never the stale "queued"
    assert again["reason"] == f"superseded by {sales['routingId']}"
    assert (again["routingId"], again["supersededBy"]) == (billing["routingId"], sales["routingId"])
    assert len(sent.messages) == 2


def test_a_resend_of_a_failed_routing_gives_the_reason(post_json, store, sent):
    first = post_json(chat("billing_dispute", "in-1")).get_json()
    store.mark_failed(first["routingId"], "CXone answered 404: contact not found", sent.messages[0])

    again = post_json(chat("billing_dispute", "in-1")).get_json()

    assert (again["status"], again["reason"]) == ("failed", "CXone answered 404: contact not found")


def test_a_resend_whose_first_record_is_missing_is_answered_queued(post_json, fake_redis):
    """The first copy's record write failed after its publish: the worker writes it later."""
    first = post_json(chat("billing_dispute", "in-1")).get_json()
    fake_redis.delete(redis_keys.routing(first["routingId"]))

    again = post_json(chat("billing_dispute", "in-1")).get_json()

    assert (again["status"], again["routingId"], again["duplicate"]) == ("queued", first["routingId"], True)


def test_a_resend_whose_state_cannot_be_read_is_503(post_json, monkeypatch):
    post_json(chat("billing_dispute", "in-1"))

    def unreadable(self, routing_id):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(RoutingStatusStore, "get", unreadable)
    again = post_json(chat("billing_dispute", "in-1"))

    assert again.status_code == 503 and again.headers["Retry-After"] == "1"


@pytest.mark.parametrize("with_input_id", [True, False], ids=["inputId", "no-inputId"])
def test_billing_sales_billing_gives_three_routings(post_json, sent, with_input_id):
    bodies = [
        chat(intent, f"in-{n}" if with_input_id else None)
        for n, intent in enumerate(["billing_dispute", "sales_inquiry", "billing_dispute"])
    ]

    answers = [post_json(body).get_json() for body in bodies]
    resend = post_json(bodies[2]).get_json()

    assert not any(a.get("duplicate") for a in answers)
    assert len({a["routingId"] for a in answers}) == 3
    assert [m["intent"] for m in sent.messages] == ["billing_dispute", "sales_inquiry", "billing_dispute"]
    assert (resend["routingId"], resend["duplicate"]) == (answers[2]["routingId"], True)


def test_without_input_id_a_resend_after_the_contact_intent_window_is_a_new_routing(
    settings, routing_table, fake_redis, sent
):
    short = replace(settings, dedupe_contact_intent_seconds=1)
    client = create_app(
        short, routing_table=routing_table, redis_client=fake_redis, send_task=sent
    ).test_client()
    headers = {"X-API-Key": settings.webhook_api_keys[0]}
    first = client.post("/webhook/cognigy/route", json=chat("billing_dispute"), headers=headers).get_json()
    fake_redis.hset(redis_keys.contact_latest(CONTACT), "at", time.time() - 2)  # it came 2 s ago

    later = client.post("/webhook/cognigy/route", json=chat("billing_dispute"), headers=headers).get_json()

    assert "duplicate" not in later and later["routingId"] != first["routingId"]


# ------------------------------------------------------------------------- current_answer


def _job(**fields) -> RoutingJob:
    values = {
        "routing_id": "r-1",
        "contact_id": CONTACT,
        "intent": "billing_dispute",
        "mode": "digital",
        "queue_name": "Billing Disputes",
        "received_at": 1_700_000_000.0,
        "contact_seq": 1,
    }
    values.update(fields)
    return RoutingJob(**values)  # type: ignore[arg-type]


BASE = {"status", "routingId", "intent", "queue", "contactId", "mode"}


@pytest.mark.parametrize(
    ("settle", "state", "extra"),
    [
        (lambda s: None, "queued", set()),
        (
            lambda s: s.mark_retrying("r-1", "HTTP 503", time.time() + 2),
            "retrying",
            {"lastError", "nextAttemptAt"},
        ),
        (lambda s: s.mark_routed("r-1", 1203344), "routed", {"skillId", "routedAt"}),
        (lambda s: s.mark_failed("r-1", "HTTP 404", {}), "failed", {"reason", "lastError"}),
        (lambda s: s.mark_superseded("r-1", "r-2"), "failed", {"supersededBy", "reason"}),
    ],
)
def test_the_answer_has_the_state_and_what_it_adds(store, settle, state, extra):
    store.create(_job())
    settle(store)

    answer, _status = routing_answer(store.get("r-1"))

    assert answer["status"] == state
    assert set(answer) == BASE | extra
    assert (answer["routingId"], answer["queue"], answer["contactId"]) == ("r-1", "Billing Disputes", CONTACT)
    public = store.get("r-1").to_public()
    # The same values as GET /routings/<id> (a superseded routing's reason is the answer's own).
    assert all(answer[key] == public[key] for key in extra - {"reason"})


def test_queued_record_answers_like_a_fresh_record(store):
    job = _job()
    store.create(job)

    assert routing_answer(queued_record(job)) == routing_answer(store.get("r-1"))
    assert routing_answer(queued_record(job, "r-first"))[0]["routingId"] == "r-first"
