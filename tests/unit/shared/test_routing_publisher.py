"""The publisher: duplicate guard written only after the enqueue, 503 paths, dead-letter replay."""

from __future__ import annotations

import threading
import time
import types

import fakeredis
import pytest
import redis

from shared import redis_keys
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.publisher import (
    PENDING,
    DuplicateInFlight,
    EnqueueFailed,
    NotReplayable,
    Published,
    RoutingPublisher,
    duplicate_keys,
)
from shared.routing.records import RoutingStatusStore


@pytest.fixture
def client():
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def sent():
    return []


@pytest.fixture
def store(client):
    return RoutingStatusStore(client, 3600)


@pytest.fixture
def publisher(client, store, sent):
    return RoutingPublisher(client, store, sent.append, dedupe_window_seconds=600)


def job(contact="c1", intent="sales_inquiry", input_id: str | None = "in-1") -> RoutingJob:
    return RoutingJob(
        routing_id=new_routing_id(),
        contact_id=contact,
        intent=intent,
        mode="digital",
        queue_name="Sales Support",
        input_id=input_id,
        received_at=time.time(),
    )


def test_first_webhook_is_stored_and_sent(publisher, store, sent):
    first = job()
    published = publisher.publish(first)
    assert (published.routing_id, published.duplicate) == (first.routing_id, False)
    assert [m["routing_id"] for m in sent] == [first.routing_id]
    assert store.get(first.routing_id).state == "queued"


def test_resend_with_same_input_id_returns_first_routing_and_sends_nothing(publisher, sent):
    first = publisher.publish(job(input_id="in-7"))
    again = publisher.publish(job(contact="other", intent="other", input_id="in-7"))
    assert again.duplicate and again.routing_id == first.routing_id
    assert len(sent) == 1


def test_same_contact_and_intent_without_input_id_is_a_duplicate(publisher, sent):
    first = publisher.publish(job(input_id=None))
    again = publisher.publish(job(input_id=None))
    other_intent = publisher.publish(job(intent="support_ticket", input_id=None))
    assert again.routing_id == first.routing_id and again.duplicate
    assert not other_intent.duplicate
    assert len(sent) == 2


def test_failed_publish_leaves_no_record_and_no_duplicate_key(client, store):
    def broken_send(message):
        raise redis.ConnectionError("broker down")

    publisher = RoutingPublisher(client, store, broken_send, dedupe_window_seconds=600)
    failing = job()
    with pytest.raises(EnqueueFailed):
        publisher.publish(failing)
    assert store.get(failing.routing_id) is None
    assert all(client.get(key) is None for key in duplicate_keys(failing))
    # The sender's retry is therefore a fresh attempt, not a "duplicate" of nothing.
    ok_sent = []
    retry = RoutingPublisher(client, store, ok_sent.append, 600).publish(job())
    assert not retry.duplicate and len(ok_sent) == 1


def test_duplicate_key_is_written_only_after_the_task_is_sent(client, store):
    seen_during_send = []

    def send(message):
        keys = duplicate_keys(RoutingJob.from_message(message))
        seen_during_send.append([client.get(k) for k in keys])

    RoutingPublisher(client, store, send, 600).publish(job())
    # While sending, the keys are only *claimed* (pending), never settled to the routing id.
    assert all(value.startswith(PENDING.encode()) for value in seen_during_send[0])


def test_a_resend_waits_for_its_in_flight_twin_and_gets_its_id(client, store, monkeypatch):
    # Each step waits for the one before it, so the order holds however the threads are scheduled:
    # the first copy claims the keys and is sending; the resend finds them pending and waits;
    # only then does the first copy's send finish and settle the keys.
    first_is_sending = threading.Event()
    resend_is_waiting = threading.Event()
    sent = []

    def slow_send(message):
        first_is_sending.set()
        assert resend_is_waiting.wait(30), "the resend never waited for its twin"
        sent.append(message)

    def sleep_and_tell(seconds):
        resend_is_waiting.set()  # only the resend sleeps in the publisher: between two claim tries
        time.sleep(seconds)

    monkeypatch.setattr(
        "shared.routing.publisher.time",
        types.SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=sleep_and_tell),
    )
    # The resend's patience is not under test here (see the next test): never let a paused first
    # thread run it out.
    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 60)
    publisher = RoutingPublisher(client, store, slow_send, 600)
    first = job(input_id="twin")
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("first", publisher.publish(first)))
    thread.start()
    assert first_is_sending.wait(30)

    again = publisher.publish(job(input_id="twin"))
    thread.join(30)

    assert not thread.is_alive()
    assert resend_is_waiting.is_set()
    assert result["first"] == Published(first.routing_id, duplicate=False)
    assert again.duplicate and again.routing_id == first.routing_id
    assert len(sent) == 1


def test_a_twin_that_stays_pending_gets_retry_shortly(client, store, monkeypatch):
    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 0.1)
    pending = job(input_id="stuck")
    for key in duplicate_keys(pending):
        client.set(key, PENDING + "someone-else", ex=30)
    with pytest.raises(DuplicateInFlight):
        RoutingPublisher(client, store, [].append, 600).publish(job(input_id="stuck"))


def test_replay_requeues_a_failed_routing_once(publisher, store, sent):
    original = job()
    publisher.publish(original)
    store.mark_failed(original.routing_id, "HTTP 404", original.to_message())
    replayed = publisher.replay(original.routing_id)
    assert replayed.routing_id == original.routing_id
    assert replayed.received_at > original.received_at  # a fresh retry window
    assert store.get(original.routing_id).state == "queued"
    assert store.dead_letter(original.routing_id) is None
    assert [m["routing_id"] for m in sent] == [original.routing_id] * 2
    with pytest.raises(NotReplayable):
        publisher.replay(original.routing_id)


def test_replay_refuses_a_routing_that_was_routed_since(publisher, store, client):
    original = job()
    publisher.publish(original)
    store.mark_failed(original.routing_id, "gave up", original.to_message())
    store.mark_routed(original.routing_id, 1200001)
    with pytest.raises(NotReplayable, match="routed"):
        publisher.replay(original.routing_id)
    assert client.hexists(redis_keys.DEAD_LETTERS, original.routing_id)


def test_a_fast_worker_that_already_routed_it_is_not_overwritten(client, store):
    def send_and_route_at_once(message):
        # The worker takes the task and routes it before the ingress writes the record.
        fast = RoutingJob.from_message(message)
        store.create(fast)
        store.mark_routed(fast.routing_id, 1200001)

    routed = job()
    RoutingPublisher(client, store, send_and_route_at_once, 600).publish(routed)
    assert store.get(routed.routing_id).state == "routed"


def test_a_record_write_failing_after_the_publish_still_answers_with_the_routing(client, store):
    sent = []

    class BrokenStore(RoutingStatusStore):
        def create(self, job, settle_keys=(), settle_ttl=0):
            raise redis.ConnectionError("Redis went away right after the publish")

    publisher = RoutingPublisher(client, BrokenStore(client, 3600), sent.append, 600)
    published = publisher.publish(job())
    # The task is queued, so the sender gets its 202; the worker writes the record itself.
    assert not published.duplicate and len(sent) == 1
