"""get_or_compute / delete_if_equal on fakeredis, plus the key names both sides rely on."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from shared import redis_keys
from shared.cxone.single_flight import SingleFlightTimeout, delete_if_equal, get_or_compute


def test_computes_once_then_serves_the_cache(fake_redis: fakeredis.FakeRedis) -> None:
    calls: list[int] = []

    def compute() -> tuple[str, float]:
        calls.append(1)
        return "value-1", 30

    first = get_or_compute(fake_redis, "k", compute, lock_timeout=2, wait_timeout=2)
    second = get_or_compute(fake_redis, "k", compute, lock_timeout=2, wait_timeout=2)

    assert (first, second) == ("value-1", "value-1")
    assert len(calls) == 1
    assert 29_000 < fake_redis.pttl("k") <= 30_000
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
    started = time.monotonic()
    assert get_or_compute(fake_redis, "k", lambda: ("v", 5), lock_timeout=5, wait_timeout=5) == "v"
    assert time.monotonic() - started < 0.5  # did not wait for the old lock to expire


def test_concurrent_misses_compute_once(redis_server: fakeredis.FakeServer) -> None:
    computed: list[int] = []
    results: list[str] = []
    barrier = threading.Barrier(8)

    def compute() -> tuple[str, float]:
        computed.append(1)
        time.sleep(0.2)  # the others must be waiting on the lock meanwhile
        return "shared", 30

    def worker() -> None:
        client = fakeredis.FakeRedis(server=redis_server)  # one connection per "process"
        barrier.wait()
        results.append(get_or_compute(client, "k", compute, lock_timeout=5, wait_timeout=5))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(computed) == 1
    assert results == ["shared"] * 8


def test_a_lock_held_too_long_raises_after_the_wait(fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.set("k:lock", "someone-else", px=5000)
    computed: list[int] = []

    started = time.monotonic()
    with pytest.raises(SingleFlightTimeout, match="k"):
        get_or_compute(
            fake_redis, "k", lambda: (computed.append(1), ("v", 5))[1], lock_timeout=5, wait_timeout=0.2
        )

    assert 0.1 < time.monotonic() - started < 1.5
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
