"""CXone's skill activity (each queue's live state): the one adapter from its JSON, and a shared copy.

``GET {api}/inContactAPI/services/v30.0/skills/activity`` returns the activity of every skill in
one call (NICE's agent SDK calls it; github.com/nice-devone/nice-cxone-agent-sdk). NICE publishes no
schema for it: the names below are those third-party clients read
(``{"skillActivity": [{"skillId", "skillName", "agentsAvailable", "agentsLoggedIn", "queueCount",
"longestQueueTimeInSeconds", …}]}``), and only ``skillActivity``, ``skillId``, ``queueCount`` and
``agentsAvailable`` are seen in more than one source. So they are read here and nowhere else
(:func:`parse_activity`), every value may be missing, and a missing or malformed value is *unknown*,
which never moves a contact (:mod:`shared.routing.overflow`). ``python -m ops doctor`` prints what
the tenant returns for one skill, to check the names against the CXone supervisor view.

The copy (:class:`SkillActivityCache`) is shared by all workers through Redis. A worker that finds
it older than ``CXONE_ACTIVITY_TTL_SECONDS`` refreshes it, unless another worker took the refresh
in the last TTL (a Redis key set with NX and a TTL: one refresh per TTL for all workers together,
whether it succeeds or not, so a CXone that is down is asked once per TTL, not once per routing).
Nobody waits for a refresh: the others go on with the copy they have. A copy older than three TTLs
(CXone slow, down, or refusing the call) is not used at all: the caller then keeps the queue the
route asked for, never a guess.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from shared import redis_keys
from shared.cxone.client import CXoneClient
from shared.cxone.errors import CXoneError, RateLimited
from shared.cxone.single_flight import SingleFlightTimeout

log = logging.getLogger(__name__)

#: CXone's name of the list of skills, and of each skill's id, in the activity answer.
LIST_FIELD = "skillActivity"
SKILL_ID_FIELD = "skillId"
SKILL_NAME_FIELD = "skillName"
#: Each live value the router uses (its :class:`SkillActivity` attribute) → CXone's field name.
FIELDS: dict[str, str] = {
    "agents_available": "agentsAvailable",
    "queue_count": "queueCount",
    "longest_wait_seconds": "longestQueueTimeInSeconds",
}
#: A copy older than this many TTLs is not used: the route's own queue is.
STALE_AFTER_TTLS = 3
#: How long a routing waits for another worker's refresh of a copy too old to use (an activity call
#: takes tens of milliseconds; the wait ends sooner when that worker's turn ends).
REFRESH_WAIT_SECONDS = 2.0
REFRESH_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SkillActivity:
    """One skill's live state; a value CXone did not give (or gave as something else than a
    number) is None: unknown."""

    skill_id: int
    skill_name: str | None = None
    agents_available: int | None = None
    queue_count: int | None = None
    longest_wait_seconds: float | None = None

    def value(self, quantity: str) -> float | None:
        """The value named ``quantity`` (``agents_available``, …), None when unknown."""
        return getattr(self, quantity) if quantity in FIELDS else None

    def missing(self) -> list[str]:
        """CXone's names of the fields this skill's activity lacked."""
        return [field for quantity, field in FIELDS.items() if getattr(self, quantity) is None]

    def to_json(self) -> dict:
        """The compact form kept in the shared copy (unknown values left out)."""
        values = {quantity: getattr(self, quantity) for quantity in FIELDS}
        return {
            "name": self.skill_name,
            **{quantity: value for quantity, value in values.items() if value is not None},
        }

    @classmethod
    def from_json(cls, skill_id: int, data: Mapping[str, Any]) -> SkillActivity:
        """Read back :meth:`to_json`."""
        return cls(skill_id, data.get("name"), **{q: data[q] for q in FIELDS if q in data})


def parse_activity(body: Any) -> dict[int, SkillActivity]:
    """Each skill's activity in a ``skills/activity`` answer, by skill id.

    The one place that knows CXone's field names. An entry without a numeric ``skillId`` cannot
    be told apart and is left out; a value that is absent, null, a boolean, negative or not a
    number is unknown (None).
    """
    entries = body.get(LIST_FIELD) if isinstance(body, Mapping) else None
    found: dict[int, SkillActivity] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        skill_id = _whole(entry.get(SKILL_ID_FIELD))
        if skill_id is None or skill_id <= 0:
            continue
        name = entry.get(SKILL_NAME_FIELD)
        longest = _number(entry.get(FIELDS["longest_wait_seconds"]))
        found[skill_id] = SkillActivity(
            skill_id,
            name if isinstance(name, str) else None,
            agents_available=_whole(entry.get(FIELDS["agents_available"])),
            queue_count=_whole(entry.get(FIELDS["queue_count"])),
            longest_wait_seconds=longest,
        )
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _number(value: Any) -> float | None:
    """A non-negative JSON number (or numeric text, as some ACD answers give), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or value != value or value < 0 or value == float("inf"):
        return None
    return value


