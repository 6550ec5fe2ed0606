"""The backlog on fakeredis: parking is idempotent and keeps what the message held; draining goes
in arrival order, one routing per free slot, never above the limit, across several dispatchers;
nothing is lost between pop and publish; a waiting routing replaced or revoked spends no slot."""

from __future__ import annotations

import dataclasses
import time

import fakeredis
import pytest

from shared import redis_keys
from shared.cxone.errors import RateLimited, Transient
from shared.cxone.rate_limiter import CallLimiter
from shared.routing.backlog import Backlog, BacklogPass, carrying, current_pass
from shared.routing.records import RETRYING, ROUTED, SUPERSEDED, WAITING
from tests.support.worker import worker_on_fakes
from worker.dispatcher import Dispatcher
from worker.orphan_sweeper import OrphanSweeper
from worker.revocations import REVOKED_REASON, record_revoked
from worker.routing import RetryLater, process

WINDOW_MS = 61_000


@pytest.fixture
def published():
    return []


@pytest.fixture
def dispatcher(ctx, published):
    return Dispatcher(ctx, lambda message, task_id: published.append((message["routing_id"], task_id)))


def park_all(ctx, make_job, count: int, *, start: float | None = None):
    """``count`` routings accepted one second apart (oldest first), each parked by its task."""
    start = start if start is not None else time.time() - count
    jobs = [make_job(received_at=start + i, contact_id=f"7{i:08d}") for i in range(count)]
    for i, job in enumerate(reversed(jobs)):  # parked in the reverse order: the score decides
        assert ctx.backlog.park(job, "waiting for a CXone call slot", f"task-{i}") is not None
    return jobs


def drain(dispatcher, steps: int) -> list[str]:
    routed = []
    for _ in range(steps):
        routing_id, _sleep = dispatcher.dispatch_once()
        if routing_id is not None:
            routed.append(routing_id)
    return routed


def test_parking_keeps_the_message_and_is_idempotent(ctx, make_job):
    job = make_job()
    first = ctx.backlog.park(job, "waiting for a CXone call slot", "task-1")
    time.sleep(0.01)
    again = ctx.backlog.park(job, "waiting for a CXone call slot", "task-1")  # message redelivered

    assert first is not None and again is not None
    assert again.since == first.since and again.position == 1
    assert ctx.redis.zrange(redis_keys.BACKLOG, 0, -1, withscores=True) == [
        (job.routing_id.encode(), pytest.approx(job.received_at))
    ]
    record = ctx.store.get(job.routing_id)
    assert record.state == WAITING and record.task_id == "task-1" and record.job == job.to_message()
    public = record.to_public()
    assert public["state"] == "waiting" and public["waitingSince"] and public["waitingFor"]


def test_a_routing_that_ended_is_not_parked(ctx, make_job):
    job = make_job()
    ctx.store.mark_routed(job.routing_id, 42)

    assert ctx.backlog.park(job, "slot", "t") is None
    assert ctx.redis.zcard(redis_keys.BACKLOG) == 0


def test_draining_goes_in_arrival_order_and_never_above_the_limit(ctx, make_job, dispatcher, published):
    limit = ctx.settings.cxone_rate_limit_per_minute
    jobs = park_all(ctx, make_job, limit + 5)

    routed = drain(dispatcher, limit + 20)

    # Exactly the limit's worth in this window, first accepted first, with their own task ids.
    assert routed == [job.routing_id for job in jobs[:limit]]
    assert [task_id for _, task_id in published][:2] == [f"task-{limit + 4}", f"task-{limit + 3}"]
    assert ctx.redis.llen(redis_keys.CXONE_RATE_LIMIT) == limit
    assert ctx.redis.zcard(redis_keys.BACKLOG) == 5
    assert ctx.redis.hlen(redis_keys.BACKLOG_DISPATCHING) == 0
    _, sleep = dispatcher.dispatch_once()
    assert 0 < sleep <= 1.0  # a full window: it waits for the next slot


