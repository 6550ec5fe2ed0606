"""The publisher: which webhooks are resends, the claim settled only after the enqueue, the contact's
routing numbers, 503 paths, dead-letter replay."""

from __future__ import annotations

import dataclasses
import threading
import time
import types

import fakeredis
import pytest
import redis

from shared import redis_keys
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.latest import BY_CONTACT_INTENT, BY_INPUT_ID, NOT_CHECKED, PENDING_PREFIX, LatestRoutings
from shared.routing.publisher import (
    DuplicateInFlight,
    EnqueueFailed,
    NotReplayable,
    Published,
    RoutingPublisher,
    resend_rule,
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
    return RoutingPublisher(
        client, store, sent.append, dedupe_window_seconds=600, contact_intent_window_seconds=60
    )


@pytest.fixture
def latest(client, store):
    return LatestRoutings(client, store.ttl_seconds)


def job(contact="7000001", intent="sales_inquiry", input_id: str | None = "in-1") -> RoutingJob:
    return RoutingJob(
        routing_id=new_routing_id(),
        contact_id=contact,
        intent=intent,
        mode="digital",
        queue_name="Sales Support",
        input_id=input_id,
        received_at=time.time(),
    )


def test_first_webhook_is_stored_and_sent(publisher, store, sent, latest):
    first = job()
    published = publisher.publish(first)
    assert (published.routing_id, published.duplicate) == (first.routing_id, False)
    assert [m["routing_id"] for m in sent] == [first.routing_id]
    assert sent[0]["contact_seq"] == 1  # the contact's first routing
    assert store.get(first.routing_id).state == "queued"
    assert latest.get("7000001").routing_id == first.routing_id


def test_behind_a_backlog_a_new_routing_waits_in_it_without_a_task(publisher, store, sent, latest, client):
    # Routings accepted earlier wait for a CXone call slot: a new one joins the end of the line
    # (record, backlog and duplicate key in one step), no task that would only be parked.
    client.zadd(redis_keys.BACKLOG, {"accepted-earlier": time.time() - 60})
    first = job()

    published = publisher.publish(first)

    assert (published.routing_id, published.duplicate) == (first.routing_id, False)
    assert sent == []
    record = store.get(first.routing_id)
    assert record.state == "waiting" and record.task_id and record.job["contact_seq"] == 1
    assert [m.decode() for m in client.zrange(redis_keys.BACKLOG, 0, -1)] == [
        "accepted-earlier",
        first.routing_id,
    ]
    assert latest.get("7000001").routing_id == first.routing_id
    resend = publisher.publish(job())  # same inputId: the same routing, nothing new
    assert (resend.routing_id, resend.duplicate) == (first.routing_id, True)
    assert client.zcard(redis_keys.BACKLOG) == 2


def test_behind_a_backlog_the_ingress_script_joins_it_instead_of_queueing_a_task(
    one_trip, store, latest, client
):
    # The ingress's one script (envelopes) makes the same choice in the same round trip.
    client.zadd(redis_keys.BACKLOG, {"accepted-earlier": time.time() - 60})
    first = job()

    published = one_trip.publish(first)

    assert (published.routing_id, published.duplicate) == (first.routing_id, False)
    assert client.llen("routing") == 0  # no task message
    record = store.get(first.routing_id)
    assert record.state == "waiting" and record.task_id and record.waiting_for
    assert [m.decode() for m in client.zrange(redis_keys.BACKLOG, 0, -1)] == [
        "accepted-earlier",
        first.routing_id,
    ]
    assert latest.get("7000001").routing_id == first.routing_id
    assert one_trip.publish(job()).routing_id == first.routing_id  # settled: a resend finds it

    client.delete(redis_keys.BACKLOG)  # drained: the next routing's task is queued at once
    later = one_trip.publish(job(contact="7000002", input_id="in-after-the-drain"))
    assert [q["message"]["routing_id"] for q in _queued_messages(client)] == [later.routing_id]
    assert store.get(later.routing_id).state == "queued"


# ------------------------------------------------------------------------- which webhooks are resends


@pytest.mark.parametrize(
    ("input_id", "input_window", "contact_window", "rule"),
    [
        ("in-1", 600, 60, BY_INPUT_ID),
        ("in-1", 600, 0, BY_INPUT_ID),  # with an inputId, only the inputId decides
        ("in-1", 0, 60, NOT_CHECKED),  # ... even when its window is off
        (None, 600, 60, BY_CONTACT_INTENT),
        (None, 0, 60, BY_CONTACT_INTENT),
        (None, 600, 0, NOT_CHECKED),
    ],
)
def test_the_resend_rule_is_the_input_id_when_there_is_one(input_id, input_window, contact_window, rule):
    assert resend_rule(job(input_id=input_id), input_window, contact_window) == rule


def test_resend_with_same_input_id_returns_first_routing_and_sends_nothing(publisher, sent):
    first = publisher.publish(job(input_id="in-7"))
    again = publisher.publish(job(contact="7000002", intent="other", input_id="in-7"))
    assert again.duplicate and again.routing_id == first.routing_id
    assert len(sent) == 1


def test_with_input_ids_a_customer_changing_their_mind_back_gets_three_routings(publisher, sent):
    billing = publisher.publish(job(intent="billing_dispute", input_id="in-1"))
    sales = publisher.publish(job(intent="sales_inquiry", input_id="in-2"))
    billing_again = publisher.publish(job(intent="billing_dispute", input_id="in-3"))

    assert not any(p.duplicate for p in (billing, sales, billing_again))
    assert [m["intent"] for m in sent] == ["billing_dispute", "sales_inquiry", "billing_dispute"]
    assert [m["contact_seq"] for m in sent] == [1, 2, 3]
    # A resend of the first input is still a resend of the first routing, whatever came since.
    resend = publisher.publish(job(intent="billing_dispute", input_id="in-1"))
    assert resend.duplicate and resend.routing_id == billing.routing_id
    assert len(sent) == 3


def test_with_input_ids_the_same_intent_within_seconds_is_not_a_resend(publisher, sent):
    """Two inputs of the same intent (the customer said it twice) are two inputs: inputId decides."""
    publisher.publish(job(intent="billing_dispute", input_id="in-1"))
    second = publisher.publish(job(intent="billing_dispute", input_id="in-2"))
    assert not second.duplicate and len(sent) == 2


def test_same_contact_and_intent_without_input_id_is_a_duplicate(publisher, sent):
    first = publisher.publish(job(input_id=None))
    again = publisher.publish(job(input_id=None))
    other_intent = publisher.publish(job(intent="support_ticket", input_id=None))
    assert again.routing_id == first.routing_id and again.duplicate
    assert not other_intent.duplicate
    assert len(sent) == 2


def test_without_input_id_a_customer_changing_their_mind_back_gets_three_routings(publisher, sent):
    billing = publisher.publish(job(intent="billing_dispute", input_id=None))
    sales = publisher.publish(job(intent="sales_inquiry", input_id=None))
    billing_again = publisher.publish(job(intent="billing_dispute", input_id=None))
    resend = publisher.publish(job(intent="billing_dispute", input_id=None))

    assert not any(p.duplicate for p in (billing, sales, billing_again))
    assert len({billing.routing_id, sales.routing_id, billing_again.routing_id}) == 3
    # The third sent twice: the resend is the third routing (the contact's latest), not the first.
    assert resend.duplicate and resend.routing_id == billing_again.routing_id
    assert [m["contact_seq"] for m in sent] == [1, 2, 3]


def test_without_input_id_the_same_intent_after_the_window_is_a_new_routing(publisher, sent, clock):
    first = publisher.publish(job(input_id=None))
    clock.advance(59)
    assert publisher.publish(job(input_id=None)).routing_id == first.routing_id
    clock.advance(2)  # 61 s after the first webhook: no sender retries that late

    later = publisher.publish(job(input_id=None))

    assert not later.duplicate and len(sent) == 2


def test_without_input_id_another_contact_is_never_a_resend(publisher, sent):
    publisher.publish(job(contact="7000001", input_id=None))
    assert not publisher.publish(job(contact="7000002", input_id=None)).duplicate
    assert [m["contact_seq"] for m in sent] == [1, 1]  # numbered per contact


def test_windows_of_zero_turn_each_rule_off(client, store):
    sent = []
    off = RoutingPublisher(
        client, store, sent.append, dedupe_window_seconds=0, contact_intent_window_seconds=0
    )
    for _ in range(2):
        assert not off.publish(job(input_id="in-1")).duplicate
        assert not off.publish(job(input_id=None)).duplicate
    assert [m["contact_seq"] for m in sent] == [1, 2, 3, 4]  # still numbered: the newest wins


@pytest.mark.parametrize("input_id", ["in-1", None])
def test_failed_publish_leaves_no_record_and_no_duplicate_claim(client, store, latest, input_id):
    def broken_send(message):
        raise redis.ConnectionError("broker down")

    publisher = RoutingPublisher(client, store, broken_send, dedupe_window_seconds=600)
    failing = job(input_id=input_id)
    with pytest.raises(EnqueueFailed):
        publisher.publish(failing)
    assert store.get(failing.routing_id) is None
    assert client.get(redis_keys.dedupe_input("in-1")) is None
    assert not client.exists(redis_keys.contact_latest(failing.contact_id))  # no pending, no latest
    # The sender's retry is therefore a fresh attempt, not a "duplicate" of nothing.
    ok_sent = []
    retry = RoutingPublisher(client, store, ok_sent.append, 600).publish(job(input_id=input_id))
    assert not retry.duplicate and len(ok_sent) == 1


def test_the_input_id_claim_is_settled_only_after_the_task_is_sent(client, store):
    seen_during_send = []

    def send(message):
        seen_during_send.append(client.get(redis_keys.dedupe_input(message["input_id"])))

    first = job(input_id="in-9")
    RoutingPublisher(client, store, send, 600).publish(first)
    # While sending, the key is only *claimed* (pending), never settled to the routing id.
    assert seen_during_send == [(PENDING_PREFIX + first.routing_id + "#1").encode()]
    assert client.get(redis_keys.dedupe_input("in-9")) == first.routing_id.encode()


def test_without_input_id_the_claim_is_pending_on_the_contact_until_the_task_is_sent(client, store):
    seen_during_send = []
    latest_key = redis_keys.contact_latest("7000001")

    def send(message):
        seen_during_send.append(client.hmget(latest_key, ["pending", "routing_id"]))

    first = job(input_id=None)
    RoutingPublisher(client, store, send, 600).publish(first)

    # During the send: a pending claim, and no settled latest routing yet.
    assert seen_during_send == [[first.routing_id.encode(), None]]
    assert client.hmget(latest_key, ["pending", "routing_id"]) == [None, first.routing_id.encode()]


@pytest.mark.parametrize("input_id", ["twin", None])
def test_a_resend_waits_for_its_in_flight_twin_and_gets_its_id(client, store, monkeypatch, input_id):
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
    first = job(input_id=input_id)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("first", publisher.publish(first)))
    thread.start()
    assert first_is_sending.wait(30)

    again = publisher.publish(job(input_id=input_id))
    thread.join(30)

    assert not thread.is_alive()
    assert resend_is_waiting.is_set()
    assert result["first"] == Published(first.routing_id, duplicate=False)
    assert again.duplicate and again.routing_id == first.routing_id
    assert len(sent) == 1


