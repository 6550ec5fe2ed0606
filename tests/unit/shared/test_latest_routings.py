"""LatestRoutings: numbering a contact's routings, recognising resends, and superseding older routings.

Every test runs on fakeredis here, and on a real Redis in
``tests/integration/test_latest_routings_on_redis.py``: the Lua must behave the same on both.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from shared import redis_keys
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.latest import (
    BY_CONTACT_INTENT,
    BY_INPUT_ID,
    CLAIMED,
    DUPLICATE,
    NOT_CHECKED,
    PENDING,
    LatestRoutings,
)

WINDOW = 60


@pytest.fixture
def client() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def contact(client: redis.Redis) -> Iterator[str]:
    """A contact id no other test (or concurrent run on the shared Redis) uses; its keys are removed."""
    contact_id = str(random.randrange(10**15, 10**16))
    yield contact_id
    client.delete(
        redis_keys.contact_seq(contact_id),
        redis_keys.contact_latest(contact_id),
        *[redis_keys.dedupe_input(f"{contact_id}-{n}") for n in range(5)],
    )


@pytest.fixture
def latest(client: redis.Redis) -> LatestRoutings:
    return LatestRoutings(client, keep_seconds=600)


def job(contact: str, intent: str = "billing_dispute", input_n: int | None = None, seq=None) -> RoutingJob:
    return RoutingJob(
        routing_id=new_routing_id(),
        contact_id=contact,
        intent=intent,
        mode="digital",
        queue_name="Billing Disputes",
        input_id=None if input_n is None else f"{contact}-{input_n}",
        received_at=time.time(),
        contact_seq=seq,
    )


def claim(latest: LatestRoutings, routing: RoutingJob, rule: str):
    return latest.claim(routing, rule, contact_window=WINDOW, pending_ttl=30)


def settle(client: redis.Redis, latest: LatestRoutings, routing: RoutingJob, seq: int) -> RoutingJob:
    """What the ingress does once the task is in Redis: the record's create advances the latest."""
    numbered = RoutingJob(**{**routing.to_message(), "contact_seq": seq})
    assert latest.start(numbered) is None  # same Lua function as the create's
    return numbered


def test_routings_of_a_contact_are_numbered_in_order(latest, contact):
    seqs = [claim(latest, job(contact), NOT_CHECKED).seq for _ in range(3)]
    assert seqs == [1, 2, 3]


def test_a_claim_is_pending_until_settled_then_a_resend_is_a_duplicate(client, latest, contact):
    first = job(contact)
    claimed = claim(latest, first, BY_CONTACT_INTENT)
    assert claimed.outcome == CLAIMED

    copy = claim(latest, job(contact), BY_CONTACT_INTENT)
    assert (copy.outcome, copy.routing_id) == (PENDING, first.routing_id)

    settle(client, latest, first, claimed.seq)
    resend = claim(latest, job(contact), BY_CONTACT_INTENT)
    assert (resend.outcome, resend.routing_id) == (DUPLICATE, first.routing_id)


def test_another_intent_is_never_a_resend_and_becomes_the_latest(client, latest, contact):
    billing = job(contact, "billing_dispute")
    settle(client, latest, billing, claim(latest, billing, BY_CONTACT_INTENT).seq)
    sales = job(contact, "sales_inquiry")
    sales_claim = claim(latest, sales, BY_CONTACT_INTENT)
    assert sales_claim.outcome == CLAIMED
    # While sales is pending, billing again is not a resend of the (older) billing routing.
    assert claim(latest, job(contact, "billing_dispute"), BY_CONTACT_INTENT).outcome == CLAIMED


def test_a_released_claim_lets_the_next_copy_claim(client, latest, contact):
    first = job(contact, input_n=1)
    assert claim(latest, first, BY_INPUT_ID).outcome == CLAIMED
    latest.release(first, BY_INPUT_ID)
    assert claim(latest, job(contact, input_n=1), BY_INPUT_ID).outcome == CLAIMED

    no_input = job(contact)
    assert claim(latest, no_input, BY_CONTACT_INTENT).outcome == CLAIMED
    latest.release(no_input, BY_CONTACT_INTENT)
    assert claim(latest, job(contact), BY_CONTACT_INTENT).outcome == CLAIMED


def test_the_input_id_alone_decides(client, latest, contact):
    first = job(contact, input_n=1)
    seq = claim(latest, first, BY_INPUT_ID).seq
    client.set(redis_keys.dedupe_input(first.input_id), first.routing_id)  # settled
    settle(client, latest, first, seq)

    same_input = claim(latest, job(contact, "sales_inquiry", input_n=1), BY_INPUT_ID)
    same_intent_new_input = claim(latest, job(contact, input_n=2), BY_INPUT_ID)

    assert (same_input.outcome, same_input.routing_id) == (DUPLICATE, first.routing_id)
    assert same_intent_new_input.outcome == CLAIMED


def test_start_supersedes_an_older_routing_and_advances_for_a_newer_one(client, latest, contact):
    older = job(contact, seq=1)
    newer = job(contact, "sales_inquiry", seq=2)

    assert latest.start(newer) is None
    assert latest.start(older) == newer.routing_id
    assert latest.start(newer) is None  # its own later attempts run

    now = latest.get(contact)
    assert (now.routing_id, now.seq, now.intent) == (newer.routing_id, 2, "sales_inquiry")


def test_a_message_without_a_number_yields_only_to_a_known_routing(latest, contact):
    unnumbered = job(contact, seq=None)
    assert latest.start(unnumbered) is None
    assert latest.get(contact) is None  # it does not claim to be the latest

    numbered = job(contact, seq=1)
    assert latest.start(numbered) is None
    assert latest.start(unnumbered) == numbered.routing_id


def test_concurrent_copies_without_input_id_make_one_claim(client, latest, contact):
    """Twenty copies of one body without inputId at once: exactly one claims, the others see it."""
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def send_copy() -> None:
        copy = job(contact)
        barrier.wait(5)
        outcomes.append(claim(latest, copy, BY_CONTACT_INTENT).outcome)

    threads = [threading.Thread(target=send_copy) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes) == [CLAIMED] + [PENDING] * 19
