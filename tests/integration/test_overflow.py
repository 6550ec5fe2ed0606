"""Overflow with real processes: the sandbox's live queue state decides where contacts go, as a
Cognigy flow waiting for the outcome sees it (gunicorn → Redis → Celery workers → CXone sandbox)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
import requests

from cxone_sandbox import SEED_SKILLS
from shared import redis_keys
from tests.integration.stack import API_KEY, chat_body, wait_ready, wait_until

ROUTES = Path(__file__).with_name("routes-overflow.yaml")
SKILL_IDS = {skill.skill_name: skill.skill_id for skill in SEED_SKILLS}
BILLING, GENERAL = SKILL_IDS["Billing"], SKILL_IDS["General Inquiry"]
TTL = 1
OVERFLOW_STACK = {"ROUTES_FILE": str(ROUTES), "CXONE_ACTIVITY_TTL_SECONDS": str(TTL)}
#: Each contact of a test once: a routing of a new contact is never a resend.
CONTACTS = (f"72{n:05d}" for n in itertools.count(1))
#: Safety net only: how long a state may take to show (far above the TTL, for a busy machine).
SEEN_WITHIN_SECONDS = 60


def route(stack, contact_id: str | None = None, intent: str = "billing_dispute") -> dict:
    """Send a webhook that waits for its outcome, as the Cognigy node does; the routed answer."""
    response = requests.post(
        stack.web_url + "/webhook/cognigy/route?wait=5",
        json=chat_body(contact_id or next(CONTACTS), intent=intent),
        headers={"X-API-Key": API_KEY},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "routed", answer
    return answer


def set_activity(stack, skill_id: int, **values: int) -> None:
    response = requests.post(
        f"{stack.sandbox_url}/sandbox/skills/{skill_id}/activity", json=values, timeout=5
    )
    response.raise_for_status()


def first_answer_where(stack, condition, what: str) -> dict:
    """Send routings one after another until one's answer meets ``condition``; that answer."""
    found: list[dict] = []

    def next_one_meets() -> bool:
        answer = route(stack)
        if condition(answer):
            found.append(answer)
        return bool(found)

    wait_until(next_one_meets, SEEN_WITHIN_SECONDS, interval=0.1, what=what)
    return found[0]


@pytest.mark.parametrize("stack", [OVERFLOW_STACK], indirect=True)
def test_contacts_go_to_the_alternative_while_no_agent_is_available_and_come_back(stack):
    wait_ready(stack.start_worker())
    before = route(stack)
    assert (before["queue"], before["skillId"]) == ("Billing", BILLING)
    assert "overflow" not in before and "queueAsked" not in before

    set_activity(stack, BILLING, agentsAvailable=0)
    moved = first_answer_where(stack, lambda a: a["queue"] != "Billing", "a contact to overflow")

    expected_overflow = {
        "from": "Billing",
        "to": "General Inquiry",
        "rule": "agents_available_below 1",
        "agentsAvailable": 0,
    }
    assert (moved["queue"], moved["queueAsked"], moved["skillId"]) == ("General Inquiry", "Billing", GENERAL)
    assert moved["overflow"] == expected_overflow
    assert stack.routing(moved["routingId"])["overflow"] == expected_overflow
    assert stack.sandbox_stats()["routings"][moved["contactId"]][-1]["skillId"] == GENERAL
    # While Billing stays without agents, every contact for it goes to General Inquiry.
    assert [route(stack)["skillId"] for _ in range(3)] == [GENERAL] * 3

    set_activity(stack, BILLING, agentsAvailable=2)
    back = first_answer_where(stack, lambda a: a["queue"] == "Billing", "contacts to go to Billing again")
    assert back["skillId"] == BILLING and "overflow" not in back
    assert route(stack, intent="sales_inquiry")["queue"] == "Sales Support"  # no rules: untouched
    worker_log = stack.processes[-1].log_path.read_text()
    assert "overflow: Billing -> General Inquiry (agents_available_below 1, agentsAvailable 0)" in worker_log
    assert moved["routingId"] in worker_log


