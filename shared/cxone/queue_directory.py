"""Queue names → CXone skill ids, and skill ids → digital routing queue ids, looked up once and
shared by every worker through Redis.

CXone's ``skills?searchString=`` is a substring match ("Sales Support" also finds "Sales Support
Overflow"), so the directory pages through every match and keeps only exact names. Digital routing
queues appear in the ACD skill list under the same name, so one lookup serves both kinds.

A digital contact read back from CXone names its routing queue by the queue's own id (a uuid), not
by skill id; the DFO routing queue list (``GET /dfo/3.0/routing-queues``: ``id``, ``name``,
``skillId``) links the two, so that a contact's queue can be compared with a routing's skill.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import redis

from shared import redis_keys
from shared.cxone.client import ROUTING_QUEUES_PAGE_SIZE, SKILLS_PAGE_SIZE, CXoneClient
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


@dataclass(frozen=True)
class RoutingQueueLookup:
    """The digital routing queue of one skill: its id and name, or the reason there is none."""

    skill_id: int
    routing_queue_id: str | None
    name: str | None = None
    problem: str | None = None  # "missing: …" or "ambiguous: …"

    def to_json(self) -> str:
        return json.dumps(
            {"routing_queue_id": self.routing_queue_id, "name": self.name, "problem": self.problem}
        )

    @classmethod
    def from_json(cls, skill_id: int, text: str) -> RoutingQueueLookup:
        data = json.loads(text)
        return cls(skill_id, data["routing_queue_id"], data.get("name"), data.get("problem"))


class UnknownQueue(Permanent):
    """The routing table names a queue that CXone does not have (or has more than once)."""

    #: The queue name comes from our routing table and the problem is our own finding.
    reason_is_ours = True


class QueueDirectory:
    """Resolves queue names to skill ids with a Redis cache shared by all workers."""

    def __init__(self, client: CXoneClient, redis_client: redis.Redis, ttl_seconds: int):
        self.client = client
        self.redis = redis_client
        self.ttl_seconds = ttl_seconds
        #: Lookups (each possibly several pages) this process made, for metrics and the benchmark.
        self.lookups = 0

    def _cached(
        self, key: str, compute: Callable[[], tuple[str, float]], *, lock_timeout: float, endpoint: str
    ) -> str:
        """The cached value at ``key``, computed by one worker while the others wait for it. A wait
        that times out is transient: the lookup was not made, so the routing retries it."""
        try:
            return get_or_compute(self.redis, key, compute, lock_timeout=lock_timeout, wait_timeout=30)
        except SingleFlightTimeout as exc:
            raise Transient(str(exc), not_delivered=True, endpoint=endpoint) from exc

    def skill_id(self, queue_name: str) -> int:
        """The skill id of ``queue_name``; raises :class:`UnknownQueue` when there is none."""
        raw = self._cached(
            redis_keys.cxone_skill(self.client.api_base(), queue_name),
            lambda: self._lookup_for_cache(queue_name),
            lock_timeout=MAX_PAGES * sum(self.client.timeout) + 5,  # every page may be slow
            endpoint="skills",
        )
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

    # ------------------------------------------------------------ skill id -> routing queue id

    def routing_queue(self, skill_id: int) -> RoutingQueueLookup:
        """The digital routing queue of ``skill_id`` (cached like skill ids; a skill without one
        only briefly). Raises CXone errors; a skill that has none is a lookup with a ``problem``."""
        raw = self._cached(
            redis_keys.cxone_routing_queue_of_skill(self.client.api_base(), skill_id),
            lambda: self._routing_queue_for_cache(skill_id),
            lock_timeout=sum(self.client.timeout) + 5,  # one listing call
            endpoint="routing_queues",
        )
        return RoutingQueueLookup.from_json(skill_id, raw)

    def routing_queue_id(self, skill_id: int) -> str | None:
        """The routing queue id a digital contact shows when it is in ``skill_id``'s queue, or None
        when CXone lists no (single) routing queue for that skill."""
        return self.routing_queue(skill_id).routing_queue_id

    def _routing_queue_for_cache(self, skill_id: int) -> tuple[str, float]:
        found = self.lookup_routing_queue(skill_id)
        ttl = self.ttl_seconds if found.routing_queue_id is not None else NEGATIVE_TTL_SECONDS
        return found.to_json(), ttl

    def lookup_routing_queue(self, skill_id: int) -> RoutingQueueLookup:
        """List the tenant's routing queues once and pick the one synced from ``skill_id``."""
        self.lookups += 1
        listing = self.client.list_routing_queues(size=ROUTING_QUEUES_PAGE_SIZE)
        queues = [q for q in listing.get("data") or [] if isinstance(q, dict) and not q.get("isDeleted")]
        matches = [q for q in queues if q.get("skillId") == skill_id and not q.get("isSubqueue")]
        if len(matches) == 1:
            return RoutingQueueLookup(skill_id, str(matches[0].get("id")), matches[0].get("name"))
        if matches:
            ids = ", ".join(str(q.get("id")) for q in matches)
            return RoutingQueueLookup(
                skill_id, None, problem=f"ambiguous: routing queues {ids} have skill {skill_id}"
            )
        listed, hits = len(listing.get("data") or []), listing.get("hits")
        more = (
            f" (CXone has {hits}; the first {listed} were searched)"
            if isinstance(hits, int) and hits > listed
            else ""
        )
        return RoutingQueueLookup(
            skill_id, None, problem=f"missing: no routing queue has skill {skill_id}{more}"
        )