def test_a_twin_that_stays_pending_gets_retry_shortly(client, store, monkeypatch):
    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 0.1)
    client.set(redis_keys.dedupe_input("stuck"), PENDING_PREFIX + "someone-else", ex=30)
    with pytest.raises(DuplicateInFlight):
        RoutingPublisher(client, store, [].append, 600).publish(job(input_id="stuck"))


def test_a_pending_claim_of_another_intent_is_the_contacts_latest(client, store):
    """billing, then sales still being enqueued, then billing again: not a resend of the first."""
    sent = []
    publisher = RoutingPublisher(client, store, sent.append, 600)
    billing = publisher.publish(job(intent="billing_dispute", input_id=None))
    latest_key = redis_keys.contact_latest("7000001")
    client.hset(
        latest_key,
        mapping={
            "pending": "sales-being-enqueued",
            "pending_seq": 2,
            "pending_intent": "sales_inquiry",
            "pending_until": time.time() + 30,
        },
    )
    client.set(redis_keys.contact_seq("7000001"), 2)

    billing_again = publisher.publish(job(intent="billing_dispute", input_id=None))

    assert not billing_again.duplicate and billing_again.routing_id != billing.routing_id
    assert sent[-1]["contact_seq"] == 3


def test_numbers_never_go_back_when_the_counter_expired_before_the_latest(client, store, sent, publisher):
    first = job(input_id=None)
    publisher.publish(first)
    client.delete(redis_keys.contact_seq(first.contact_id))

    publisher.publish(job(intent="billing_dispute", input_id=None))

    assert [m["contact_seq"] for m in sent] == [1, 2]


