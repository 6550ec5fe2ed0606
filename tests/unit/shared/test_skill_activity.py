"""CXone's skill activity: the adapter that reads it, the call, and the copy the workers share."""

from __future__ import annotations

import fakeredis
import pytest
import responses

from shared import redis_keys
from shared.cxone import metrics
from shared.cxone.client import SKILL_ACTIVITY_PATH, CXoneClient
from shared.cxone.errors import RateLimited, Transient
from shared.cxone.skill_activity import (
    ActivitySnapshot,
    SkillActivity,
    SkillActivityCache,
    parse_activity,
)
from tests.support.clock import FakeClock
from tests.support.cxone import API_URL, FakeCXoneAuth, make_settings

ACTIVITY_URL = API_URL + SKILL_ACTIVITY_PATH
TTL = 5
#: A moment past one TTL (Redis lets a key live through its last millisecond).
PAST_TTL = TTL + 0.001

#: One skill as third-party clients read CXone's answer (NICE publishes no schema for it).
BILLING = {
    "skillId": 1200005,
    "skillName": "Billing",
    "mediaTypeId": 3,
    "agentsAvailable": 0,
    "agentsLoggedIn": 4,
    "queueCount": 7,
    "longestQueueTimeInSeconds": 95,
}


def answer(*skills: object) -> dict:
    return {"businessUnitId": 4600123, "skillActivity": list(skills)}


# ------------------------------------------------------------------------------ the adapter


def test_the_adapter_reads_each_value_by_its_cxone_name() -> None:
    (activity,) = parse_activity(answer(BILLING)).values()

    assert activity == SkillActivity(
        1200005, "Billing", agents_available=0, queue_count=7, longest_wait_seconds=95
    )
    assert activity.value("agents_available") == 0
    assert activity.missing() == []


def test_a_missing_field_is_unknown_and_named() -> None:
    entry = {k: v for k, v in BILLING.items() if k not in ("agentsAvailable", "longestQueueTimeInSeconds")}

    (activity,) = parse_activity(answer(entry)).values()

    assert activity.agents_available is None and activity.longest_wait_seconds is None
    assert activity.queue_count == 7
    assert activity.missing() == ["agentsAvailable", "longestQueueTimeInSeconds"]


@pytest.mark.parametrize("bad", [None, True, "many", -1, 2.5, float("nan"), [1], {"n": 1}])
def test_a_value_that_is_not_a_count_is_unknown(bad: object) -> None:
    (activity,) = parse_activity(answer({**BILLING, "agentsAvailable": bad, "queueCount": bad})).values()

    assert activity.agents_available is None and activity.queue_count is None


def test_numbers_sent_as_text_are_read() -> None:
    (activity,) = parse_activity(
        answer({**BILLING, "agentsAvailable": "2", "longestQueueTimeInSeconds": "12.5"})
    ).values()

    assert (activity.agents_available, activity.longest_wait_seconds) == (2, 12.5)


def test_entries_that_name_no_skill_are_left_out_and_a_strange_answer_gives_nothing() -> None:
    skills = parse_activity(answer(BILLING, {"skillName": "no id", "queueCount": 1}, {"skillId": "x"}, 7))

    assert list(skills) == [1200005]
    for body in ({}, {"skillActivity": None}, {"skills": [BILLING]}, [BILLING], "text"):
        assert parse_activity(body) == {}


def test_the_shared_copy_keeps_known_values_only_and_reads_back_the_same() -> None:
    skills = parse_activity(answer(BILLING, {"skillId": 1200009, "queueCount": 3}))
    snapshot = ActivitySnapshot(1_700_000_000.5, skills)

    assert ActivitySnapshot.from_json(snapshot.to_json()) == snapshot
    assert '"agents_available"' not in snapshot.to_json().split('"1200009"')[1]


# ------------------------------------------------------------------------------ the call


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


