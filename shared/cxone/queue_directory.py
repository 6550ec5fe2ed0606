"""Queue names → CXone skill ids, looked up once and shared by every worker through Redis.

CXone's ``skills?searchString=`` is a substring match ("Sales Support" also finds "Sales Support
Overflow"), so the directory pages through every match and keeps only exact names. Digital routing
queues appear in the ACD skill list under the same name, so one lookup serves both kinds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from shared import redis_keys
from shared.cxone.client import SKILLS_PAGE_SIZE, CXoneClient
from shared.cxone.errors import Permanent, Transient
from shared.cxone.single_flight import SingleFlightTimeout, get_or_compute

#: A name that resolved to nothing is remembered only briefly, so a queue created in CXone after a
#: failed routing is found on replay without waiting out the full cache TTL.
NEGATIVE_TTL_SECONDS = 60
MAX_PAGES = 50  # 5,000 matching skills: beyond that something is wrong with the search


@dataclass(frozen=True)
class SkillLookup:
    """The result of resolving one queue name: a skill id, or the reason there is none."""

    name: str
    skill_id: int | None
    problem: str | None = None  # "missing", "inactive" or "ambiguous", with details
    pages: int = 0
    #: The skill's media type as the skills list gives it (4 "Phone Call", 3 "Chat", 9 "Digital",
    #: …), when the lookup found one skill; the doctor compares it with the route's mode.
    media_type_id: int | None = None
    media_type_name: str | None = None

    def to_json(self) -> str:
        return json.dumps({"skill_id": self.skill_id, "problem": self.problem})


class UnknownQueue(Permanent):
    """The routing table names a queue that CXone does not have (or has more than once)."""


class QueueDirectory:
    """Resolves queue names to skill ids with a Redis cache shared by all workers."""

    def __init__(self, client: CXoneClient, redis_client: redis.Redis, ttl_seconds: int):
        self.client = client
        self.redis = redis_client
        self.ttl_seconds = ttl_seconds
        #: Lookups (each possibly several pages) this process made, for metrics and the benchmark.
        self.lookups = 0

    def skill_id(self, queue_name: str) -> int:
        """The skill id of ``queue_name``; raises :class:`UnknownQueue` when there is none."""
        key = redis_keys.cxone_skill(self.client.api_base(), queue_name)
        lock_timeout = MAX_PAGES * sum(self.client.timeout) + 5
        try:
            raw = get_or_compute(
                self.redis,
                key,
                lambda: self._lookup_for_cache(queue_name),
                lock_timeout=lock_timeout,
                wait_timeout=30,
            )
        except SingleFlightTimeout as exc:
            raise Transient(str(exc), not_delivered=True, endpoint="skills") from exc
        cached = json.loads(raw)
        if cached["skill_id"] is None:
            raise UnknownQueue(f"queue '{queue_name}': {cached['problem']}", endpoint="skills")
        return int(cached["skill_id"])

    def _lookup_for_cache(self, queue_name: str) -> tuple[str, float]:
        found = self.lookup(queue_name)
        ttl = self.ttl_seconds if found.skill_id is not None else NEGATIVE_TTL_SECONDS
        return found.to_json(), ttl

    def lookup(self, queue_name: str) -> SkillLookup:
        """Page through the skills matching ``queue_name`` and pick the exact, active one."""
        self.lookups += 1
        exact: list[dict] = []
        skip, pages = 0, 0
        while pages < MAX_PAGES:
            page = self.client.search_skills(queue_name, skip=skip, top=SKILLS_PAGE_SIZE)
            pages += 1
            skills = page.get("skills") or []
            exact += [s for s in skills if isinstance(s, dict) and s.get("skillName") == queue_name]
            skip += len(skills)
            if not skills or skip >= int(page.get("totalRecords") or 0):
                break
        active = [s for s in exact if s.get("isActive", True)]
        if len(active) == 1:
            skill = active[0]
            media_type_id = skill.get("mediaTypeId")
            return SkillLookup(
                queue_name,
                int(skill["skillId"]),
                pages=pages,
                media_type_id=media_type_id if isinstance(media_type_id, int) else None,
                media_type_name=skill.get("mediaTypeName") or None,
            )
        if len(active) > 1:
            ids = ", ".join(str(s.get("skillId")) for s in active)
            return SkillLookup(
                queue_name,
                None,
                f"ambiguous: {len(active)} active skills have this exact name (ids {ids}); use skill_id",
                pages,
            )
        if exact:
            return SkillLookup(
                queue_name,
                None,
                f"inactive: skill {exact[0].get('skillId')} has this name but is not active",
                pages,
            )
        return SkillLookup(queue_name, None, "missing: no CXone skill has this exact name", pages)
