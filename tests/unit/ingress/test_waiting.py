"""Waiting for the outcome: what the sender asks for (``?wait=``, ``Prefer: wait=``), the waiter
(woken by the announcement, never by polling, never losing a wake-up), and the answers."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from ingress.answers import answer_from_public
from ingress.waiting import InvalidWait, OutcomeWaiter, WaitRequest, prefer_wait, requested_wait
from shared.routing.job import RoutingJob
from shared.routing.records import RoutingRecord, RoutingStatusStore

CAP = 7.0

# ------------------------------------------------------------------------- what is asked for


@pytest.mark.parametrize(
    "query, prefer, expected",
    [
        ({}, [], None),
        ({"wait": ["5"]}, [], WaitRequest(5.0, "query")),
        ({"wait": ["0"]}, [], WaitRequest(0.0, "query")),
        ({"wait": ["2.5"]}, [], WaitRequest(2.5, "query")),
        ({"wait": [".5"]}, [], WaitRequest(0.5, "query")),
        ({"wait": [" 3 "]}, [], WaitRequest(3.0, "query")),
        ({"wait": ["30"]}, [], WaitRequest(CAP, "query")),  # more is capped
        ({"wait": ["1e999"]}, [], WaitRequest(CAP, "query")),
        ({}, ["wait=5"], WaitRequest(5.0, "prefer")),
        ({}, ["respond-async, wait=5"], WaitRequest(5.0, "prefer")),
        ({}, ["respond-async", "wait=4"], WaitRequest(4.0, "prefer")),  # several headers
        ({}, ["Wait = 3"], WaitRequest(3.0, "prefer")),  # names are case-insensitive, BWS allowed
        ({}, ['wait="6"'], WaitRequest(6.0, "prefer")),  # a quoted word
        ({}, ["wait=2;foo=bar, return=minimal"], WaitRequest(2.0, "prefer")),
        ({}, ["wait=2, wait=6"], WaitRequest(2.0, "prefer")),  # only the first counts (RFC 7240 §2)
        ({}, ['foo="a, wait=1", wait=3'], WaitRequest(3.0, "prefer")),  # commas inside quotes
        ({}, ["respond-async, return=minimal"], None),
        ({}, ["waiting=5"], None),
        ({"wait": ["1"]}, ["wait=6"], WaitRequest(1.0, "query")),  # the query wins
    ],
)
def test_requested_wait(query, prefer, expected):
    assert requested_wait(query, prefer, CAP) == expected


@pytest.mark.parametrize(
    "query, prefer",
    [
        ({"wait": ["abc"]}, []),
        ({"wait": ["-1"]}, []),
        ({"wait": [""]}, []),
        ({"wait": ["nan"]}, []),
        ({"wait": ["inf"]}, []),
        ({"wait": ["5s"]}, []),
        ({"wait": ["1", "2"]}, []),
        ({}, ["wait=soon"]),
        ({}, ["wait"]),
        ({}, ["respond-async, wait=-3"]),
    ],
)
def test_anything_else_is_refused(query, prefer):
    with pytest.raises(InvalidWait):
        requested_wait(query, prefer, CAP)


def test_the_cap_can_be_lowered():
    assert requested_wait({"wait": ["5"]}, [], 0.5) == WaitRequest(0.5, "query")


def test_preference_applied_is_only_answered_to_a_prefer_header():
    assert WaitRequest(5.0, "prefer").preference_applied() == {"Preference-Applied": "wait=5"}
    assert WaitRequest(2.5, "prefer").preference_applied() == {"Preference-Applied": "wait=2.5"}
    assert WaitRequest(5.0, "query").preference_applied() == {}


def test_prefer_wait_with_an_escaped_quote():
    assert prefer_wait(['wait="\\"1"']) == '"1'


# ------------------------------------------------------------------------- the answers


def _public(state: str, **extra) -> dict:
    return {
        "routingId": "r1",
        "state": state,
        "intent": "sales_inquiry",
        "queue": "Sales Support",
        "contactId": "7000001",
        "mode": "digital",
        **extra,
    }


def test_routed_is_200_with_where_and_when():
    body, status = answer_from_public(_public("routed", skillId=1200001, routedAt="2026-01-01T00:00:00.000Z"))
    assert status == 200
    assert body["status"] == "routed" and body["skillId"] == 1200001 and "state" not in body


def test_failed_is_200_with_the_reason():
    body, status = answer_from_public(_public("failed", reason="CXone answered 404"))
    assert (status, body["status"], body["reason"]) == (200, "failed", "CXone answered 404")


def test_superseded_is_a_failure_naming_the_newer_routing():
    body, status = answer_from_public(_public("superseded", supersededBy="r2"))
    assert (status, body["status"], body["reason"]) == (200, "failed", "superseded by r2")
    assert body["supersededBy"] == "r2"


@pytest.mark.parametrize("state", ["queued", "retrying", "waiting"])
def test_open_states_are_202(state):
    body, status = answer_from_public(_public(state, lastError="CXone answered 503"))
    assert (status, body["status"]) == (202, state)


def test_extra_public_fields_pass_through():
    overflow = {"from": "Sales Support", "rule": "queue over 20"}
    body, _ = answer_from_public(_public("routed", overflow=overflow, skillId=1))
    assert body["overflow"] == overflow


# ------------------------------------------------------------------------- the waiter


def _job(routing_id: str) -> RoutingJob:
    return RoutingJob(
        routing_id=routing_id,
        contact_id="7000001",
        intent="sales_inquiry",
        mode="digital",
        queue_name="Sales Support",
        received_at=time.time(),
    )


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def store(fake) -> RoutingStatusStore:
    return RoutingStatusStore(fake, ttl_seconds=3600)


@pytest.fixture
def waiter(fake):
    waiter = OutcomeWaiter(fake, reconnect_pause_seconds=0.05)
    yield waiter
    waiter.stop()


class CountingReads:
    """``store.get``, counting the reads (the waiter must not poll)."""

    def __init__(self, store: RoutingStatusStore):
        self.store = store
        self.count = 0

    def __call__(self, routing_id: str) -> RoutingRecord | None:
        self.count += 1
        return self.store.get(routing_id)


def _in_thread(target) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_finished_routing_is_answered_at_once(store, waiter):
    store.create(_job("r-done"))
    store.mark_routed("r-done", 1200001)
    reads = CountingReads(store)

    waited = waiter.wait_for("r-done", 5.0, reads)

    assert waited.finished and waited.redis_answered and waited.record.state == "routed"
    assert reads.count == 1


def test_the_announcement_wakes_the_request_and_it_reads_once_more(store, waiter):
    store.create(_job("r-wake"))
    reads = CountingReads(store)
    thread, out = _in_thread(lambda: waiter.wait_for("r-wake", 30.0, reads))
    _wait_for(lambda: waiter.subscribed.is_set() and waiter.waiting_count() == 1)
    reads_before = reads.count
    started = time.monotonic()

    store.mark_routed("r-wake", 1200001)
    thread.join(10)

    assert out and out[0].finished and out[0].record.state == "routed"
    assert time.monotonic() - started < 5  # woken, not timed out (30 s)
    assert reads.count == reads_before + 1  # one read after the wake-up: no polling
    assert waiter.waiting_count() == 0


def test_another_routings_outcome_does_not_answer_this_one(store, waiter):
    store.create(_job("r-mine"))
    store.create(_job("r-other"))
    thread, out = _in_thread(lambda: waiter.wait_for("r-mine", 0.6, store.get))
    _wait_for(lambda: waiter.subscribed.is_set() and waiter.waiting_count() == 1)

    store.mark_routed("r-other", 1200001)
    thread.join(10)

    assert out and not out[0].finished and out[0].record.state == "queued"


def test_time_up_answers_the_current_state(store, waiter):
    store.create(_job("r-slow"))
    store.mark_retrying("r-slow", "CXone answered 503", time.time() + 5)

    waited = waiter.wait_for("r-slow", 0.2, store.get)

    assert not waited.finished and waited.redis_answered
    assert waited.record.state == "retrying" and waited.record.last_error == "CXone answered 503"


def test_two_requests_for_one_routing_are_both_woken(store, waiter):
    store.create(_job("r-twice"))
    threads = [_in_thread(lambda: waiter.wait_for("r-twice", 30.0, store.get)) for _ in range(2)]
    _wait_for(lambda: waiter.subscribed.is_set() and waiter.waiting_count() == 2)

    store.mark_failed("r-twice", "CXone answered 404: unknown contact", _job("r-twice").to_message())
    for thread, _ in threads:
        thread.join(10)

    assert [out[0].record.state for _, out in threads] == ["failed", "failed"]


def test_an_announcement_before_the_subscription_is_not_lost(store, fake):
    """The routing finishes while the subscriber is not subscribed yet: the request reads the record
    again when the subscription is established, so it is answered long before its time is up."""
    waiter = OutcomeWaiter(fake, reconnect_pause_seconds=0.05)
    store.create(_job("r-early"))
    first_read = threading.Event()
    release = threading.Event()

    def read(routing_id):
        record = store.get(routing_id)
        if not first_read.is_set():
            first_read.set()
            release.wait(10)  # hold the request between its first read and its sleep
        return record

    original_run = waiter._run
    subscribe_now = threading.Event()

    def delayed_run():
        subscribe_now.wait(10)
        original_run()

    waiter._run = delayed_run
    try:
        thread, out = _in_thread(lambda: waiter.wait_for("r-early", 30.0, read))
        first_read.wait(10)
        store.mark_routed("r-early", 1200001)  # announced to nobody: no subscription yet
        release.set()
        subscribe_now.set()
        thread.join(10)
        assert out and out[0].finished
    finally:
        waiter.stop()


def test_redis_gone_while_waiting_ends_the_wait_at_once(store, fake, waiter):
    store.create(_job("r-gone"))
    thread, out = _in_thread(lambda: waiter.wait_for("r-gone", 30.0, store.get))
    _wait_for(lambda: waiter.subscribed.is_set() and waiter.waiting_count() == 1)
    started = time.monotonic()

    fake.connection_pool.connection_kwargs["server"].connected = False
    thread.join(10)

    assert out, "the wait did not end"
    assert time.monotonic() - started < 5
    assert not out[0].redis_answered and out[0].record.state == "queued"


def test_the_subscriber_comes_back_with_redis(store, fake, waiter):
    store.create(_job("r-back"))
    waiter.wait_for("r-back", 0.0, store.get)  # starts the subscriber
    _wait_for(waiter.subscribed.is_set)
    server = fake.connection_pool.connection_kwargs["server"]
    server.connected = False
    _wait_for(lambda: not waiter.subscribed.is_set())

    server.connected = True
    _wait_for(waiter.subscribed.is_set)
    thread, out = _in_thread(lambda: waiter.wait_for("r-back", 30.0, store.get))
    _wait_for(lambda: waiter.waiting_count() == 1)
    store.mark_routed("r-back", 1200001)
    thread.join(10)

    assert out and out[0].finished


def test_beyond_max_waiting_a_request_is_answered_without_waiting(store, fake):
    waiter = OutcomeWaiter(fake, reconnect_pause_seconds=0.05, max_waiting=1)
    store.create(_job("r-first"))
    store.create(_job("r-second"))
    try:
        thread, out = _in_thread(lambda: waiter.wait_for("r-first", 30.0, store.get))
        _wait_for(lambda: waiter.waiting_count() == 1)
        started = time.monotonic()

        second = waiter.wait_for("r-second", 30.0, store.get)

        assert time.monotonic() - started < 5  # answered at once, not after 30 s
        assert second.redis_answered and second.record.state == "queued"
        store.mark_routed("r-first", 1200001)
        thread.join(10)
        assert out and out[0].finished  # the one that waits is not disturbed
    finally:
        waiter.stop()