def duration_count(endpoint: str, status: str) -> float:
    for metric in metrics.CXONE_REQUEST_DURATION.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"endpoint": endpoint, "status": status}:
                return sample.value
    return 0.0


def test_the_activity_call_carries_the_token_and_is_timed(http: responses.RequestsMock, client) -> None:
    http.add(responses.GET, ACTIVITY_URL, json=answer(BILLING))
    before = duration_count("skill_activity", "200")

    assert client.skill_activity() == answer(BILLING)

    (request,) = [call.request for call in http.calls if call.request.url == ACTIVITY_URL]
    assert request.headers["Authorization"].startswith("Bearer ")
    assert request.headers["Accept"] == "application/json"
    assert duration_count("skill_activity", "200") == before + 1


def test_no_content_is_no_activity(http: responses.RequestsMock, client) -> None:
    http.add(responses.GET, ACTIVITY_URL, status=204)

    assert client.skill_activity() == {}


def test_the_activity_call_takes_a_slot_of_the_shared_limiter(
    http: responses.RequestsMock, cxone_auth
) -> None:
    client = CXoneClient(make_settings(cxone_rate_limit_per_minute=1), fakeredis.FakeRedis())
    http.add(responses.GET, ACTIVITY_URL, json=answer(BILLING))
    client.skill_activity()

    with pytest.raises(RateLimited):
        client.skill_activity()
    assert len([c for c in http.calls if c.request.url == ACTIVITY_URL]) == 1


# ------------------------------------------------------------------------------ the shared copy


class ActivityCalls:
    """Stands in for the client's ``skill_activity``: counts calls, answers or raises as told."""

    def __init__(self) -> None:
        self.calls = 0
        self.agents_available = 3
        self.error: Exception | None = None

    def skill_activity(self) -> dict:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return answer({**BILLING, "agentsAvailable": self.agents_available})


@pytest.fixture
def cxone() -> ActivityCalls:
    return ActivityCalls()


def worker(cxone: ActivityCalls, server: fakeredis.FakeServer) -> SkillActivityCache:
    """One worker process's cache: its own connection to the shared (fake) Redis server."""
    return SkillActivityCache(cxone, fakeredis.FakeRedis(server=server), TTL)  # type: ignore[arg-type]


def agents(snapshot: ActivitySnapshot | None) -> int | None:
    assert snapshot is not None
    activity = snapshot.of(1200005)
    assert activity is not None
    return activity.agents_available


def test_the_first_use_asks_cxone_and_the_copy_is_then_shared(clock: FakeClock, cxone, redis_server) -> None:
    first, second = worker(cxone, redis_server), worker(cxone, redis_server)

    assert agents(first.current()) == 3
    cxone.agents_available = 0
    clock.advance(TTL - 0.1)

    assert agents(second.current()) == 3  # still within the TTL: the shared copy
    assert cxone.calls == 1


def test_an_old_copy_is_refreshed_by_one_worker_for_all(clock: FakeClock, cxone, redis_server) -> None:
    workers = [worker(cxone, redis_server) for _ in range(4)]
    workers[0].current()
    cxone.agents_available = 0
    clock.advance(PAST_TTL)

    seen = [agents(w.current()) for w in workers for _ in range(3)]

    assert seen == [0] * 12
    assert cxone.calls == 2


def test_refreshes_stay_at_one_per_ttl_whatever_the_traffic(clock: FakeClock, cxone, redis_server) -> None:
    workers = [worker(cxone, redis_server) for _ in range(3)]
    duration = 60.0
    for step in range(int(duration / 0.25)):  # a decision every 0.25 s, spread over the workers
        workers[step % 3].current()
        clock.advance(0.25)

    assert cxone.calls <= duration / TTL + 1
    assert cxone.calls >= duration / TTL - 1  # and the copy is kept fresh while it is used