# ------------------------------------------------------------------------- replay


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


def test_a_replay_becomes_the_contacts_newest_routing(publisher, store, sent, latest):
    failed = job(intent="billing_dispute", input_id="in-1")
    publisher.publish(failed)
    store.mark_failed(failed.routing_id, "HTTP 404", sent[0])
    newer = job(intent="sales_inquiry", input_id="in-2")
    publisher.publish(newer)
    assert latest.get("7000001").routing_id == newer.routing_id

    replayed = publisher.replay(failed.routing_id)

    # An operator decided: the replay is numbered after every routing of the contact.
    assert replayed.contact_seq == 3 and sent[-1]["contact_seq"] == 3
    assert store.get(failed.routing_id).job["contact_seq"] == 3
    assert latest.get("7000001").routing_id == failed.routing_id


def test_a_superseded_routing_is_not_replayable(publisher, store, sent):
    older = job()
    publisher.publish(older)
    store.mark_superseded(older.routing_id, "newer-routing")
    with pytest.raises(NotReplayable, match="not in the dead-letter list"):
        publisher.replay(older.routing_id)  # superseded is no failure: never dead-lettered
    # Nor through a dead letter left behind (its replay's clean-up was lost, then a newer
    # routing superseded the replay): superseded is final.
    store.mark_failed(older.routing_id, "HTTP 404", sent[0])
    store.mark_superseded(older.routing_id, "newer-routing")
    with pytest.raises(NotReplayable, match="superseded"):
        publisher.replay(older.routing_id)
    assert len(sent) == 1