@pytest.mark.parametrize(
    ("stack", "fault"),
    [
        (OVERFLOW_STACK, {"skill_activity_outage_seconds": 600}),
        (
            OVERFLOW_STACK,
            {"skill_activity_omit_fields": ["agentsAvailable", "queueCount", "longestQueueTimeInSeconds"]},
        ),
    ],
    indirect=["stack"],
    ids=["activity-endpoint-down", "activity-without-fields"],
)
def test_without_the_live_state_contacts_go_to_the_queue_asked_for(stack, fault):
    stack.set_faults(**fault)
    set_activity(stack, BILLING, agentsAvailable=0, queueCount=40)  # what CXone would say, if it said
    wait_ready(stack.start_worker())

    answers = [route(stack) for _ in range(3)]

    assert [(a["queue"], a["skillId"]) for a in answers] == [("Billing", BILLING)] * 3
    assert all("overflow" not in a for a in answers)
    assert stack.sandbox_stats(summary=True)["api_calls_by_endpoint"]["skill_activity"] >= 1  # it did ask


@pytest.mark.parametrize("stack", [OVERFLOW_STACK], indirect=True)
def test_a_copy_older_than_three_ttls_is_not_used(stack):
    wait_ready(stack.start_worker())
    set_activity(stack, BILLING, agentsAvailable=0)
    first_answer_where(stack, lambda a: a["queue"] == "General Inquiry", "a contact to overflow")

    stack.set_faults(skill_activity_outage_seconds=600)  # CXone's activity stops answering ...
    client = stack.redis()
    # ... and the workers' last copy (Billing without agents) grows older than three TTLs.
    wait_until(
        lambda: not client.exists(redis_keys.CXONE_SKILL_ACTIVITY),
        SEEN_WITHIN_SECONDS,
        what="the last skill activity copy to be too old to use",
    )
    answer = route(stack)

    assert (answer["queue"], answer["skillId"]) == ("Billing", BILLING)
    assert "overflow" not in answer
    assert stack.sandbox_stats(summary=True)["answered_5xx"] >= 1  # the refresh was tried, and failed


RATE_LIMIT = 60
LOAD_STACK = {
    **OVERFLOW_STACK,
    "CXONE_ACTIVITY_TTL_SECONDS": "2",
    "CXONE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
}


@pytest.mark.parametrize("stack", [LOAD_STACK], indirect=True)
def test_two_workers_ask_for_the_activity_once_per_ttl_together_and_inside_the_rate_limit(stack):
    """Two worker processes, 50 routings over about 20 s: one activity call per TTL for both
    workers, and never more CXone calls in 60 s than the limit (CXone would answer 429)."""
    ttl = 2
    stack.set_faults(rate_limit_per_minute=RATE_LIMIT, retry_after=True)
    set_activity(stack, BILLING, agentsAvailable=0)
    workers = [stack.start_worker("w1", concurrency=4), stack.start_worker("w2", concurrency=4)]
    for worker in workers:
        wait_ready(worker)

    started = time.monotonic()
    routing_ids = []
    for n in range(50):
        response = stack.post_webhook(chat_body(f"73{n:05d}", intent="billing_dispute"))
        assert response.status_code == 202, response.text
        routing_ids.append(response.json()["routingId"])
        time.sleep(0.4)  # pacing the offered load, not waiting for anything
    wait_until(
        lambda: all(stack.routing(rid)["state"] == "routed" for rid in routing_ids),
        240,
        what="every routing to be routed",
    )
    duration = time.monotonic() - started

    stats = stack.sandbox_stats()
    activity_calls = stats["api_calls_by_endpoint"]["skill_activity"]
    assert 1 <= activity_calls <= duration / ttl + 1, (activity_calls, duration)
    assert stats["max_calls_in_any_60s"] <= RATE_LIMIT
    assert stats["answered_429"] == 0
    routed_to = [stats["routings"][f"73{n:05d}"][-1]["skillId"] for n in range(50)]
    assert routed_to == [GENERAL] * 50
    print(
        f"\n{len(routing_ids)} routings in {duration:.1f}s by 2 workers: {activity_calls} skill activity "
        f"calls (at most {duration / ttl + 1:.0f} allowed), {stats['accepted_api_calls']} CXone calls, "
        f"max {stats['max_calls_in_any_60s']} in any 60 s (limit {RATE_LIMIT})"
    )