def test_each_process_parses_a_copy_once_and_then_reads_only_its_time(
    clock: FakeClock, cxone, redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[float] = []
    real = ActivitySnapshot.from_json.__func__  # type: ignore[attr-defined]

    def counting(cls, text):
        snapshot = real(cls, text)
        parsed.append(snapshot.fetched_at)
        return snapshot

    monkeypatch.setattr(ActivitySnapshot, "from_json", classmethod(counting))
    refresher, reader = worker(cxone, redis_server), worker(cxone, redis_server)
    refresher.current()  # asks CXone: keeps what it got, parses nothing
    for _ in range(5):
        assert agents(reader.current()) == 3
    clock.advance(PAST_TTL)
    cxone.agents_available = 0
    refresher.current()
    for _ in range(5):
        assert agents(reader.current()) == 0

    assert len(parsed) == 2  # the reader parsed each new copy once


def test_cxone_down_is_asked_once_per_ttl_and_the_last_copy_used_until_it_is_stale(
    clock: FakeClock, cxone, redis_server
) -> None:
    workers = [worker(cxone, redis_server) for _ in range(3)]
    workers[0].current()
    cxone.error = Transient("skill_activity: HTTP 503: down", status=503, endpoint="skill_activity")

    clock.advance(PAST_TTL)
    assert [agents(w.current()) for w in workers] == [3, 3, 3]  # one failed refresh, the copy used
    assert cxone.calls == 2
    clock.advance(PAST_TTL)
    assert agents(workers[1].current()) == 3
    assert cxone.calls == 3

    clock.advance(PAST_TTL)  # the copy is now older than three TTLs: not used, never a guess
    assert [w.current() for w in workers] == [None, None, None]
    assert cxone.calls == 4


def test_no_copy_at_all_is_none(clock: FakeClock, cxone, redis_server) -> None:
    cxone.error = Transient("skill_activity: connect timeout", endpoint="skill_activity", not_delivered=True)
    cache = worker(cxone, redis_server)

    assert cache.current() is None
    assert cache.current() is None
    assert cxone.calls == 1  # the next try waits for the next TTL


def test_a_refresh_refused_by_the_limiter_uses_the_copy(clock: FakeClock, cxone, redis_server) -> None:
    cache = worker(cxone, redis_server)
    cache.current()
    cxone.error = RateLimited(0.5)
    clock.advance(PAST_TTL)

    assert agents(cache.current()) == 3


def test_a_copy_too_old_because_our_limiter_refused_its_refresh_makes_routings_wait(
    clock: FakeClock, cxone, redis_server
) -> None:
    """Refused by our own limiter (the tenant is busy, CXone is not down): a routing waits for a
    slot like any other call (RateLimited parks it) instead of skipping its overflow rules, for
    every worker, not only the one that tried."""
    workers = [worker(cxone, redis_server) for _ in range(2)]
    workers[0].current()
    cxone.error = RateLimited(0.5)
    clock.advance(4 * PAST_TTL)  # the copy is older than three TTLs

    for cache in workers:
        with pytest.raises(RateLimited):
            cache.current()
    assert cxone.calls == 2  # one refresh tried (and refused) in this TTL

    cxone.error = None
    clock.advance(PAST_TTL)
    assert agents(workers[1].current()) == 3  # refreshed: the flag is gone with it
    assert not redis_server_client(redis_server).exists(redis_keys.CXONE_SKILL_ACTIVITY_REFUSED)


def redis_server_client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server)


def test_a_failed_refresh_is_logged_once_until_the_reason_changes(
    clock: FakeClock, cxone, redis_server, caplog: pytest.LogCaptureFixture
) -> None:
    cache = worker(cxone, redis_server)
    cxone.error = Transient("skill_activity: HTTP 503: down", status=503, endpoint="skill_activity")
    for _ in range(3):
        cache.current()
        clock.advance(PAST_TTL)

    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "skill activity" in r.message]
    assert len(warnings) == 1 and "HTTP 503" in warnings[0].message