def test_replay_refuses_a_routing_that_was_routed_since(publisher, store, client):
    original = job()
    publisher.publish(original)
    store.mark_failed(original.routing_id, "gave up", original.to_message())
    store.mark_routed(original.routing_id, 1200001)
    with pytest.raises(NotReplayable, match="routed"):
        publisher.replay(original.routing_id)
    assert client.hexists(redis_keys.DEAD_LETTERS, original.routing_id)


# ------------------------------------------------------------------------- after the publish


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


# ------------------------------------------------------------------------- one round trip (the ingress)


def _celery():
    from shared.settings import load_settings
    from shared.task_queue import make_celery

    return make_celery(load_settings({"REDIS_URL": "redis://localhost:6379/3"}))


@pytest.fixture
def one_trip(client, store):
    from shared.task_envelope import TaskEnvelopes

    def failing_send(message):
        raise AssertionError("the one-script path never publishes with send")

    return RoutingPublisher(client, store, failing_send, 600, 60, envelopes=TaskEnvelopes(_celery()))


def _queued_messages(client) -> list[dict]:
    import base64
    import json

    out = []
    for raw in client.lrange("routing", 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append({"envelope": envelope, "message": args[0]})
    return out


def test_one_script_queues_the_task_with_its_record_and_settles_the_claim(one_trip, client, store, latest):
    pubsub = client.pubsub()
    pubsub.subscribe("/3.celeryev/task.sent")
    pubsub.get_message(timeout=1)
    first = job(input_id="in-one")
    published = one_trip.publish(first)
    assert not published.duplicate
    [queued] = _queued_messages(client)
    assert queued["message"]["routing_id"] == first.routing_id
    assert queued["message"]["contact_seq"] == 1
    assert queued["envelope"]["headers"]["task"] == "router.route_contact"
    assert store.get(first.routing_id).state == "queued"
    assert client.get(redis_keys.dedupe_input("in-one")) == first.routing_id.encode()  # settled
    assert latest.get(first.contact_id).routing_id == first.routing_id
    event = pubsub.get_message(timeout=1)
    assert event is not None and event["type"] == "message"  # Flower's task-sent
    # A resend finds the settled routing: nothing more is queued.
    again = one_trip.publish(job(input_id="in-one"))
    assert (again.routing_id, again.duplicate) == (first.routing_id, True)
    assert len(_queued_messages(client)) == 1


def test_one_script_failing_leaves_nothing_and_releases_the_claim(client, store):
    from shared.task_envelope import TaskEnvelopes

    class BrokenStore(RoutingStatusStore):
        def create(self, job, settle_keys=(), settle_ttl=0, *, task=None, waiting_for=""):
            raise redis.ConnectionError("Redis went away")

    publisher = RoutingPublisher(
        client, BrokenStore(client, 3600), [].append, 600, envelopes=TaskEnvelopes(_celery())
    )
    with pytest.raises(EnqueueFailed):
        publisher.publish(job(input_id="in-broken"))
    assert client.get(redis_keys.dedupe_input("in-broken")) is None  # the sender's retry is no resend
    assert client.llen("routing") == 0


# ------------------------------------------------------------- a failover in the middle of a publish


def _claim_then_die(latest, first, rule, ttl=600):
    """What a request stopped by a failover leaves on the new primary: its claim, nothing after."""
    claim = latest.claim(first, rule, contact_window=60, pending_ttl=ttl)
    assert claim.outcome == "claimed"
    return claim


@pytest.mark.parametrize("input_id", ["in-lost", None])
def test_a_resend_takes_over_a_claim_whose_request_died_under_the_same_id(
    client, store, sent, latest, monkeypatch, input_id
):
    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 0.05)
    first = job(input_id=input_id)
    rule = BY_INPUT_ID if input_id else BY_CONTACT_INTENT
    claim = _claim_then_die(latest, first, rule)
    publisher = RoutingPublisher(client, store, sent.append, 600, 60)

    retry = publisher.publish(job(input_id=input_id))

    assert retry == Published(first.routing_id, duplicate=True)
    assert [(m["routing_id"], m["contact_seq"]) for m in sent] == [(first.routing_id, claim.seq)]
    assert store.get(first.routing_id).state == "queued"
    assert latest.get(first.contact_id).routing_id == first.routing_id
    # settled: the next resend is a plain duplicate, nothing more is sent
    assert publisher.publish(job(input_id=input_id)).routing_id == first.routing_id
    assert len(sent) == 1


