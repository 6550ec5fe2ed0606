"""Confirmed hand-off, end to end: a webhook with ``?wait=`` is answered with how its routing ended,
through real gunicorn, Celery workers, the CXone sandbox and Redis."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import redis
import requests

from cxone_sandbox import SEED_SKILLS
from tests.integration.stack import API_KEY, PrivateRedis, Stack, chat_body, wait_until

SKILL_IDS = {skill.skill_name: skill.skill_id for skill in SEED_SKILLS}
#: Slack on top of a wait for an answer to arrive on a busy two-core machine.
MARGIN = 3.0


def post(stack: Stack, body: dict, wait: str | None = "5", headers: dict | None = None) -> requests.Response:
    url = stack.web_url + "/webhook/cognigy/route" + (f"?wait={wait}" if wait is not None else "")
    return requests.post(url, json=body, headers={"X-API-Key": API_KEY, **(headers or {})}, timeout=30)


def in_thread(target) -> tuple[threading.Thread, list]:
    """Run ``target`` in a thread; its result lands in the list."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def timed(target):
    """``target`` that returns ``(its result, time.monotonic() when it returned)``."""
    return lambda: (target(), time.monotonic())


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_routed_contact_is_answered_200_routed(stack):
    stack.start_worker()

    response = post(stack, chat_body("7100001", "sales_inquiry"))
    answered = time.time()

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "routed"
    assert (body["queue"], body["skillId"], body["contactId"], body["mode"]) == (
        "Sales Support",
        SKILL_IDS["Sales Support"],
        "7100001",
        "digital",
    )
    assert body["intent"] == "sales_inquiry"
    assert epoch(body["routedAt"]) <= answered
    assert body["waitedMs"] <= 5000
    stats = stack.sandbox_stats()
    assert [r["skillId"] for r in stats["routings"]["7100001"]] == [SKILL_IDS["Sales Support"]]
    assert stack.routing(body["routingId"])["state"] == "routed"


def test_prefer_wait_is_honoured_and_said_so(stack):
    stack.start_worker()

    response = post(stack, chat_body("7100002"), wait=None, headers={"Prefer": "respond-async, wait=5"})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "routed"
    assert response.headers["Preference-Applied"] == "wait=5"


def test_a_closed_contact_is_answered_200_failed_with_the_reason(stack):
    stack.set_faults(closed_contacts=["7100003"])
    stack.start_worker()

    response = post(stack, chat_body("7100003"))

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "failed"
    assert "404" in body["reason"]
    assert stack.routing(body["routingId"])["state"] == "failed"


def test_cxone_down_is_answered_202_retrying_after_the_wait_and_the_routing_goes_on(stack):
    stack.set_faults(outage_seconds=6)
    stack.start_worker()
    started = time.monotonic()

    response = post(stack, chat_body("7100004"), wait="2")

    elapsed = time.monotonic() - started
    body = response.json()
    assert response.status_code == 202, body
    assert body["status"] == "retrying" and body["lastError"]
    assert 2.0 <= elapsed <= 2.0 + MARGIN
    assert body["waitedMs"] >= 2000
    # It goes on exactly as without waiting: routed once CXone is back.
    wait_until(
        lambda: stack.routing(body["routingId"])["state"] == "routed", 60, what="routed after the outage"
    )
    assert len(stack.sandbox_stats()["routings"]["7100004"]) == 1


def test_a_resend_while_waiting_waits_for_the_first_routing_and_gets_its_outcome(stack):
    stack.start_worker()
    stack.set_faults(latency_ms=2000)  # the CXone call takes 2 s: the resend comes while it runs
    body = chat_body("7100005", input_id="input-7100005")
    client = stack.redis()

    first, first_out = in_thread(lambda: post(stack, body, wait="7"))
    wait_until(
        lambda: bool(client.keys("router:routing:*")), 10, interval=0.02, what="the first routing stored"
    )
    resend, resend_out = in_thread(lambda: post(stack, body, wait="7"))
    first.join(30)
    resend.join(30)

    one, two = first_out[0], resend_out[0]
    assert one.status_code == 200 and two.status_code == 200, (one.text, two.text)
    assert one.json()["status"] == two.json()["status"] == "routed"
    assert one.json()["routingId"] == two.json()["routingId"]
    assert two.json()["duplicate"] is True
    assert len(stack.sandbox_stats()["routings"]["7100005"]) == 1  # one routing, one CXone call


def test_redis_down_while_waiting_answers_202_in_time_and_loses_nothing(stack, tmp_path):
    private = PrivateRedis(tmp_path / "redis")  # appendfsync always: what was answered survives
    private.start()
    try:
        stack.redis_url = private.url  # the processes and the test's own checks (idle, leases)
        stack.close()
        stack.processes.clear()
        stack.start_sandbox()
        stack.start_web()
        # No worker yet: the routing stays queued while the webhook waits.
        client = redis.Redis.from_url(private.url)
        started = time.monotonic()
        waiting, out = in_thread(timed(lambda: post(stack, chat_body("7100006"), wait="6")))
        wait_until(
            lambda: bool(client.keys("router:routing:*")), 10, interval=0.02, what="the routing stored"
        )
        client.close()

        killed_at = time.monotonic()
        private.kill()
        waiting.join(6 + MARGIN)

        assert out, "the webhook was not answered within its wait and the margin"
        response, answered_at = out[0]
        assert killed_at <= answered_at <= started + 6 + MARGIN  # it waited, and not past its wait
        assert response.status_code == 202, response.text
        routing_id = response.json()["routingId"]
        # Not stored at all while Redis is down: 503, at once (without waiting).
        refused_at = time.monotonic()
        refused = post(stack, chat_body("7100007"), wait="6")
        assert refused.status_code == 503
        assert time.monotonic() - refused_at < 6

        private.start()  # same port and directory: the append-only file is replayed
        stack.start_worker()
        wait_until(
            lambda: stack.routing(routing_id)["state"] == "routed", 60, what="routed after Redis came back"
        )
        assert [r["skillId"] for r in stack.sandbox_stats()["routings"]["7100006"]] == [
            SKILL_IDS["Sales Support"]
        ]
    finally:
        private.kill()
