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


# ---------------------------------------------------------------- CXone's pause (429 Retry-After)


def test_a_pause_refuses_every_caller_with_the_time_left(connect: ClientFactory, unique_key: str) -> None:
    pause_key = unique_key + ":pause"
    workers = [CallLimiter(connect(), unique_key, limit=100, pause_key=pause_key) for _ in range(3)]

    assert workers[0].pause(30) == pytest.approx(30, abs=0.05)
    answers = [worker.acquire() for worker in workers]

    assert all(answer.paused for answer in answers)
    assert all(29.0 < answer.wait <= 30.0 for answer in answers)
    assert connect().llen(unique_key) == 0  # a refusal takes no slot
    assert 29.0 < workers[1].pause_left() <= 30.0
    connect().delete(pause_key)


def test_a_pause_is_only_ever_made_longer(connect: ClientFactory, unique_key: str) -> None:
    limiter = CallLimiter(connect(), unique_key, limit=100, pause_key=unique_key + ":pause")

    limiter.pause(90)
    assert 89.0 < limiter.pause(10) <= 90.0  # a shorter Retry-After from another 429 changes nothing
    assert 119.0 < limiter.pause(120) <= 120.0
    assert 119.0 < limiter.acquire().wait <= 120.0
    connect().delete(unique_key + ":pause")


def test_after_a_pause_the_window_paces_as_before(connect: ClientFactory, unique_key: str) -> None:
    pause_key = unique_key + ":pause"
    limiter = CallLimiter(
        connect(), unique_key, limit=2, window_seconds=1, guard_seconds=0, pause_key=pause_key
    )
    assert limiter.acquire().wait == 0.0  # one call before the 429

    limiter.pause(0.3)
    assert limiter.acquire().paused
    time.sleep(0.35)

    assert limiter.acquire().wait == 0.0  # the pause is over: a slot
    refused = limiter.acquire()  # and the window still counts the call made before the pause
    assert not refused.paused and 0 < refused.wait <= 1.0
    assert connect().pttl(pause_key) == -2  # the pause key expired by itself


def test_a_limiter_without_a_pause_key_ignores_pauses(connect: ClientFactory, unique_key: str) -> None:
    paused = CallLimiter(connect(), unique_key + ":a", limit=5, pause_key=unique_key + ":pause")
    paused.pause(30)
    other = CallLimiter(connect(), unique_key + ":b", limit=5)

    assert other.try_acquire() == 0.0
    assert other.pause_left() == 0.0
    with pytest.raises(ValueError, match="no pause key"):
        other.pause(1)
    client = connect()
    client.delete(unique_key + ":a", unique_key + ":b", unique_key + ":pause")
