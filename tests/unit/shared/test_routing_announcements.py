"""The outcome announcement: every terminal transition of the store publishes it once, in the same
transaction as the record; nothing else does."""

from __future__ import annotations

import json

import fakeredis
import pytest

from shared import redis_keys
from shared.routing.announcements import Announcement, parse_announcement
from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, ROUTED, RoutingStatusStore

TTL = 3600


def make_job(routing_id: str) -> RoutingJob:
    return RoutingJob(
        routing_id=routing_id,
        contact_id="7000001",
        intent="sales_inquiry",
        mode="digital",
        queue_name="Sales Support",
        received_at=1_700_000_000.0,
    )


@pytest.fixture
def store(fake_redis: fakeredis.FakeRedis) -> RoutingStatusStore:
    return RoutingStatusStore(fake_redis, ttl_seconds=TTL)


@pytest.fixture
def listener(fake_redis: fakeredis.FakeRedis):
    pubsub = fake_redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_keys.ROUTING_OUTCOMES)
    pubsub.get_message(timeout=0.1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()


def announcements(pubsub) -> list[dict]:
    out = []
    while (message := pubsub.get_message(timeout=0.05)) is not None:
        out.append(json.loads(message["data"]))
    return out


def test_mark_routed_announces_the_outcome_once(store, listener) -> None:
    store.create(make_job("r-routed"))

    store.mark_routed("r-routed", 1200001)

    assert announcements(listener) == [{"routingId": "r-routed", "state": ROUTED}]


def test_mark_failed_announces_the_outcome_once(store, listener) -> None:
    job = make_job("r-failed")
    store.create(job)

    store.mark_failed("r-failed", "CXone answered 404: unknown contact", job.to_message())

    assert announcements(listener) == [{"routingId": "r-failed", "state": FAILED}]


def test_states_on_the_way_are_not_announced(store, listener) -> None:
    store.create(make_job("r-open"))
    store.mark_retrying("r-open", "CXone answered 503", 1_700_000_010.0)
    store.touch("r-open")

    assert announcements(listener) == []


def test_the_announcement_goes_in_the_transaction_that_settles_the_record(
    store, fake_redis: fakeredis.FakeRedis
) -> None:
    """Whoever is woken by the announcement reads the settled record: the PUBLISH is queued in the
    same MULTI/EXEC as the HSET, after it."""
    store.create(make_job("r-atomic"))
    commands: list[tuple] = []
    original = fake_redis.pipeline

    def recording_pipeline(*args, **kwargs):
        pipe = original(*args, **kwargs)
        execute = pipe.execute

        def execute_and_record(*a, **k):
            commands.extend((pipe.transaction, c[0][0]) for c in pipe.command_stack)
            return execute(*a, **k)

        pipe.execute = execute_and_record
        return pipe

    fake_redis.pipeline = recording_pipeline

    store.mark_routed("r-atomic", 1200001)

    names = [name for _, name in commands]
    assert all(transaction for transaction, _ in commands)
    assert "PUBLISH" in names and names.index("HSET") < names.index("PUBLISH")


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"routingId": "abc", "state": "routed"}', Announcement("abc", "routed")),
        ('{"routingId": "abc", "state": "failed"}', Announcement("abc", "failed")),
        (b"not json", None),
        (b'{"state": "routed"}', None),
        (b"[1, 2]", None),
    ],
)
def test_parse_announcement(data, expected) -> None:
    assert parse_announcement(data) == expected
