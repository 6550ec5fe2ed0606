"""The backlog's Lua scripts on a real Redis (the unit tests run them on fakeredis's Lua).

Parking, draining in arrival order at the limit with two dispatchers racing, the limiter's backlog
gate, the reserved slot, the lease recovery and the ingress's park-behind-the-backlog.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from shared import redis_keys
from shared.cxone.rate_limiter import CallLimiter
from shared.routing.job import RoutingJob, new_routing_id
from tests.support.cxone import FakeCXone
from tests.support.worker import worker_on_fakes, worker_settings
from worker.context import WorkerContext
from worker.dispatcher import Dispatcher


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def context(client: redis.Redis, limit: int) -> WorkerContext:
    settings = worker_settings(cxone_rate_limit_per_minute=limit)
    return worker_on_fakes(settings, FakeCXone(), client, seed=3)


def jobs(ctx: WorkerContext, count: int) -> list[RoutingJob]:
    start = time.time() - count
    made = []
    for i in range(count):
        job = RoutingJob(
            routing_id=new_routing_id(),
            contact_id=f"8{i:08d}",
            intent="billing_dispute",
            mode="digital",
            queue_name="Billing Disputes",
            received_at=start + i,
            contact_seq=1,
        )
        ctx.store.create(job)
        made.append(job)
    return made


def test_two_dispatchers_drain_in_arrival_order_never_above_the_limit(client: redis.Redis) -> None:
    limit = 40
    first, second = context(client, limit), context(client, limit)
    parked = jobs(first, limit + 10)
    for job in reversed(parked):  # parked newest first: the accepted time decides the order
        assert first.backlog.park(job, "slot", f"task-{job.routing_id}") is not None
    again = first.backlog.park(parked[0], "slot", f"task-{parked[0].routing_id}")  # redelivered
    assert again is not None and again.position == 1  # idempotent: still first
    handed: list[tuple[float, str]] = []
    lock = threading.Lock()

    def publish(message: dict, task_id: str | None) -> None:
        assert task_id == f"task-{message['routing_id']}"  # the original task id, kept
        with lock:
            handed.append((time.monotonic(), message["routing_id"]))

    dispatchers = [Dispatcher(first, publish), Dispatcher(second, publish)]

    def run(dispatcher: Dispatcher) -> None:
        for _ in range(limit * 2):
            dispatcher.dispatch_once()

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    ids = [routing_id for _, routing_id in sorted(handed)]
    assert len(ids) == len(set(ids)) == limit  # each once, and the limit's worth in this window
    assert set(ids) == {job.routing_id for job in parked[:limit]}  # the oldest ones
    assert client.llen(redis_keys.CXONE_RATE_LIMIT) == limit
    assert client.zcard(redis_keys.BACKLOG) == 10


def test_the_gate_the_reserved_slot_and_the_lease_recovery(client: redis.Redis) -> None:
    ctx = context(client, 100)
    limiter = CallLimiter(
        client,
        redis_keys.CXONE_RATE_LIMIT,
        100,
        pause_key=redis_keys.CXONE_PAUSE_UNTIL,
        backlog_key=redis_keys.BACKLOG,
    )
    waiting, other = jobs(ctx, 2)
    ctx.backlog.park(waiting, "slot", "t1")
    ctx.backlog.park(other, "slot", "t2")

    assert limiter.acquire().behind_backlog
    assert limiter.acquire(gated=False).wait == 0

    popped = ctx.backlog.dispatch_next(100, 61_000)
    assert popped.routing_id == waiting.routing_id
    ctx.backlog.dispatched(waiting.routing_id)  # published
    ticket = ctx.backlog.take_pass(waiting.routing_id)
    assert ticket is not None and ticket.reserved
    lost = ctx.backlog.dispatch_next(100, 61_000)  # its dispatcher dies before publishing
    assert lost.routing_id == other.routing_id
    assert ctx.backlog.recover_expired(lease_ms=-1) == [other.routing_id]
    assert ctx.backlog.head() == other.routing_id

    limiter.pause(5)
    assert ctx.backlog.dispatch_next(100, 61_000).paused  # CXone's pause: nothing dispatched


def test_the_ingress_parks_behind_a_non_empty_backlog(client: redis.Redis) -> None:
    ctx = context(client, 100)
    (waiting,) = jobs(ctx, 1)
    fresh = dataclasses.replace(
        waiting, routing_id=new_routing_id(), contact_id="812345678", received_at=time.time()
    )
    assert not ctx.store.create_waiting_if_backlog(fresh, "task", "behind")  # empty: publish instead

    ctx.backlog.park(waiting, "slot", "t")
    assert ctx.store.create_waiting_if_backlog(fresh, "task", "behind")
    assert [m.decode() for m in client.zrange(redis_keys.BACKLOG, 0, -1)] == [
        waiting.routing_id,
        fresh.routing_id,
    ]
    record = ctx.store.get(fresh.routing_id)
    assert record is not None and record.state == "waiting"
