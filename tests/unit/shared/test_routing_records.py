"""RoutingStatusStore on fakeredis: the record through its states, the dead letters, the open index."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest

from shared import redis_keys
from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, QUEUED, RETRYING, ROUTED, SUPERSEDED, TERMINAL, RoutingStatusStore

TTL = 7 * 24 * 3600


def make_job(routing_id: str = "r-1", received_at: float = 0.0, **fields: object) -> RoutingJob:
    values: dict = {
        "routing_id": routing_id,
        "contact_id": "7000042",
        "intent": "sales_inquiry",
        "mode": "digital",
        "queue_name": "Sales Support",
        "score": 0.9,
        "channel": "webchat3",
        "received_at": received_at,
    }
    values.update(fields)
    return RoutingJob(**values)


@pytest.fixture
def store(fake_redis: fakeredis.FakeRedis) -> RoutingStatusStore:
    return RoutingStatusStore(fake_redis, ttl_seconds=TTL)


def test_create_writes_a_queued_record_with_a_ttl_and_indexes_it(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    job = make_job(received_at=1_700_000_000.25)

    store.create(job)
    record = store.get("r-1")

    assert record is not None
    assert record.state == QUEUED
    assert record.job == job.to_message()
    assert RoutingJob.from_message(record.job) == job  # the stored job can be replayed
    assert record.received_at == 1_700_000_000.25
    assert record.attempts == 0
    assert record.last_error is None and record.skill_id is None
    assert 0 < fake_redis.ttl(redis_keys.routing("r-1")) <= TTL
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, "r-1") == 1_700_000_000.25


def test_a_job_without_received_at_is_stamped_now(store: RoutingStatusStore) -> None:
    before = time.time()
    store.create(make_job())

    record = store.get("r-1")
    assert record is not None
    assert before <= record.received_at <= time.time()


def test_an_unknown_routing_is_none(store: RoutingStatusStore) -> None:
    assert store.get("nope") is None


def test_mark_retrying_counts_attempts_and_keeps_the_error(store: RoutingStatusStore) -> None:
    store.create(make_job())

    assert store.mark_retrying("r-1", "skills: HTTP 503", next_attempt_at=1_800_000_000) == 1
    assert store.mark_retrying("r-1", "rate limiter", 1_800_000_010, counts_as_attempt=False) == 1
    assert store.mark_retrying("r-1", "x" * 2000, next_attempt_at=1_800_000_020) == 2

    record = store.get("r-1")
    assert record is not None
    assert record.state == RETRYING
    assert record.attempts == 2
    assert record.last_error == "x" * 500  # capped
    assert record.next_attempt_at == 1_800_000_020


def test_mark_routed_closes_the_routing(store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis) -> None:
    store.create(make_job())
    store.mark_retrying("r-1", "timeout", time.time() + 5)

    store.mark_routed("r-1", 4242)

    record = store.get("r-1")
    assert record is not None
    assert record.state == ROUTED
    assert record.skill_id == 4242
    assert record.routed_at is not None and record.routed_at <= time.time()
    assert record.attempts == 1  # history kept
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, "r-1") is None


def test_mark_failed_closes_the_routing_and_dead_letters_the_job(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    job = make_job()
    store.create(job)

    store.mark_failed("r-1", "queue 'Sales Support': missing", job.to_message())

    record = store.get("r-1")
    assert record is not None
    assert record.state == FAILED
    assert record.failed_reason == "queue 'Sales Support': missing"
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, "r-1") is None
    dead = json.loads(fake_redis.hget(redis_keys.DEAD_LETTERS, "r-1"))
    assert dead["job"] == job.to_message()
    assert dead["reason"] == "queue 'Sales Support': missing"
    assert dead["failed_at"] <= time.time()
    assert RoutingJob.from_message(dead["job"]) == job  # replayable as it is


def test_mark_superseded_closes_the_routing_without_a_dead_letter(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    store.create(make_job())
    store.mark_retrying("r-1", "HTTP 503", time.time() + 5)

    store.mark_superseded("r-1", "r-2")

    record = store.get("r-1")
    assert record is not None
    assert (record.state, record.superseded_by) == (SUPERSEDED, "r-2")
    assert SUPERSEDED in TERMINAL
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, "r-1") is None
    assert fake_redis.hget(redis_keys.DEAD_LETTERS, "r-1") is None  # nothing to replay
    assert store.claim_replay(make_job()) is False  # and no replay of it either


def test_create_makes_a_numbered_routing_its_contacts_latest_if_newest(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    store.create(make_job("r-2", contact_id="7000042", contact_seq=2, intent="sales_inquiry"))
    store.create(make_job("r-1", contact_id="7000042", contact_seq=1, intent="billing_dispute"))
    store.create(make_job("r-old", contact_id="7000042"))  # unnumbered: an old message

    latest = fake_redis.hgetall(redis_keys.contact_latest("7000042"))
    assert latest[b"routing_id"] == b"r-2"
    assert (latest[b"seq"], latest[b"intent"]) == (b"2", b"sales_inquiry")


def test_open_older_than_lists_only_old_open_routings(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    now = time.time()
    store.create(make_job("old-queued", received_at=now - 1000))
    store.create(make_job("old-retrying", received_at=now - 900))
    store.mark_retrying("old-retrying", "HTTP 502", now + 10)
    store.create(make_job("old-routed", received_at=now - 1000))
    store.mark_routed("old-routed", 1)
    store.create(make_job("old-failed", received_at=now - 1000))
    store.mark_failed("old-failed", "HTTP 404", {})
    store.create(make_job("old-superseded", received_at=now - 1000))
    store.mark_superseded("old-superseded", "fresh")
    store.create(make_job("fresh", received_at=now - 10))
    store.create(make_job("old-expired", received_at=now - 1000))
    fake_redis.delete(redis_keys.routing("old-expired"))  # its record's TTL ran out

    stuck = store.open_older_than(300)

    assert sorted(r.routing_id for r in stuck) == ["old-queued", "old-retrying"]
    assert {r.routing_id: r.state for r in stuck} == {"old-queued": QUEUED, "old-retrying": RETRYING}
    # The expired one is dropped from the index as well.
    assert fake_redis.zscore(redis_keys.OPEN_ROUTINGS, "old-expired") is None
    assert len(store.open_older_than(300, limit=1)) == 1


COMMON = {"routingId", "state", "intent", "queue", "contactId", "mode", "receivedAt", "updatedAt", "attempts"}


def test_to_public_of_a_queued_routing(store: RoutingStatusStore) -> None:
    store.create(make_job(received_at=1_700_000_000.5))

    body = store.get("r-1").to_public()  # type: ignore[union-attr]

    assert set(body) == COMMON
    assert body["routingId"] == "r-1"
    assert body["state"] == "queued"
    assert body["intent"] == "sales_inquiry"
    assert body["queue"] == "Sales Support"
    assert body["contactId"] == "7000042"
    assert body["mode"] == "digital"
    assert body["receivedAt"] == "2023-11-14T22:13:20.500Z"
    assert body["attempts"] == 0
    json.dumps(body)  # serialisable as it is


def test_to_public_says_where_the_contact_id_came_from_when_the_message_did(
    store: RoutingStatusStore,
) -> None:
    store.create(make_job(contact_source="data.spawnedContactId"))
    store.create(make_job("r-old"))  # a message published before contactSource existed

    assert store.get("r-1").to_public()["contactSource"] == "data.spawnedContactId"  # type: ignore[union-attr]
    assert set(store.get("r-old").to_public()) == COMMON  # type: ignore[union-attr]


def test_a_task_message_without_contact_source_still_loads() -> None:
    old = make_job().to_message()
    del old["contact_source"]

    assert RoutingJob.from_message(old).contact_source is None
    assert RoutingJob.from_message({**old, "contact_source": "sessionId"}).contact_source == "sessionId"


def test_to_public_of_a_retrying_routing(store: RoutingStatusStore) -> None:
    store.create(make_job())
    store.mark_retrying("r-1", "skills: HTTP 503", next_attempt_at=1_700_000_060)

    body = store.get("r-1").to_public()  # type: ignore[union-attr]

    assert set(body) == COMMON | {"lastError", "nextAttemptAt"}
    assert body["state"] == "retrying"
    assert body["lastError"] == "skills: HTTP 503"
    assert body["nextAttemptAt"] == "2023-11-14T22:14:20.000Z"
    assert body["attempts"] == 1


def test_to_public_of_a_routed_routing(store: RoutingStatusStore) -> None:
    store.create(make_job(queue_name=None, skill_id=1200042))
    store.mark_routed("r-1", 1200042)

    body = store.get("r-1").to_public()  # type: ignore[union-attr]

    assert set(body) == COMMON | {"skillId", "routedAt"}
    assert body["queue"] == "skill 1200042"
    assert body["skillId"] == 1200042
    assert body["routedAt"].endswith("Z")


def test_to_public_of_a_superseded_routing(store: RoutingStatusStore) -> None:
    store.create(make_job())
    store.mark_superseded("r-1", "r-2")

    body = store.get("r-1").to_public()  # type: ignore[union-attr]

    assert set(body) == COMMON | {"supersededBy"}
    assert (body["state"], body["supersededBy"]) == ("superseded", "r-2")


def test_to_public_of_a_failed_routing(store: RoutingStatusStore) -> None:
    store.create(make_job())
    store.mark_retrying("r-1", "HTTP 500", time.time())
    store.mark_failed("r-1", "retry window exhausted", {})

    body = store.get("r-1").to_public()  # type: ignore[union-attr]

    assert set(body) == COMMON | {"reason", "lastError"}
    assert body["reason"] == "retry window exhausted"
    assert body["lastError"] == "HTTP 500"
    assert "skillId" not in body and "nextAttemptAt" not in body


READ = {"status": "open", "routingQueueId": "rq-1", "assignee": None, "conclusion": "already in the queue"}


def test_a_routing_confirmed_by_reading_the_contact_back_says_so_and_what_was_read(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    store.create(make_job())
    fake_redis.set(redis_keys.routing_put_started("r-1"), "1800000000.0")

    store.mark_routed("r-1", 1200042, confirmed_by="contact read-back", read_back=READ)

    body = store.get("r-1").to_public()  # type: ignore[union-attr]
    assert set(body) == COMMON | {"skillId", "routedAt", "confirmedBy", "contactReadBack"}
    assert (body["confirmedBy"], body["contactReadBack"]) == ("contact read-back", READ)
    assert not fake_redis.exists(redis_keys.routing_put_started("r-1"))  # moot once routed


def test_a_failure_confirmed_by_reading_the_contact_back_keeps_the_put_marker_for_a_replay(
    store: RoutingStatusStore, fake_redis: fakeredis.FakeRedis
) -> None:
    store.create(make_job())
    fake_redis.set(redis_keys.routing_put_started("r-1"), "1800000000.0")
    closed = {**READ, "status": "closed"}

    store.mark_failed(
        "r-1", "the contact is closed in CXone", {}, confirmed_by="contact read-back", read_back=closed
    )

    body = store.get("r-1").to_public()  # type: ignore[union-attr]
    assert set(body) == COMMON | {"reason", "lastError", "confirmedBy", "contactReadBack"}
    assert body["contactReadBack"] == closed
    assert fake_redis.exists(redis_keys.routing_put_started("r-1"))
    store.claim_replay(make_job())  # a replay starts from a clean record
    assert "confirmedBy" not in store.get("r-1").to_public()  # type: ignore[union-attr]
