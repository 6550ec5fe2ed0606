"""CallLimiter, on fakeredis and on the real Redis (the Lua must behave the same on both)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import fakeredis
import pytest
import redis

from shared.cxone.rate_limiter import CallLimiter

from .conftest import REAL_REDIS_URL

# Makes a new connection to the backend under test: one per simulated worker process.
ClientFactory = Callable[[], redis.Redis]


@pytest.fixture(params=["fakeredis", "real-redis"])
def connect(request: pytest.FixtureRequest, unique_key: str) -> Iterator[ClientFactory]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield lambda: fakeredis.FakeRedis(server=server)
        return
    request.getfixturevalue("real_redis")  # fails loudly when the real Redis is unreachable
    opened: list[redis.Redis] = []

    def factory() -> redis.Redis:
        client = redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        opened.append(client)
        return client

    yield factory
    factory().delete(unique_key)
    for client in opened:
        client.close()


def test_a_burst_gets_exactly_limit_grants(connect: ClientFactory, unique_key: str) -> None:
    limiter = CallLimiter(connect(), unique_key, limit=5, window_seconds=60, guard_seconds=1)

    grants = [limiter.try_acquire() for _ in range(5)]
    refused = limiter.try_acquire()

    assert grants == [0.0] * 5
    # The burst took milliseconds, so the first slot frees close to window + guard from now.
    assert 59.0 < refused <= 61.0


def test_refusals_do_not_use_up_slots(connect: ClientFactory, unique_key: str) -> None:
    limiter = CallLimiter(connect(), unique_key, limit=2, window_seconds=1, guard_seconds=0)
    limiter.try_acquire()
    limiter.try_acquire()

    waits = [limiter.try_acquire() for _ in range(5)]

    assert all(0 < wait <= 1.0 for wait in waits)
    assert waits == sorted(waits, reverse=True)  # counting down, never pushed back


def test_slots_come_back_after_the_window(connect: ClientFactory, unique_key: str) -> None:
    limiter = CallLimiter(connect(), unique_key, limit=3, window_seconds=1, guard_seconds=0)
    assert [limiter.try_acquire() for _ in range(3)] == [0.0] * 3

    wait = limiter.try_acquire()
    assert 0 < wait <= 1.0

    time.sleep(wait + 0.02)
    assert limiter.try_acquire() == 0.0


def test_the_key_expires_when_idle(connect: ClientFactory, unique_key: str) -> None:
    client = connect()
    CallLimiter(client, unique_key, limit=3, window_seconds=1, guard_seconds=0.5).try_acquire()

    assert 0 < client.pttl(unique_key) <= 1500


def test_concurrent_workers_never_exceed_the_limit_in_any_window(
    connect: ClientFactory, unique_key: str
) -> None:
    limit, window, duration, workers = 4, 0.5, 1.3, 8
    granted: list[float] = []
    record = threading.Lock()
    barrier = threading.Barrier(workers)

    def worker() -> None:
        limiter = CallLimiter(connect(), unique_key, limit=limit, window_seconds=window, guard_seconds=0)
        barrier.wait()
        deadline = time.time() + duration
        while time.time() < deadline:
            wait = limiter.try_acquire()
            if wait == 0:
                with record:
                    granted.append(time.time())
            else:
                time.sleep(wait)  # every worker wakes at the window edge: the worst contention

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    granted.sort()
    # Times are taken just after the grant returned, so allow a few ms of scheduling noise.
    tolerance = 0.05
    for first, later in zip(granted, granted[limit:], strict=False):
        assert later - first >= window - tolerance, (
            f"{limit + 1} grants within {later - first:.3f}s (window {window}s): {granted}"
        )
    # And it does keep granting: a fresh batch in each of the windows the run spans.
    assert len(granted) >= limit * int(duration / window)
