"""The orphan sweeper re-publishes only routings whose task message is really gone."""

from __future__ import annotations

import base64
import json
import time

import pytest

from shared import redis_keys
from worker.orphan_sweeper import BACKLOG_LIMIT, OrphanSweeper, queued_routing_ids, unacked_routing_ids


@pytest.fixture
def republished():
    return []


@pytest.fixture
def sweeper(ctx, republished):
    return OrphanSweeper(ctx, republished.append, interval=5)


def make_stale(ctx, job, seconds_ago: float) -> None:
    old = time.time() - seconds_ago
    ctx.redis.hset(redis_keys.routing(job.routing_id), mapping={"updated_at": old})
    ctx.redis.zadd(redis_keys.OPEN_ROUTINGS, {job.routing_id: old})


def queued_entry(routing_id: str) -> str:
    """A message as kombu's Redis transport pushes it onto the queue's list."""
    body = base64.b64encode(json.dumps([[{"routing_id": routing_id}], {}, {}]).encode()).decode()
    return json.dumps({"body": body, "properties": {"body_encoding": "base64"}, "headers": {}})


def unacked_entry(routing_id: str) -> str:
    """A value as kombu stores it in the ``unacked`` hash: [payload, exchange, routing_key]."""
    return json.dumps([json.loads(queued_entry(routing_id)), "routing", "routing"])


def test_a_stale_open_routing_with_no_message_anywhere_is_republished(ctx, sweeper, make_job, republished):
    lost = make_job()
    make_stale(ctx, lost, sweeper.stale_after + 5)
    assert sweeper.sweep_once() == [lost.routing_id]
    assert [job["routing_id"] for job in republished] == [lost.routing_id]
    # Touched, so the next sweep (after the lock expires) does not resend it again.
    ctx.redis.delete(redis_keys.ORPHAN_SWEEP_LOCK)
    assert sweeper.sweep_once() == []


def test_recent_routed_leased_or_unacked_routings_are_left_alone(ctx, sweeper, make_job, republished):
    recent = make_job()
    routed = make_job()
    make_stale(ctx, routed, sweeper.stale_after + 5)
    ctx.store.mark_routed(routed.routing_id, 1203344)
    leased = make_job()
    make_stale(ctx, leased, sweeper.stale_after + 5)
    ctx.redis.set(redis_keys.contact_lease(leased.contact_id), f"{leased.routing_id} token", ex=60)
    restorable = make_job()
    make_stale(ctx, restorable, sweeper.stale_after + 5)
    ctx.redis.hset("unacked", "tag-1", unacked_entry(restorable.routing_id))
    assert recent and sweeper.sweep_once() == []
    assert republished == []


def test_a_superseded_routing_is_never_resurrected(ctx, sweeper, make_job, republished):
    older = make_job(contact_seq=1)
    make_stale(ctx, older, sweeper.stale_after + 5)
    ctx.store.mark_superseded(older.routing_id, "newer-routing")
    # Even if a stale index entry survived, a superseded record is terminal.
    ctx.redis.zadd(redis_keys.OPEN_ROUTINGS, {older.routing_id: time.time() - sweeper.stale_after - 5})
    assert sweeper.sweep_once() == []
    assert republished == []


def test_the_contact_lease_held_by_another_routing_does_not_hide_a_lost_one(
    ctx, sweeper, make_job, republished
):
    lost = make_job()
    make_stale(ctx, lost, sweeper.stale_after + 5)
    ctx.redis.set(redis_keys.contact_lease(lost.contact_id), "another-routing token", ex=60)
    assert sweeper.sweep_once() == [lost.routing_id]


def test_a_routing_whose_message_waits_in_the_queue_is_not_copied(ctx, sweeper, make_job, republished):
    # No worker ran for a while: the record is stale but its message is still queued. A copy would
    # get a new task id, so it would escape an operator's revoke of the queued one.
    waiting = make_job()
    make_stale(ctx, waiting, sweeper.stale_after + 5)
    ctx.redis.lpush("routing", queued_entry(waiting.routing_id), b"not json")

    assert sweeper.sweep_once() == []
    assert queued_routing_ids(ctx.redis) == {waiting.routing_id}


def test_a_backlog_means_stale_records_are_waiting_not_lost(ctx, sweeper, make_job, republished):
    waiting = make_job()
    make_stale(ctx, waiting, sweeper.stale_after + 5)
    ctx.redis.rpush("routing", *[b"msg"] * BACKLOG_LIMIT)
    assert sweeper.sweep_once() == []


def test_only_one_worker_sweeps_per_interval(ctx, make_job, republished):
    lost = make_job()
    first = OrphanSweeper(ctx, republished.append, interval=5)
    make_stale(ctx, lost, first.stale_after + 5)
    second = OrphanSweeper(ctx, republished.append, interval=5)
    assert first.sweep_once() == [lost.routing_id]
    make_stale(ctx, lost, first.stale_after + 5)
    assert second.sweep_once() == []  # the lock is still held for this interval


def test_unacked_parsing_ignores_foreign_messages(ctx):
    ctx.redis.hset(
        "unacked",
        mapping={"a": unacked_entry("r-1"), "b": "not json", "c": json.dumps([{"body": "e30="}, "x", "y"])},
    )
    assert unacked_routing_ids(ctx.redis) == {"r-1"}
