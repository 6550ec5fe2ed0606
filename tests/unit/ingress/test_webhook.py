"""POST /webhook/cognigy/route: the accepted shapes, validation answers and the stored record."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from ingress import create_app
from shared import redis_keys
from shared.routing.job import RoutingJob
from shared.routing.table import RoutingTable
from tests.support.ingress import API_KEYS, MAX_BODY_BYTES, ROUTES_NO_FALLBACK_YAML, WEBHOOK_URL, load_payload

GOOD_PAYLOADS = [
    # payload, intent, queue, contact id, where it came from, mode
    ("seed-intents", "sales_inquiry", "Sales Support", "4815162342", "sessionId", "digital"),
    ("seed-flat", "support_ticket", "Technical Support", "4815162343", "sessionId", "digital"),
    ("cognigy-input-chat", "billing_dispute", "Billing Disputes", "728471935", "data.contactId", "digital"),
    # A voice bot signals the contact it spawned, not the original one.
    ("cognigy-input-voice", "claims", "Claims", "700111223", "data.spawnedContactId", "voice"),
]


@pytest.mark.parametrize(("name", "intent", "queue", "contact_id", "source", "mode"), GOOD_PAYLOADS)
def test_good_payload_is_queued(post_json, sent, name, intent, queue, contact_id, source, mode):
    response = post_json(load_payload(name))

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["intent"] == intent
    assert body["queue"] == queue
    assert body["contactId"] == contact_id
    assert body["contactSource"] == source
    assert body["mode"] == mode
    assert body["routingId"]

    assert len(sent.messages) == 1
    job = RoutingJob.from_message(sent.messages[0])
    assert (job.routing_id, job.intent, job.queue_name, job.contact_id, job.contact_source, job.mode) == (
        body["routingId"],
        intent,
        queue,
        contact_id,
        source,
        mode,
    )


@pytest.mark.parametrize("name", [p[0] for p in GOOD_PAYLOADS])
def test_message_carries_no_customer_text_and_no_secret(post_json, sent, name):
    payload = load_payload(name)
    assert post_json(payload).status_code == 202

    message = sent.messages[0]
    assert set(message) == {f.name for f in fields(RoutingJob)}
    serialized = json.dumps(message)
    customer_text = payload.get("text") or payload["userInput"]["text"]
    assert customer_text not in serialized
    for key in API_KEYS:
        assert key not in serialized
    if "userId" in payload:
        assert payload["userId"] not in serialized


@pytest.mark.parametrize("name", [p[0] for p in GOOD_PAYLOADS])
def test_record_is_readable_as_queued(client, post_json, auth, fake_redis, name):
    body = post_json(load_payload(name)).get_json()

    response = client.get(f"/routings/{body['routingId']}", headers=auth)

    assert response.status_code == 200
    record = response.get_json()
    assert record["state"] == "queued"
    assert record["routingId"] == body["routingId"]
    assert (
        record["intent"],
        record["queue"],
        record["contactId"],
        record["contactSource"],
        record["mode"],
    ) == (
        body["intent"],
        body["queue"],
        body["contactId"],
        body["contactSource"],
        body["mode"],
    )
    assert record["attempts"] == 0
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, body["routingId"]) is not None
    assert 0 < fake_redis.ttl(redis_keys.routing(body["routingId"])) <= 3600


def test_bad_confidence_names_the_field(post_json, sent):
    response = post_json(load_payload("bad-confidence"))

    assert response.status_code == 400
    assert "intents.0.confidence" in response.get_json()["fields"]
    assert sent.messages == []


def test_missing_session_names_session_id(post_json, sent):
    response = post_json(load_payload("bad-no-session"))

    assert response.status_code == 400
    assert "sessionId" in response.get_json()["fields"]
    assert sent.messages == []


def test_scores_given_as_strings_are_accepted(post_json, sent):
    payload = load_payload("seed-intents")
    for intent in payload["intents"]:
        intent["confidence"] = str(intent["confidence"])

    response = post_json(payload)

    assert response.status_code == 202
    assert response.get_json()["intent"] == "sales_inquiry"
    assert RoutingJob.from_message(sent.messages[0]).score == pytest.approx(0.93)


@pytest.mark.parametrize(
    "score",
    [1.01, -0.1, "1.5", "-1", 10**400, "nan", "1e999"],
    ids=["above", "below", "str-above", "str-below", "huge-int", "nan", "inf"],
)
def test_score_outside_zero_to_one_is_rejected(post_json, sent, score):
    payload = load_payload("cognigy-input-chat")
    payload["intentScore"] = score

    response = post_json(payload)

    assert response.status_code == 400
    assert "intentScore" in response.get_json()["fields"]
    assert sent.messages == []


def test_malformed_json_is_400(post_json, sent):
    response = post_json('{"sessionId": "1", "intents": [')

    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed JSON"
    assert sent.messages == []


def test_deeply_nested_json_is_400_not_a_crash(post_json, sent):
    response = post_json("[" * (MAX_BODY_BYTES - 10))

    assert response.status_code == 400
    assert sent.messages == []


def test_invalid_utf8_is_400(post_json, sent):
    response = post_json(b'{"sessionId": "\xff\xfe"}')

    assert response.status_code == 400
    assert sent.messages == []


def test_json_array_body_is_400(post_json, sent):
    response = post_json([load_payload("seed-intents")])

    assert response.status_code == 400
    assert "_schema" in response.get_json()["fields"]
    assert sent.messages == []


def test_text_plain_is_415(post_json, sent):
    response = post_json(json.dumps(load_payload("seed-intents")), content_type="text/plain")

    assert response.status_code == 415
    assert response.get_json()["received"] == "text/plain"
    assert sent.messages == []


def test_json_suffix_media_type_is_accepted(post_json):
    response = post_json(
        load_payload("seed-intents"), content_type="application/vnd.cognigy+json; charset=utf-8"
    )

    assert response.status_code == 202


def test_body_over_the_limit_is_413(post_json, sent, fake_redis):
    payload = load_payload("seed-intents")
    payload["padding"] = "x" * MAX_BODY_BYTES

    response = post_json(payload)

    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.get_json()["error"]
    assert sent.messages == []
    assert fake_redis.keys("router:*") == []


def test_no_intent_above_threshold_without_fallback_is_422(settings, fake_redis, sent):
    table = RoutingTable.parse(ROUTES_NO_FALLBACK_YAML)
    client = create_app(settings, routing_table=table, redis_client=fake_redis, send_task=sent).test_client()
    payload = load_payload("seed-intents")
    payload["intents"] = [{"name": "sales_inquiry", "confidence": 0.3}]

    response = client.post(WEBHOOK_URL, json=payload, headers={"X-API-Key": API_KEYS[0]})

    assert response.status_code == 422
    reason = response.get_json()["reason"]
    assert "sales_inquiry" in reason and "min_score" in reason and "no fallback" in reason
    assert sent.messages == []
    assert fake_redis.keys("router:*") == []


def test_unmapped_intent_without_fallback_is_422(settings, fake_redis, sent):
    table = RoutingTable.parse(ROUTES_NO_FALLBACK_YAML)
    client = create_app(settings, routing_table=table, redis_client=fake_redis, send_task=sent).test_client()

    response = client.post(WEBHOOK_URL, json=load_payload("seed-flat"), headers={"X-API-Key": API_KEYS[0]})

    assert response.status_code == 422
    assert "support_ticket" in response.get_json()["reason"]
    assert sent.messages == []


def test_unmapped_intent_goes_to_the_fallback(post_json, sent):
    payload = load_payload("seed-flat")
    payload["intentName"] = "lost_luggage"

    response = post_json(payload)

    assert response.status_code == 202
    body = response.get_json()
    assert body["queue"] == "General Inquiry"
    assert body["intent"] == "lost_luggage"
    assert RoutingJob.from_message(sent.messages[0]).queue_name == "General Inquiry"


def test_low_score_goes_to_the_fallback(post_json):
    payload = load_payload("cognigy-input-chat")
    payload["intentScore"] = "0.2"

    response = post_json(payload)

    assert response.status_code == 202
    assert response.get_json()["queue"] == "General Inquiry"


def test_skill_id_route_needs_no_queue_name(post_json, sent):
    response = post_json({"sessionId": "555", "intentName": "vip_callback"})

    assert response.status_code == 202
    assert response.get_json()["queue"] == "skill 1200042"
    job = RoutingJob.from_message(sent.messages[0])
    assert (job.skill_id, job.queue_name) == (1200042, None)


def test_explicit_contact_id_wins(post_json):
    payload = load_payload("cognigy-input-voice")
    payload["cxoneContactId"] = 987654

    response = post_json(payload)

    assert response.get_json()["contactId"] == "987654"
    assert response.get_json()["contactSource"] == "cxoneContactId"


def test_unknown_routing_is_404(client, auth):
    response = client.get("/routings/does-not-exist", headers=auth)

    assert response.status_code == 404
    assert "error" in response.get_json()


def test_overlong_routing_id_is_404(client, auth):
    assert client.get("/routings/" + "a" * 65, headers=auth).status_code == 404


def test_unknown_route_is_json_404(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response.is_json
    assert "error" in response.get_json()


def test_wrong_method_is_json_405(client):
    response = client.get(WEBHOOK_URL)

    assert response.status_code == 405
    assert response.is_json
