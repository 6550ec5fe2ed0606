"""End to end: webhooks over HTTP into gunicorn, Celery workers, the CXone sandbox, Redis."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from cxone_sandbox import SEED_SKILLS
from shared.task_queue import ROUTING_QUEUE
from tests.integration.stack import chat_body, wait_until

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
SKILL_IDS = {skill.skill_name: skill.skill_id for skill in SEED_SKILLS}


def _payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def test_example_payloads_are_routed_to_the_right_queue(stack):
    stack.start_worker()
    expected = {
        "seed-intents.json": ("4815162342", "Sales Support", "digital"),
        "seed-flat.json": ("4815162343", "Technical Support", "digital"),
        "cognigy-input-chat.json": ("728471935", "Billing Disputes", "digital"),
        "cognigy-input-voice.json": ("700111223", "Claims", "voice"),
    }
    routing_ids = {}
    for name, (contact, queue, mode) in expected.items():
        response = stack.post_webhook(_payload(name))
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["contactId"], body["queue"], body["mode"]) == (contact, queue, mode)
        routing_ids[name] = body["routingId"]
    for name in ("bad-confidence.json", "bad-no-session.json", "bad-session-id-only.json"):
        assert stack.post_webhook(_payload(name)).status_code == 400

    wait_until(
        lambda: all(stack.routing(rid)["state"] == "routed" for rid in routing_ids.values()),
        120,
        what="all example routings to reach 'routed'",
    )
    stats = stack.sandbox_stats()
    for name, (contact, queue, mode) in expected.items():
        status = stack.routing(routing_ids[name])
        assert status["skillId"] == SKILL_IDS[queue]
        if mode == "digital":
            assert [r["skillId"] for r in stats["routings"][contact]] == [SKILL_IDS[queue]]
            assert contact not in stats["signals"]
        else:
            (signal,) = stats["signals"][contact]
            assert signal["params"]["p1"] == str(SKILL_IDS[queue])
            assert signal["params"]["p3"] == routing_ids[name]
            assert contact not in stats["routings"]
    assert stats["token_requests"] == 1
    # Nothing from the rejected bodies reached a worker.
    assert stats["contacts_routed"] + len(stats["signals"]) == 4


def test_a_thousand_webhooks_are_routed_exactly_once_with_one_token(stack):
    total = 1000
    # Two worker processes start together: they must share one token and one skill lookup.
    stack.start_worker("w1", concurrency=16)
    stack.start_worker("w2", concurrency=16)
    intents = ["sales_inquiry", "support_ticket", "billing_dispute", "cancel_subscription"]
    queue_of = {
        "sales_inquiry": "Sales Support",
        "support_ticket": "Technical Support",
        "billing_dispute": "Billing Disputes",
        "cancel_subscription": "Retention",
    }
    contacts = {f"740{n:05d}": intents[n % len(intents)] for n in range(total)}

    session = requests.Session()

    def send(item):
        contact, intent = item
        return stack.post_webhook(chat_body(contact, intent), session=session).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, contacts.items()))
    assert statuses.count(202) == total

    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= total,
        180,
        interval=1,
        what=f"{total} contacts routed",
    )
    stats = stack.sandbox_stats()
    assert stats["contacts_routed"] == total
    assert stats["contacts_routed_more_than_once"] == 0
    wrong = {
        c: r
        for c, r in stats["routings"].items()
        if [x["skillId"] for x in r] != [SKILL_IDS[queue_of[contacts[c]]]]
    }
    assert wrong == {}
    assert stats["token_requests"] == 1
    # One skill lookup per distinct queue, shared by both worker processes.
    assert stats["api_calls_by_endpoint"]["skills"] == len(set(queue_of.values()))
    assert stats["api_calls_by_endpoint"]["routing_put"] == total


def test_a_throttling_cxone_still_gets_every_contact_routed_once(stack):
    # CXone allows fewer calls than we offer and answers 429 with Retry-After; our own limiter is
    # set high so that CXone, not the limiter, does the throttling here.
    stack.set_faults(rate_limit_per_minute=20, retry_after=True)
    stack.start_worker(concurrency=8)
    total = 30
    routing_ids = []
    for n in range(total):
        response = stack.post_webhook(chat_body(f"741{n:05d}", "support_ticket"))
        assert response.status_code == 202
        routing_ids.append(response.json()["routingId"])
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= total,
        150,
        interval=1,
        what="every throttled contact routed",
    )
    stats = stack.sandbox_stats()
    assert stats["answered_429"] > 0
    assert stats["contacts_routed"] == total
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["max_calls_in_any_60s"] <= 20
    retried = [stack.routing(rid) for rid in routing_ids]
    assert all(r["state"] == "routed" for r in retried)
    # A 429 with Retry-After is waited out in the backlog (every worker paused), not counted as a
    # failed attempt.
    assert all(r["attempts"] == 0 for r in retried)


def test_the_readme_body_with_an_undefined_spawned_contact_signals_the_data_contact(stack):
    # The README's body renders "{{input.data.spawnedContactId}}" as "undefined" when Cognigy has
    # no spawned contact; the voice routing must signal data.contactId, never a contact "undefined".
    stack.start_worker()
    body = _payload("cognigy-input-voice.json")
    body["data"]["spawnedContactId"] = "undefined"

    response = stack.post_webhook(body)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["contactId"], answer["contactSource"], answer["mode"]) == (
        "700111222",
        "data.contactId",
        "voice",
    )
    wait_until(lambda: stack.routing(answer["routingId"])["state"] == "routed", 30, what="the voice routing")
    assert stack.routing(answer["routingId"])["contactSource"] == "data.contactId"
    stats = stack.sandbox_stats()
    assert list(stats["signals"]) == ["700111222"]
    assert stats["signals"]["700111222"][0]["params"]["p3"] == answer["routingId"]
    assert stats["routings"] == {}


def test_a_webhook_naming_no_cxone_contact_id_is_400_and_nothing_is_queued(stack):
    stack.start_worker()
    cognigy_session_only = _payload("cognigy-input-chat.json")
    del cognigy_session_only["data"]  # only the Cognigy session id (not numeric) is left
    escaping = {**chat_body("7500001"), "data": {"contactId": ".."}}
    unicode_digits = chat_body("٧٥٠٠٠٠٢")

    answers = [stack.post_webhook(b) for b in (cognigy_session_only, escaping, unicode_digits)]

    assert [a.status_code for a in answers] == [400, 400, 400]
    assert list(answers[0].json()["fields"]) == ["sessionId"]
    assert "data.contactId" in answers[0].json()["fields"]["sessionId"][0]  # says where the id goes
    assert answers[1].json()["fields"]["data.contactId"][0].startswith("Not a CXone contact id: '..'")
    assert list(answers[2].json()["fields"]) == ["data.contactId"]
    # A good webhook after them is the only thing that reaches a worker, and CXone.
    good = stack.post_webhook(chat_body("7500003"))
    assert good.status_code == 202
    wait_until(
        lambda: stack.routing(good.json()["routingId"])["state"] == "routed", 30, what="the good routing"
    )
    client = stack.redis()
    assert client.llen(ROUTING_QUEUE) == 0
    assert [k for k in client.keys("router:routing:*") if k.count(":") == 2] == [
        f"router:routing:{good.json()['routingId']}"
    ]
    stats = stack.sandbox_stats()
    assert list(stats["routings"]) == ["7500003"] and stats["signals"] == {}
    assert stats["api_calls_by_endpoint"]["routing_put"] == 1
