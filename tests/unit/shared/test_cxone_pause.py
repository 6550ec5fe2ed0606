"""A 429 with Retry-After pauses every worker's CXone API calls until it has passed (token calls
excepted), whatever the task's countdown; without Retry-After only the task that got it backs off."""

from __future__ import annotations

import fakeredis
import pytest
import responses

from shared import redis_keys
from shared.cxone.client import MAX_CXONE_PAUSE_SECONDS, ROUTING_QUEUE_PATH, SKILLS_PATH, CXoneClient
from shared.cxone.errors import PausedByCXone, RateLimited, Throttled
from tests.support.clock import FakeClock
from tests.support.cxone import API_URL, FakeCXoneAuth, make_settings

SKILLS_URL = API_URL + SKILLS_PATH
ROUTING_URL = API_URL + ROUTING_QUEUE_PATH.format(contact_id="7000001")
EMPTY_SKILLS = {"skills": [], "totalRecords": 0}


def workers(redis_server: fakeredis.FakeServer, count: int, **settings: object) -> list[CXoneClient]:
    return [
        CXoneClient(make_settings(**settings), fakeredis.FakeRedis(server=redis_server)) for _ in range(count)
    ]


def api_calls(http: responses.RequestsMock) -> list[str]:
    urls = [str(call.request.url) for call in http.calls]
    return [url for url in urls if url.startswith(API_URL)]


def test_retry_after_pauses_every_worker_and_nothing_is_sent_until_it_passes(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    redis_server: fakeredis.FakeServer,
    clock: FakeClock,
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=429, headers={"Retry-After": "90"})
    http.add(responses.PUT, ROUTING_URL, status=204)
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    first, second = workers(redis_server, 2)

    with pytest.raises(Throttled) as throttled:
        first.route_digital("7000001", 1200001)
    assert throttled.value.retry_after == 90.0
    assert len(api_calls(http)) == 1

    # No worker calls the tenant's API, whatever the call, until 90 s have passed.
    moved = 0.0
    for elapsed in (0, 30, 60, 89):
        clock.advance(elapsed - moved)
        moved = elapsed
        for worker, call in (
            (first, lambda w: w.route_digital("7000001", 1200001)),
            (second, lambda w: w.search_skills("Claims")),
        ):
            with pytest.raises(PausedByCXone) as paused:
                call(worker)
            assert 90 - elapsed - 1 < paused.value.wait <= 90 - elapsed
            assert paused.value.not_delivered is True
            assert "CXone asked us to wait (429 with Retry-After)" in paused.value.reason
            assert paused.value.summary == "waiting as CXone asked (429 with Retry-After)"
    assert len(api_calls(http)) == 1
    # Token calls are not API calls: the second worker got its token during the pause.
    assert cxone_auth.token_requests == 1

    clock.advance(1.1)
    first.route_digital("7000001", 1200001)
    assert second.search_skills("Claims") == EMPTY_SKILLS
    assert len(api_calls(http)) == 3


def test_a_429_without_retry_after_pauses_nobody_else(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, redis_server: fakeredis.FakeServer
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=429)
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    first, second = workers(redis_server, 2)

    with pytest.raises(Throttled) as throttled:
        first.route_digital("7000001", 1200001)

    assert throttled.value.retry_after is None
    assert not first.redis.exists(redis_keys.CXONE_PAUSE_UNTIL)
    assert second.search_skills("Claims") == EMPTY_SKILLS


def test_an_absurd_retry_after_is_cut_to_an_hour(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=429, headers={"Retry-After": "86400"})
    client = CXoneClient(make_settings(), fake_redis)

    with pytest.raises(Throttled):
        client.route_digital("7000001", 1200001)

    assert MAX_CXONE_PAUSE_SECONDS - 1 < client.limiter.pause_left() <= MAX_CXONE_PAUSE_SECONDS


def test_two_429s_keep_the_later_end(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, redis_server: fakeredis.FakeServer
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=429, headers={"Retry-After": "60"})
    first, second = workers(redis_server, 2)
    with pytest.raises(Throttled):
        first.route_digital("7000001", 1200001)

    # A 429 that was in flight on another worker, with a shorter Retry-After, arrives later.
    second.limiter.pause(5)

    assert 59 < second.limiter.pause_left() <= 60


def test_the_own_limit_still_paces_after_a_pause(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis, clock: FakeClock
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=429, headers={"Retry-After": "5"})
    http.add(responses.PUT, ROUTING_URL, status=204)
    client = CXoneClient(make_settings(cxone_rate_limit_per_minute=2), fake_redis)
    with pytest.raises(Throttled):
        client.route_digital("7000001", 1200001)  # the 429 took a slot: it reached CXone

    clock.advance(5.1)
    client.route_digital("7000001", 1200001)
    with pytest.raises(RateLimited) as refused:
        client.route_digital("7000001", 1200001)

    assert type(refused.value) is RateLimited  # the window is full, no pause any more
    assert 50 < refused.value.wait <= 61