def test_two_dispatchers_never_hand_out_the_same_routing(settings, cxone, redis_server, make_job, ctx):
    other = worker_on_fakes(settings, cxone, fakeredis.FakeRedis(server=redis_server), seed=1)
    jobs = park_all(ctx, make_job, 30)
    seen: list[str] = []
    first = Dispatcher(ctx, lambda message, _: seen.append(message["routing_id"]))
    second = Dispatcher(other, lambda message, _: seen.append(message["routing_id"]))

    for _ in range(20):
        first.dispatch_once()
        second.dispatch_once()

    assert sorted(seen) == sorted(job.routing_id for job in jobs)
    assert len(seen) == len(set(seen))


def test_new_routings_wait_behind_the_backlog_and_a_dispatched_one_uses_its_reserved_slot(
    ctx, make_job, dispatcher, published
):
    limiter = CallLimiter(
        ctx.redis,
        redis_keys.CXONE_RATE_LIMIT,
        100,
        pause_key=redis_keys.CXONE_PAUSE_UNTIL,
        backlog_key=redis_keys.BACKLOG,
    )
    (waiting,) = park_all(ctx, make_job, 1)

    refused = limiter.acquire()
    assert refused.behind_backlog and refused.wait > 0  # a newcomer does not overtake it

    assert drain(dispatcher, 1) == [waiting.routing_id]
    ticket = ctx.backlog.take_pass(waiting.routing_id)
    assert ticket == BacklogPass(reserved=True)
    assert ctx.backlog.take_pass(waiting.routing_id) is None  # taken once
    assert ctx.store.get(waiting.routing_id).left_backlog_at is not None
    with carrying(ticket):
        assert current_pass() is ticket
    assert current_pass() is None
    assert limiter.acquire().wait == 0  # backlog empty: anyone may take a slot again


def test_a_dispatched_routing_runs_without_waiting_again(ctx, cxone, make_job, dispatcher, published):
    (job,) = park_all(ctx, make_job, 1)
    drain(dispatcher, 1)

    assert process(job, ctx, task_id=published[0][1]) is None
    assert ctx.store.get(job.routing_id).state == ROUTED
    assert len(cxone.calls_to("route_digital")) == 1


def test_a_routing_popped_by_a_dispatcher_that_died_goes_back_in_its_place(ctx, make_job):
    jobs = park_all(ctx, make_job, 3)
    popped = ctx.backlog.dispatch_next(100, WINDOW_MS)  # ... and the dispatcher dies here
    assert popped.routing_id == jobs[0].routing_id
    assert ctx.backlog.depth() == 3  # still counted while on its way

    assert ctx.backlog.recover_expired(lease_ms=60_000) == []  # lease not expired yet
    assert ctx.backlog.recover_expired(lease_ms=-1) == [jobs[0].routing_id]

    assert ctx.backlog.head() == jobs[0].routing_id  # first in line again
    assert ctx.redis.hlen(redis_keys.BACKLOG_DISPATCHING) == 0


def test_a_replaced_waiting_routing_is_settled_without_a_slot(ctx, make_job, dispatcher, published):
    older = make_job(contact_seq=1)
    ctx.backlog.park(older, "slot", "t-old")
    newer = make_job(contact_seq=2, intent="sales_inquiry", queue_name="Sales Support")
    ctx.latest.start(newer)

    assert drain(dispatcher, 3) == []
    assert ctx.store.get(older.routing_id).state == SUPERSEDED
    assert ctx.redis.llen(redis_keys.CXONE_RATE_LIMIT) == 0  # no slot spent
    assert published == []


def test_a_revoked_waiting_routing_is_failed_not_dispatched(ctx, make_job, dispatcher, published):
    job = make_job()
    ctx.backlog.park(job, "slot", "task-revoked")
    record_revoked(ctx.redis, ["task-revoked"], 3600)

    assert drain(dispatcher, 2) == []
    assert ctx.store.get(job.routing_id).failed_reason == REVOKED_REASON
    assert ctx.store.dead_letter(job.routing_id) is not None
    assert published == []


