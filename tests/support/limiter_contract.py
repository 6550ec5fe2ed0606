"""What ``CallLimiter`` promises, written once and run on fakeredis (unit) and a real Redis (integration).

A test module subclasses :class:`CallLimiterContract` as ``Test...`` and gives it a ``connect``
fixture: a factory of new connections to the Redis under test (one per simulated worker process).

Every timing check is judged by times that cannot drift: each call is bracketed by ``monotonic()``
before and after it, so the instant Redis ran the script lies inside the bracket however long the
thread was paused. A breach is reported only when it is certain, whatever the machine's load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from shared.cxone.rate_limiter import CallLimiter

#: A factory of new connections to the backend under test.
ClientFactory = Callable[[], redis.Redis]

#: The script reads Redis ``TIME`` in whole milliseconds, so two grants it sees exactly one window
#: apart may be up to 1 ms closer in real time.
CLOCK_RESOLUTION = 0.001

#: Safety net for threads that never finish (a deadlock), far above any normal run.
JOIN_SECONDS = 60


class Bracket:
    """The monotonic times just before and just after one ``try_acquire``, and the wait it returned."""

    __slots__ = ("before", "after", "wait")

    def __init__(self, before: float, after: float, wait: float = 0.0):
        self.before = before
        self.after = after
        self.wait = wait

    def __repr__(self) -> str:
        return f"[{self.before:.3f}, {self.after:.3f}] wait {self.wait:.3f}"


def certain_breaches(grants: list[Bracket], limit: int, window: float) -> list[list[Bracket]]:
    """Sets of ``limit + 1`` grants that certainly all fell inside one ``window``.

    A set certainly fits in a window when even its widest possible span (latest ``after`` minus
    earliest ``before``) is shorter than the window. For each grant taken as the earliest one, the
    ``limit`` grants that start no earlier and end soonest give the narrowest such set.
    """
    by_start = sorted(grants, key=lambda grant: grant.before)
    breaches = []
    for index, first in enumerate(by_start):
        later = sorted(by_start[index + 1 :], key=lambda grant: grant.after)[:limit]
        if len(later) < limit:
            continue
        widest_span = max([first.after] + [grant.after for grant in later]) - first.before
        if widest_span < window - CLOCK_RESOLUTION:
            breaches.append([first, *later])
    return breaches


def wrong_refusals(
    grants: list[Bracket], refusals: list[Bracket], limit: int, window: float
) -> list[Bracket]:
    """Refusals that were certainly wrong: no slot was taken, or the wait was longer than needed.

    Grants that may have come before a refusal are those whose ``before`` is not after the
    refusal's ``after``. A refusal is due only if ``limit`` of them may still have been inside the
    window, and its wait must end no later than the ``limit``-th newest of them ages out (that
    grant came, at the latest, at the ``limit``-th latest ``after`` among them).
    """
    wrong = []
    for refusal in refusals:
        earlier = [grant for grant in grants if grant.before <= refusal.after]
        in_window = [grant for grant in earlier if grant.after > refusal.before - window - CLOCK_RESOLUTION]
        if len(in_window) < limit:
            wrong.append(refusal)
            continue
        latest_possible_oldest = sorted(grant.after for grant in earlier)[-limit]
        if refusal.before + refusal.wait > latest_possible_oldest + window + CLOCK_RESOLUTION:
            wrong.append(refusal)
    return wrong


class CallLimiterContract:
    """The limiter's promises; subclasses provide the ``connect`` fixture (and the ``Test`` name)."""

    def test_a_burst_gets_exactly_limit_grants(self, connect: ClientFactory, unique_key: str) -> None:
        limiter = CallLimiter(connect(), unique_key, limit=5, window_seconds=60, guard_seconds=1)

        started = time.monotonic()
        grants = [limiter.try_acquire() for _ in range(5)]
        refused = limiter.try_acquire()
        took = time.monotonic() - started

        assert grants == [0.0] * 5
        # The first slot frees window + guard (61 s) after the first grant, which came at most
        # `took` before the refusal: the wait is exact, whatever the scheduling in between.
        assert 61.0 - took - CLOCK_RESOLUTION <= refused <= 61.0

    def test_refusals_do_not_use_up_slots(self, connect: ClientFactory, unique_key: str) -> None:
        limiter = CallLimiter(connect(), unique_key, limit=2, window_seconds=60, guard_seconds=0)
        limiter.try_acquire()
        limiter.try_acquire()

        waits = [limiter.try_acquire() for _ in range(5)]

        assert all(0 < wait <= 60.0 for wait in waits)
        assert waits == sorted(waits, reverse=True)  # counting down, never pushed back

    def test_slots_come_back_after_the_window(self, connect: ClientFactory, unique_key: str) -> None:
        window = 1.0
        limiter = CallLimiter(connect(), unique_key, limit=3, window_seconds=window, guard_seconds=0)
        assert [limiter.try_acquire() for _ in range(3)] == [0.0] * 3

        # Take slots until refused: at once, unless this thread was paused for a whole window (then
        # the slots came back already, which is what this test is about, and it asks again).
        for _ in range(100):
            wait = limiter.try_acquire()
            if wait:
                break
        assert 0 < wait <= window

        time.sleep(wait + 0.02)  # sleeping longer than asked (a busy machine) only helps
        assert limiter.try_acquire() == 0.0

    def test_the_key_expires_when_idle(self, connect: ClientFactory, unique_key: str) -> None:
        client = connect()
        started = time.monotonic()
        CallLimiter(client, unique_key, limit=3, window_seconds=60, guard_seconds=0.5).try_acquire()
        ttl_ms = client.pttl(unique_key)
        took_ms = (time.monotonic() - started) * 1000

        # The key lives one window + guard after the last grant, then Redis drops it.
        assert 60_500 - took_ms - 1 <= ttl_ms <= 60_500

    def test_concurrent_workers_never_exceed_the_limit_in_any_window(
        self, connect: ClientFactory, unique_key: str
    ) -> None:
        limit, window, workers = 4, 0.5, 8
        wanted = 3 * limit  # at least three windows' worth of grants
        grants: list[Bracket] = []
        refusals: list[Bracket] = []
        errors: list[BaseException] = []
        record = threading.Lock()
        barrier = threading.Barrier(workers)
        enough = threading.Event()

        def worker() -> None:
            try:
                limiter = CallLimiter(
                    connect(), unique_key, limit=limit, window_seconds=window, guard_seconds=0
                )
                barrier.wait()
                while not enough.is_set():
                    before = time.monotonic()
                    wait = limiter.try_acquire()
                    bracket = Bracket(before, time.monotonic(), wait)
                    with record:
                        (refusals if wait else grants).append(bracket)
                        if len(grants) >= wanted:
                            enough.set()
                    if wait:
                        time.sleep(wait)  # every worker wakes at the window edge: the worst contention
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                enough.set()

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_SECONDS)

        assert errors == []
        assert not any(thread.is_alive() for thread in threads), "the workers stopped getting grants"
        assert len(grants) >= wanted
        assert certain_breaches(grants, limit, window) == [], f"more than {limit} grants in {window}s"
        # And it keeps granting: no refusal while a slot was free, no wait past the next free slot.
        assert wrong_refusals(grants, refusals, limit, window) == []
        assert refusals, "8 workers asking for 4 slots a window must have been refused sometimes"

    # ------------------------------------------------------------ CXone's pause (429 Retry-After)

    def test_a_pause_refuses_every_caller_with_the_time_left(
        self, connect: ClientFactory, unique_key: str
    ) -> None:
        pause_key = unique_key + ":pause"
        workers = [CallLimiter(connect(), unique_key, limit=100, pause_key=pause_key) for _ in range(3)]

        started = time.monotonic()
        left = workers[0].pause(30)
        answers = [worker.acquire() for worker in workers]
        took = time.monotonic() - started

        assert 30.0 - took - CLOCK_RESOLUTION <= left <= 30.0
        assert all(answer.paused for answer in answers)
        assert all(30.0 - took - CLOCK_RESOLUTION <= answer.wait <= 30.0 for answer in answers)
        assert connect().llen(unique_key) == 0  # a refusal takes no slot
        assert 0 < workers[1].pause_left() <= 30.0

    def test_a_pause_is_only_ever_made_longer(self, connect: ClientFactory, unique_key: str) -> None:
        limiter = CallLimiter(connect(), unique_key, limit=100, pause_key=unique_key + ":pause")

        started = time.monotonic()
        limiter.pause(90)
        shorter = limiter.pause(10)  # a shorter Retry-After from another worker's 429 changes nothing
        longer = limiter.pause(120)
        refused = limiter.acquire()
        took = time.monotonic() - started

        assert 90.0 - took - CLOCK_RESOLUTION <= shorter <= 90.0
        assert 120.0 - took - CLOCK_RESOLUTION <= longer <= 120.0
        assert refused.paused and 120.0 - took - CLOCK_RESOLUTION <= refused.wait <= 120.0

    def test_after_a_pause_the_window_paces_as_before(self, connect: ClientFactory, unique_key: str) -> None:
        pause_key = unique_key + ":pause"
        limiter = CallLimiter(
            connect(), unique_key, limit=2, window_seconds=60, guard_seconds=0, pause_key=pause_key
        )
        assert limiter.acquire().wait == 0.0  # one call before the 429

        limiter.pause(0.3)
        paused = limiter.acquire()
        assert paused.paused and 0 < paused.wait <= 0.3
        time.sleep(paused.wait + 0.02)  # sleeping longer than asked (a busy machine) only helps

        assert limiter.acquire().wait == 0.0  # the pause is over: the second slot
        refused = limiter.acquire()  # and the window still counts the call made before the pause
        assert not refused.paused and 0 < refused.wait <= 60.0
        assert connect().pttl(pause_key) == -2  # the pause key expired by itself

    def test_a_limiter_without_a_pause_key_ignores_pauses(
        self, connect: ClientFactory, unique_key: str
    ) -> None:
        CallLimiter(connect(), unique_key + ":a", limit=5, pause_key=unique_key + ":pause").pause(30)
        other = CallLimiter(connect(), unique_key, limit=5)

        assert other.try_acquire() == 0.0
        assert other.pause_left() == 0.0
        try:
            other.pause(1)
        except ValueError as exc:
            assert "no pause key" in str(exc)
        else:
            raise AssertionError("pause() without a pause key must refuse")