def _whole(value: Any) -> int | None:
    """A non-negative whole number, else None."""
    number = _number(value)
    return int(number) if number is not None and float(number).is_integer() else None


@dataclass(frozen=True)
class ActivitySnapshot:
    """Every skill's activity as one refresh found it, and when (``time.time()`` of the answer)."""

    fetched_at: float
    skills: Mapping[int, SkillActivity]

    def age(self, now: float | None = None) -> float:
        """Seconds since the refresh (never negative: the workers' clocks may differ a little)."""
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)

    def of(self, skill_id: int) -> SkillActivity | None:
        """One skill's activity; None when CXone listed none for it (every value unknown)."""
        return self.skills.get(skill_id)

    def to_json(self) -> str:
        """The shared copy as stored in Redis."""
        return json.dumps(
            {
                "fetched_at": self.fetched_at,
                "skills": {str(sid): skill.to_json() for sid, skill in self.skills.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ActivitySnapshot:
        """Read back :meth:`to_json`."""
        data = json.loads(text)
        skills = {int(sid): SkillActivity.from_json(int(sid), skill) for sid, skill in data["skills"].items()}
        return cls(float(data["fetched_at"]), skills)


class SkillActivityCache:
    """The workers' shared copy of every skill's activity (see the module docstring)."""

    def __init__(self, client: CXoneClient, redis_client: redis.Redis, ttl_seconds: float):
        self.client = client
        self.redis = redis_client
        self.ttl_seconds = ttl_seconds
        #: Refreshes this process made (each one CXone call), for tests and the benchmark.
        self.refreshes = 0
        self._last_failure: str | None = None
        #: The copy this process read last (see :meth:`read`).
        self._memo: ActivitySnapshot | None = None

    @property
    def stale_after_seconds(self) -> float:
        """The age past which the copy is not used."""
        return STALE_AFTER_TTLS * self.ttl_seconds

    def current(self) -> ActivitySnapshot | None:
        """The shared copy, refreshed first when it is older than the TTL and no other worker
        refreshed it in the last TTL; None when there is none younger than three TTLs.

        Raises :class:`RateLimited` instead of None when the copy is too old because our own
        limiter refused its refresh a slot (in this TTL, whichever worker asked): the tenant is
        busy, not CXone down, so the routing waits for a slot like any other call rather than
        skip its overflow rules.
        """
        snapshot = self.read()
        if snapshot is None or snapshot.age() >= self.ttl_seconds:
            if self._take_refresh_turn():
                snapshot = self._refresh() or snapshot
            elif snapshot is None or snapshot.age() > self.stale_after_seconds:
                # Too old to use, and another worker is refreshing it right now (after a quiet
                # spell, routings arrive together): wait for its answer rather than skip the rules.
                snapshot = self._wait_for_refresh() or snapshot
        if snapshot is None or snapshot.age() > self.stale_after_seconds:
            refused_ms = self.redis.pttl(redis_keys.CXONE_SKILL_ACTIVITY_REFUSED)
            if refused_ms > 0:
                raise RateLimited(
                    refused_ms / 1000.0,
                    "rate limiter: no CXone call slot for the skill activity the overflow rules need",
                )
            return None
        return snapshot

    def _wait_for_refresh(self) -> ActivitySnapshot | None:
        """The copy another worker's refresh writes, waited for while its turn lasts (at most
        :data:`REFRESH_WAIT_SECONDS`); None when it wrote none (CXone did not answer)."""
        deadline = time.monotonic() + REFRESH_WAIT_SECONDS
        while time.monotonic() < deadline:
            snapshot = self.read()
            if snapshot is not None and snapshot.age() <= self.stale_after_seconds:
                return snapshot
            if not self.redis.exists(redis_keys.CXONE_SKILL_ACTIVITY_REFRESH):
                return self.read()  # the turn ended: whatever it wrote, or nothing
            time.sleep(REFRESH_POLL_SECONDS)
        return None

    def read(self) -> ActivitySnapshot | None:
        """The shared copy as it is, however old (None when there is none).

        Every routing with overflow rules reads it, and the whole copy (every skill of the tenant)
        is tens of kilobytes: so only its time is read each time, and the copy itself once per
        refresh per process.
        """
        fetched_at = self.redis.get(redis_keys.CXONE_SKILL_ACTIVITY_FETCHED_AT)
        if fetched_at is None:
            return None
        memo = self._memo
        if memo is not None and repr(memo.fetched_at) == _text(fetched_at):
            return memo
        raw = self.redis.get(redis_keys.CXONE_SKILL_ACTIVITY)
        if raw is None:
            return None
        try:
            snapshot = ActivitySnapshot.from_json(raw)
        except (ValueError, KeyError, TypeError):
            return None  # written by another version: the next refresh replaces it
        self._memo = snapshot
        return snapshot

    def _take_refresh_turn(self) -> bool:
        """True for the one worker that may call CXone in this TTL."""
        turn_ms = max(1, int(self.ttl_seconds * 1000))
        return bool(
            self.redis.set(redis_keys.CXONE_SKILL_ACTIVITY_REFRESH, uuid.uuid4().hex, nx=True, px=turn_ms)
        )

    def _refresh(self) -> ActivitySnapshot | None:
        """Ask CXone once and share the answer; None (logged) when CXone did not answer."""
        self.refreshes += 1
        try:
            body = self.client.skill_activity()
        except RateLimited as exc:
            # Our own pacing, not CXone: remembered for one TTL so that routings wait for a slot
            # instead of taking their route's own queue (see current()).
            turn_ms = max(1, int(self.ttl_seconds * 1000))
            self.redis.set(redis_keys.CXONE_SKILL_ACTIVITY_REFUSED, exc.reason, px=turn_ms)
            log.debug("skill activity not refreshed: %s", exc.reason)
            return None
        except (CXoneError, SingleFlightTimeout) as exc:
            reason = exc.reason if isinstance(exc, CXoneError) else str(exc)
            # Once per TTL at most; the same reason again is only worth a debug line.
            level = logging.DEBUG if reason == self._last_failure else logging.WARNING
            self._last_failure = reason
            log.log(
                level,
                "skill activity not refreshed (overflow rules use the last copy while it is younger "
                "than %gs, then the routes' own queues): %s",
                self.stale_after_seconds,
                reason,
            )
            return None
        self._last_failure = None
        snapshot = ActivitySnapshot(time.time(), parse_activity(body))
        # Kept as long as it may be used; older, it is gone and nobody can mistake it for fresh.
        keep_ms = max(1, int(self.stale_after_seconds * 1000))
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(redis_keys.CXONE_SKILL_ACTIVITY, snapshot.to_json(), px=keep_ms)
        pipe.set(redis_keys.CXONE_SKILL_ACTIVITY_FETCHED_AT, repr(snapshot.fetched_at), px=keep_ms)
        pipe.delete(redis_keys.CXONE_SKILL_ACTIVITY_REFUSED)
        pipe.execute()
        self._memo = snapshot
        return snapshot
