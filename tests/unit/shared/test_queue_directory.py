"""QueueDirectory: paging through a substring search, exact names only, cached for every worker."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import fakeredis
import pytest
import responses

from shared import redis_keys
from shared.cxone.client import SKILLS_PATH, CXoneClient
from shared.cxone.errors import Permanent
from shared.cxone.queue_directory import NEGATIVE_TTL_SECONDS, QueueDirectory, UnknownQueue
from tests.support.clock import FakeClock
from tests.support.cxone import API_URL, FakeCXoneAuth, make_settings

SKILLS_URL = API_URL + SKILLS_PATH


def skill(skill_id: int, name: str, active: bool = True) -> dict[str, Any]:
    return {"skillId": skill_id, "skillName": name, "mediaTypeId": 4, "isActive": active}


class FakeSkills:
    """``GET skills`` answering pages of ``skills`` by ``skip``/``top`` (CXone's substring search
    is the caller's business: every registered skill is a "match")."""

    def __init__(self, http: responses.RequestsMock, skills: list[dict[str, Any]]):
        self.skills = skills
        self.pages: list[dict[str, list[str]]] = []
        http.add_callback(responses.GET, SKILLS_URL, callback=self._answer, content_type="application/json")

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = parse_qs(urlsplit(request.url).query)
        self.pages.append(params)
        skip, top = int(params["skip"][0]), int(params["top"][0])
        if not self.skills:
            return 204, {}, ""
        return (
            200,
            {},
            json.dumps({"skills": self.skills[skip : skip + top], "totalRecords": len(self.skills)}),
        )


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


@pytest.fixture
def directory(client: CXoneClient, fake_redis: fakeredis.FakeRedis) -> QueueDirectory:
    return QueueDirectory(client, fake_redis, ttl_seconds=900)


def test_pages_through_every_match_and_picks_the_exact_name(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    # 250 matches for "Sales Support"; the exact one is on the third page.
    skills = [skill(1000, "Sales Support Overflow")]
    skills += [skill(1001 + n, f"Sales Support Tier {n}") for n in range(228)]
    skills += [skill(4242, "Sales Support")]
    skills += [skill(2001 + n, f"After Sales Support {n}") for n in range(20)]
    assert len(skills) == 250 and skills.index(skill(4242, "Sales Support")) >= 200
    fake = FakeSkills(http, skills)

    found = directory.lookup("Sales Support")

    assert found.skill_id == 4242
    assert found.problem is None
    assert found.pages == 3
    assert [(p["skip"], p["top"]) for p in fake.pages] == [
        (["0"], ["100"]),
        (["100"], ["100"]),
        (["200"], ["100"]),
    ]
    assert all(p["searchString"] == ["Sales Support"] for p in fake.pages)


def test_a_longer_name_containing_the_queue_name_is_never_picked(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    FakeSkills(http, [skill(1000, "Sales Support Overflow"), skill(1001, "sales support")])

    found = directory.lookup("Sales Support")

    assert found.skill_id is None
    assert found.problem is not None and found.problem.startswith("missing")


def test_an_inactive_twin_does_not_hide_the_active_skill(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    FakeSkills(http, [skill(10, "Claims", active=False), skill(11, "Claims")])

    assert directory.lookup("Claims").skill_id == 11


def test_only_inactive_exact_matches_is_inactive(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    FakeSkills(http, [skill(10, "Claims", active=False), skill(12, "Claims Overflow")])

    found = directory.lookup("Claims")

    assert found.skill_id is None
    assert found.problem is not None
    assert found.problem.startswith("inactive")
    assert "10" in found.problem
    with pytest.raises(UnknownQueue, match="queue 'Claims': inactive"):
        directory.skill_id("Claims")


def test_two_active_exact_matches_are_ambiguous(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    FakeSkills(http, [skill(10, "Claims"), skill(12, "Claims Overflow"), skill(11, "Claims")])

    found = directory.lookup("Claims")

    assert found.skill_id is None
    assert found.problem is not None
    assert found.problem.startswith("ambiguous")
    assert "10, 11" in found.problem
    assert "skill_id" in found.problem  # tells the operator the way out
    with pytest.raises(UnknownQueue, match="ambiguous"):
        directory.skill_id("Claims")


def test_an_empty_search_answered_204_is_missing(
    http: responses.RequestsMock, directory: QueueDirectory
) -> None:
    fake = FakeSkills(http, [])

    with pytest.raises(UnknownQueue) as caught:
        directory.skill_id("Nonexistent Queue")

    assert isinstance(caught.value, Permanent)  # the worker must not retry it
    assert "queue 'Nonexistent Queue': missing" in caught.value.reason
    assert len(fake.pages) == 1


def test_a_resolved_name_is_cached_for_every_worker(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    directory: QueueDirectory,
    redis_server: fakeredis.FakeServer,
    clock: FakeClock,
) -> None:
    fake = FakeSkills(http, [skill(4242, "Sales Support")])

    assert directory.skill_id("Sales Support") == 4242
    calls_after_first = len(http.calls)

    assert directory.skill_id("Sales Support") == 4242
    other_redis = fakeredis.FakeRedis(server=redis_server)
    other = QueueDirectory(CXoneClient(make_settings(), other_redis), other_redis, 900)
    assert other.skill_id("Sales Support") == 4242

    assert len(http.calls) == calls_after_first  # no HTTP at all, not even a token
    assert len(fake.pages) == 1
    assert directory.lookups + other.lookups == 1
    key = redis_keys.cxone_skill(API_URL, "Sales Support")
    assert 899_000 < other_redis.pttl(key) <= 900_000  # the clock stands still: no pause ages it


def test_a_missing_name_is_cached_only_briefly(
    http: responses.RequestsMock,
    directory: QueueDirectory,
    fake_redis: fakeredis.FakeRedis,
    clock: FakeClock,
) -> None:
    fake = FakeSkills(http, [skill(1, "Something Else")])

    for _ in range(2):
        with pytest.raises(UnknownQueue, match="missing"):
            directory.skill_id("Retention")

    assert len(fake.pages) == 1
    key = redis_keys.cxone_skill(API_URL, "Retention")
    assert 0 < fake_redis.pttl(key) <= NEGATIVE_TTL_SECONDS * 1000  # the clock stands still
