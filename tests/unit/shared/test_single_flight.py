"""get_or_compute / delete_if_equal on fakeredis, plus the key names both sides rely on."""

from __future__ import annotations

import functools
import threading
import time

import fakeredis
import pytest
import redis.lock

from shared import redis_keys
from shared.cxone.single_flight import SingleFlightTimeout, delete_if_equal, get_or_compute
from tests.support.clock import FakeClock


def test_computes_once_then_serves_the_cache(fake_redis: fakeredis.FakeRedis, clock: FakeClock) -> None:
    calls: list[int] = []

    def compute() -> tuple[str, float]:
        calls.append(1)
        return "value-1", 30

    first = get_or_compute(fake_redis, "k", compute, lock_timeout=2, wait_timeout=2)
    second = get_or_compute(fake_redis, "k", compute, lock_timeout=2, wait_timeout=2)

    assert (first, second) == ("value-1", "value-1")
    assert len(calls) == 1
    assert 29_000 < fake_redis.pttl("k") <= 30_000  # the clock stands still: no pause ages it
    assert not fake_redis.exists("k:lock")  # released


def test_a_stale_value_is_recomputed(fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.set("k", "old")

    value = get_or_compute(
        fake_redis, "k", lambda: ("new", 10), lock_timeout=2, wait_timeout=2, is_fresh=lambda v: v != "old"
    )

    assert value == "new"
    assert fake_redis.get("k") == b"new"


def test_a_non_positive_ttl_is_returned_but_not_stored(fake_redis: fakeredis.FakeRedis) -> None:
    assert get_or_compute(fake_redis, "k", lambda: ("v", 0), lock_timeout=2, wait_timeout=2) == "v"
    assert not fake_redis.exists("k")


def test_a_failing_compute_releases_the_lock(fake_redis: fakeredis.FakeRedis) -> None:
    def boom() -> tuple[str, float]:
        raise RuntimeError("CXone down")

    with pytest.raises(RuntimeError):
        get_or_compute(fake_redis, "k", boom, lock_timeout=5, wait_timeout=5)

    assert not fake_redis.exists("k:lock")
    # No wait at all: the next caller takes the lock at its first try, not after the old one expired.
    assert get_or_compute(fake_redis, "k", lambda: ("v", 5), lock_timeout=5, wait_timeout=0) == "v"


class CountingLock(redis.lock.Lock):
    """A redis-py lock that counts the threads it has refused (they are now waiting for it)."""

    refused_threads: set[int]
    refused_changed: threading.Condition

    def do_acquire(self, token) -> bool:
        acquired = super().do_acquire(token)
        if not acquired:
            with self.refused_changed:
                self.refused_threads.add(threading.get_ident())
                self.refused_changed.notify_all()
        return acquired


def test_concurrent_misses_compute_once(redis_server: fakeredis.FakeServer) -> None:
    workers = 8
    computed: list[int] = []
    results: list[str] = []
    barrier = threading.Barrier(workers)

    class Lock(CountingLock):  # a class of its own: the counts start empty in this test
        refused_threads = set()
        refused_changed = threading.Condition()

    def compute() -> tuple[str, float]:
        computed.append(1)
        # Hold the lock until every other worker has found it taken and is waiting for it.
        with Lock.refused_changed:
            everyone_waits = Lock.refused_changed.wait_for(
                lambda: len(Lock.refused_threads) == workers - 1, timeout=30
            )
        assert everyone_waits, f"only {len(Lock.refused_threads)} workers waited for the lock"
        return "shared", 30

    def worker() -> None:
        client = fakeredis.FakeRedis(server=redis_server)  # one connection per "process"
        client.lock = functools.partial(client.lock, lock_class=Lock)
        barrier.wait()
        results.append(get_or_compute(client, "k", compute, lock_timeout=60, wait_timeout=60))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(computed) == 1
    assert results == ["shared"] * workers


def test_a_lock_held_too_long_raises_after_the_wait(fake_redis: fakeredis.FakeRedis) -> None:
    # Held far longer than this test runs: raising proves the waiter gave up on its own wait
    # rather than outlasting the lock.
    fake_redis.set("k:lock", "someone-else", px=600_000)
    computed: list[int] = []

    def compute() -> tuple[str, float]:
        computed.append(1)
        return "v", 5

    started = time.monotonic()
    with pytest.raises(SingleFlightTimeout, match="k"):
        get_or_compute(fake_redis, "k", compute, lock_timeout=5, wait_timeout=0.2)

    # It did wait (redis-py gives up once a further 50 ms poll would pass the 0.2 s).
    assert time.monotonic() - started > 0.1
    assert computed == []
    assert fake_redis.get("k:lock") == b"someone-else"  # not stolen


def test_delete_if_equal_is_a_compare_and_delete(fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.set("k", "mine")

    assert delete_if_equal(fake_redis, "k", "theirs") is False
    assert fake_redis.get("k") == b"mine"
    assert delete_if_equal(fake_redis, "k", "mine") is True
    assert not fake_redis.exists("k")
    assert delete_if_equal(fake_redis, "k", "mine") is False


def test_the_token_lock_name_matches_what_single_flight_locks() -> None:
    # single_flight locks "<key>:lock"; operators and tests look for CXONE_TOKEN_LOCK.
    assert redis_keys.lock_for(redis_keys.CXONE_TOKEN) == redis_keys.CXONE_TOKEN_LOCK
    assert redis_keys.CXONE_TOKEN_LOCK == redis_keys.CXONE_TOKEN + ":lock"


def test_every_key_is_prefixed_and_free_text_is_hashed() -> None:
    keys = [
        redis_keys.OPEN_ROUTINGS,
        redis_keys.DEAD_LETTERS,
        redis_keys.CXONE_TOKEN,
        redis_keys.CXONE_RATE_LIMIT,
        redis_keys.routing("r1"),
        redis_keys.routing_signal_sent("r1"),
        redis_keys.routing_deliveries("r1", 2),
        redis_keys.dedupe_input("x" * 5000),
        redis_keys.contact_seq("7000001"),
        redis_keys.contact_latest("7000001"),
        redis_keys.contact_lease("7000001"),
        redis_keys.cxone_skill("https://api", "Sales Support"),
    ]
    assert all(key.startswith("router:") for key in keys)
    assert len(set(keys)) == len(keys)
    assert len(redis_keys.dedupe_input("x" * 5000)) < 80
    assert redis_keys.contact_latest("7000001") != redis_keys.contact_latest("7000002")
    assert redis_keys.cxone_skill("https://a", "Q") != redis_keys.cxone_skill("https://b", "Q")