@pytest.mark.parametrize("input_id", ["in-lost-script", None])
def test_the_ingress_takes_over_in_its_one_script_with_the_lost_requests_id_and_number(
    client, store, latest, monkeypatch, input_id
):
    """The ingress queues with its record in one script (envelopes): a take-over goes the same way,
    under the lost request's routing id and number, and queues exactly one task."""
    from shared.task_envelope import TaskEnvelopes

    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 0.05)
    first = job(input_id=input_id)
    claim = _claim_then_die(latest, first, BY_INPUT_ID if input_id else BY_CONTACT_INTENT)

    def failing_send(message):
        raise AssertionError("the one-script path never publishes with send")

    publisher = RoutingPublisher(client, store, failing_send, 600, 60, envelopes=TaskEnvelopes(_celery()))
    retry = publisher.publish(job(input_id=input_id))

    assert retry == Published(first.routing_id, duplicate=True)
    assert [(q["message"]["routing_id"], q["message"]["contact_seq"]) for q in _queued_messages(client)] == [
        (first.routing_id, claim.seq)
    ]
    assert store.get(first.routing_id).state == "queued"
    assert publisher.publish(job(input_id=input_id)).routing_id == first.routing_id
    assert len(_queued_messages(client)) == 1


def test_a_taken_over_routing_whose_record_exists_is_not_published_again(
    client, store, sent, latest, monkeypatch
):
    """Its record exists: the message went out before it (Redis replicates in order); the worker
    that wrote it, or the orphan sweeper, carries it out. Publishing again would be noise."""
    monkeypatch.setattr("shared.routing.publisher.IN_FLIGHT_WAIT_SECONDS", 0.05)
    first = job(input_id="in-half")
    claim = _claim_then_die(latest, first, BY_INPUT_ID)
    store.create(dataclasses.replace(first, contact_seq=claim.seq))

    retry = RoutingPublisher(client, store, sent.append, 600).publish(job(input_id="in-half"))

    assert retry == Published(first.routing_id, duplicate=True)
    assert sent == []
    assert client.get(redis_keys.dedupe_input("in-half")) == first.routing_id.encode()


def test_a_pending_claim_lives_as_long_as_the_resend_window(client, store, sent):
    def send(message):
        sent.append(client.ttl(redis_keys.dedupe_input(message["input_id"])))

    RoutingPublisher(client, store, send, 600).publish(job(input_id="in-ttl"))
    assert 590 < sent[0] <= 600


class _Refuse:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        raise redis.ConnectionError("0 of the 1 replica(s) confirmed")


def test_a_routing_the_replicas_did_not_confirm_is_answered_enqueue_failed(client, store, sent):
    refuse = _Refuse()
    publisher = RoutingPublisher(client, store, sent.append, 600, confirm=refuse)
    first = job(input_id="in-wait")

    with pytest.raises(EnqueueFailed, match="replicas"):
        publisher.publish(first)
    # kept on the primary: the retry is a resend, confirmed again before its 202
    with pytest.raises(EnqueueFailed):
        publisher.publish(job(input_id="in-wait"))
    assert refuse.calls == 2
    assert len(sent) == 1
    confirmed = RoutingPublisher(client, store, sent.append, 600, confirm=lambda: 1)
    assert confirmed.publish(job(input_id="in-wait")) == Published(first.routing_id, duplicate=True)
    assert len(sent) == 1