def test_a_task_refused_behind_the_backlog_parks_at_its_arrival_place(ctx, cxone, make_job):
    jobs = park_all(ctx, make_job, 2, start=time.time() - 100)
    late = make_job(received_at=time.time())
    cxone.fail_next("route_digital", RateLimited(0.001, behind_backlog=True))

    parked = process(late, ctx, task_id="late")

    assert parked is not None and parked.position == 3
    assert ctx.backlog.head() == jobs[0].routing_id


def test_the_ingress_parks_a_new_routing_behind_a_non_empty_backlog(ctx, make_job):
    park_all(ctx, make_job, 1)
    job = dataclasses.replace(make_job(store=False), contact_seq=1)

    assert ctx.store.create_waiting_if_backlog(job, "task-x", "behind the backlog")
    record = ctx.store.get(job.routing_id)
    assert record.state == WAITING and record.task_id == "task-x"
    assert ctx.redis.zcard(redis_keys.BACKLOG) == 2
    assert ctx.latest.get(job.contact_id).routing_id == job.routing_id

    ctx.redis.delete(redis_keys.BACKLOG)
    fresh = make_job(store=False)
    assert not ctx.store.create_waiting_if_backlog(fresh, "task-y", "behind the backlog")
    assert ctx.store.get(fresh.routing_id) is None  # nothing written: the caller publishes


def test_the_orphan_sweeper_leaves_waiting_routings_alone(ctx, make_job):
    job = make_job()
    ctx.backlog.park(job, "slot", "t")
    old = time.time() - 3600
    ctx.redis.hset(redis_keys.routing(job.routing_id), mapping={"updated_at": old})
    ctx.redis.zadd(redis_keys.OPEN_ROUTINGS, {job.routing_id: old})
    republished: list = []

    assert OrphanSweeper(ctx, republished.append).sweep_once() == []

    ctx.redis.zrem(redis_keys.BACKLOG, job.routing_id)  # lost from the backlog: then it is an orphan
    ctx.redis.delete(redis_keys.ORPHAN_SWEEP_LOCK)
    assert OrphanSweeper(ctx, republished.append).sweep_once() == [job.routing_id]


def test_backlog_depth_counts_waiting_and_dispatching(fake_redis):
    backlog = Backlog(fake_redis, 3600)
    fake_redis.zadd(redis_keys.BACKLOG, {"a": 1.0, "b": 2.0})
    fake_redis.hset(redis_keys.BACKLOG_DISPATCHING, "c", "1 0.5")

    assert backlog.depth() == 3
    assert backlog.oldest_since() == 1.0
    assert backlog.contains(["a", "c", "z"]) == {"a", "c"}


def test_time_spent_in_the_backlog_does_not_use_up_the_retry_window(
    ctx, cxone, make_job, dispatcher, published
):
    # Accepted long ago (a backlog that took longer than the window to drain): a transient error
    # right after it left the backlog is retried, not failed.
    job = make_job(received_at=time.time() - ctx.settings.routing_retry_window_seconds - 300)
    ctx.backlog.park(job, "slot", "t")
    assert drain(dispatcher, 1) == [job.routing_id]
    cxone.fail_next("route_digital", Transient("503", status=503))

    assert isinstance(process(job, ctx, task_id="t"), RetryLater)
    assert ctx.store.get(job.routing_id).state == RETRYING
    # The Celery retry of that error runs without the pass: the window still counts from there.
    cxone.fail_next("route_digital", Transient("503", status=503))
    assert isinstance(process(job, ctx, task_id="t", attempt=1), RetryLater)


def test_a_routing_parked_long_ago_and_just_dispatched_is_not_taken_for_lost(
    ctx, make_job, dispatcher, published
):
    job = make_job()
    ctx.backlog.park(job, "slot", "t")
    old = time.time() - 3600
    ctx.redis.hset(redis_keys.routing(job.routing_id), mapping={"updated_at": old})
    ctx.redis.zadd(redis_keys.OPEN_ROUTINGS, {job.routing_id: old})

    assert drain(dispatcher, 1) == [job.routing_id]  # on its way: not in the backlog any more

    assert OrphanSweeper(ctx, lambda job: None).sweep_once() == []
