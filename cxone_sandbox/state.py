"""All the sandbox remembers, behind one lock: tokens, knobs, rate window, contacts, stats."""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from .activity import SkillLiveState
from .config import SandboxConfig
from .contacts import SandboxContact, is_contact_id
from .faults import FaultKnobs
from .seed import SEED_SKILLS, SeedSkill
from .timestamps import iso_timestamp
from .tokens import TokenIdentity, TokenRegistry

ENDPOINT_KEYS = ("skills", "routing_queues", "routing_put", "signal", "contact_get", "skill_activity")
RATE_WINDOW_SECONDS = 60.0
#: Endpoints that act on a contact: the calls `hold_calls` holds.
CONTACT_ENDPOINTS = ("routing_put", "signal")  # also what `hold_answers` holds
#: A held call goes on by itself after this long, so a forgotten hold never hangs a client forever.
HOLD_MAX_SECONDS = 120.0
INJECTED_ERROR_STATUSES = (500, 502, 503)
#: How many token and API requests GET /sandbox/calls remembers (the oldest are forgotten).
CALL_LOG_SIZE = 100_000


class ApiError(Exception):
    """An error answer; the app renders it as an OAuth or a DFO error body depending on the path."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def seconds_until_free_slot(
    accepted_times: Sequence[float], now: float, limit: int, window: float = RATE_WINDOW_SECONDS
) -> int | None:
    """None if a call at `now` fits under `limit` per sliding window, else whole seconds to wait."""
    first_in_window = bisect.bisect_right(accepted_times, now - window)
    in_window = len(accepted_times) - first_in_window
    if in_window < limit:
        return None
    if limit == 0:
        return math.ceil(window)
    # A slot frees once enough of the oldest calls age out to leave limit - 1 in the window.
    freeing_call = accepted_times[first_in_window + in_window - limit]
    return max(1, math.ceil(freeing_call + window - now))


def max_calls_in_any_window(sorted_times: Sequence[float], window: float = RATE_WINDOW_SECONDS) -> int:
    """Most calls arriving within one window (t_last - t_first < window), by two pointers."""
    best = 0
    first = 0
    for last, arrival in enumerate(sorted_times):
        while arrival - sorted_times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


class SandboxState:
    """The sandbox's memory. Public methods take the lock; callers never touch fields directly."""

    def __init__(self, config: SandboxConfig, skills: Sequence[SeedSkill] = SEED_SKILLS) -> None:
        self.config = config
        self.skills = tuple(sorted(skills, key=lambda skill: skill.skill_id))
        self._skills_by_id = {skill.skill_id: skill for skill in self.skills}
        self._lock = threading.Lock()
        # Held calls wait on this (same lock); release_held and reset wake them.
        self._released = threading.Condition(self._lock)
        self._release_round = 0
        self._held_now = 0
        self._answers_held_now = 0
        self._tokens = TokenRegistry()
        self._clear_run()

    def _clear_run(self) -> None:
        """Forget knobs, counters, routings and contacts (not tokens nor the seed). Caller holds
        the lock."""
        self.knobs = FaultKnobs(token_ttl_seconds=self.config.token_ttl_seconds)
        self._rng = random.Random(self.knobs.seed)
        self._token_requests: Counter[str] = Counter()
        self._api_calls: Counter[str] = Counter()
        self._answers: Counter[str] = Counter()
        # Monotonic arrival times of accepted API calls, appended under the lock so always sorted.
        self._accepted_times: list[float] = []
        self._routings: dict[str, list[dict[str, Any]]] = {}
        self._signals: dict[str, list[dict[str, Any]]] = {}
        self._held_total = 0
        self._answers_held_total = 0
        self._contacts: dict[str, SandboxContact] = {}
        # Every token and API request with its arrival (wall clock) and the status answered.
        self._calls: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self._live: dict[int, SkillLiveState] = {s.skill_id: SkillLiveState.default(s) for s in self.skills}

    def reset(self) -> None:
        """Back to a fresh run: default knobs, zero stats, no contacts, every skill's default
        activity, held calls released. Tokens stay valid."""
        with self._lock:
            self._clear_run()
            self._release_held()

    # --- authentication -------------------------------------------------------------------

    def admit_token_request(self, grant_type: str, path: str) -> None:
        """Count a token request; raise ApiError(503) during an outage, 307 when redirecting."""
        with self._lock:
            self._token_requests[grant_type or "(missing)"] += 1
            self._raise_if_outage(time.time())
            self._raise_if_redirecting(self.knobs.redirect_token_to, path)

    def token_verdict(self) -> tuple[bool, bool, bool]:
        """``(invalid_client, invalid_grant, client_credentials_grant)`` as the knobs say now."""
        with self._lock:
            knobs = self.knobs
            return knobs.invalid_client, knobs.invalid_grant, knobs.client_credentials_grant

    def advertised_endpoints(self) -> tuple[str | None, str | None]:
        """``(token_endpoint, api_endpoint)`` discovery must advertise instead of our own, if any."""
        with self._lock:
            return self.knobs.discovery_token_endpoint, self.knobs.discovery_api_endpoint

    def issue_tokens(self, issuer: str, subject: str) -> dict[str, Any]:
        """A token response for subject, living token_ttl_seconds as the knob says now."""
        identity = TokenIdentity(
            issuer, self.config.tenant_id, self.config.business_unit_id, self.config.client_id
        )
        with self._lock:
            return self._tokens.issue(identity, subject, self.knobs.token_ttl_seconds, time.time())

    def redeem_refresh_token(self, refresh_token: str) -> str | None:
        """The subject of a usable refresh token (consumed), or None if unknown/expired/revoked."""
        with self._lock:
            return self._tokens.redeem_refresh_token(refresh_token, time.time())

    # --- API call gate ----------------------------------------------------------------------

    def hold_if_asked(self, endpoint: str) -> None:
        """Hold this call while ``hold_calls`` asks for it, until released (or HOLD_MAX_SECONDS)."""
        if endpoint not in CONTACT_ENDPOINTS:
            return
        with self._lock:
            if self.knobs.hold_calls <= 0:
                return
            self.knobs.hold_calls -= 1
            self._held_now += 1
            self._held_total += 1
            self._wait_for_release()
            self._held_now -= 1

    def hold_answer_if_asked(self, endpoint: str) -> None:
        """Hold the answer of a contact call already carried out (the PUT applied and recorded)
        while ``hold_answers`` asks for it, until released (or HOLD_MAX_SECONDS)."""
        if endpoint not in CONTACT_ENDPOINTS:
            return
        with self._lock:
            if self.knobs.hold_answers <= 0:
                return
            self.knobs.hold_answers -= 1
            self._answers_held_now += 1
            self._answers_held_total += 1
            self._wait_for_release()
            self._answers_held_now -= 1

    def _wait_for_release(self) -> None:
        """Wait until the next release (or HOLD_MAX_SECONDS). Caller holds the lock."""
        release_round = self._release_round
        deadline = time.monotonic() + HOLD_MAX_SECONDS
        while self._release_round == release_round and time.monotonic() < deadline:
            self._released.wait(deadline - time.monotonic())

    def _release_held(self) -> None:
        """Let every held call go on. Caller holds the lock."""
        self._release_round += 1
        self._released.notify_all()

    def admit_api_call(self, endpoint: str, bearer_token: str | None, path: str = "") -> None:
        """Count an API call and admit it, or raise ApiError (redirect, outage, 401, 429, injected 5xx)."""
        with self._lock:
            self._api_calls[endpoint] += 1
            self._raise_if_redirecting(self.knobs.redirect_api_to, path)
            self._raise_if_outage(time.time())
            problem = self._tokens.problem_with(bearer_token, time.time())
            if problem:
                raise ApiError(
                    401,
                    "invalid_token",
                    problem,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            now = time.monotonic()
            if self.knobs.throttle_next > 0:
                self.knobs.throttle_next -= 1
                raise ApiError(
                    429, "TooManyRequests", "Too many requests", headers=self._retry_after_header(1)
                )
            limit = self.knobs.rate_limit_per_minute
            if limit is not None:
                wait = seconds_until_free_slot(self._accepted_times, now, limit)
                if wait is not None:
                    message = f"Too many requests: limit is {limit} per minute"
                    raise ApiError(429, "TooManyRequests", message, headers=self._retry_after_header(wait))
            # Draw from the RNG only when errors are on, so a seed replays the same sequence.
            if self.knobs.error_rate and self._rng.random() < self.knobs.error_rate:
                status = self._rng.choice(INJECTED_ERROR_STATUSES)
                raise ApiError(status, "InjectedFault", f"sandbox injected a {status}")
            self._accepted_times.append(now)

    def _retry_after_header(self, computed: int) -> dict[str, str]:
        """The Retry-After of a 429: the knob's value, else ``computed``; none if turned off."""
        if not self.knobs.retry_after:
            return {}
        value = self.knobs.retry_after_seconds
        return {"Retry-After": str(computed if value is None else value)}

    @staticmethod
    def _raise_if_redirecting(base_url: str | None, path: str) -> None:
        """ApiError(307) to ``base_url`` + ``path`` when a redirect knob is set."""
        if base_url:
            location = base_url + path
            raise ApiError(307, "redirect", f"Moved to {location}", headers={"Location": location})

    def count_answer(self, status: int) -> None:
        """Tally 3xx, 401, 429 and 5xx answers of the API and token endpoints."""
        bucket = "5xx" if status >= 500 else "3xx" if 300 <= status < 400 else str(status)
        if bucket in ("3xx", "401", "429", "5xx"):
            with self._lock:
                self._answers[bucket] += 1

    def log_call(self, view: str, arrived_at: float, status: int) -> None:
        """Remember one token or API request: which view, when it arrived, what it was answered."""
        with self._lock:
            self._calls.append({"at": arrived_at, "endpoint": view, "status": status})

    def calls_view(self) -> list[dict[str, Any]]:
        """The token and API requests received so far (the last CALL_LOG_SIZE), oldest first."""
        with self._lock:
            return list(self._calls)

    def _raise_if_outage(self, now: float) -> None:
        """Raise ApiError(503) while an outage lasts. Caller holds the lock."""
        if self.knobs.outage_until is not None and now < self.knobs.outage_until:
            raise ApiError(503, "ServiceUnavailable", "CXone is unavailable (sandbox outage)")

    # --- directory ----------------------------------------------------------------------------

    def find_skills(self, search: str, skip: int, top: int) -> tuple[int, list[SeedSkill]]:
        """Skills whose name contains search (any case), by skillId: (total matches, one page)."""
        needle = search.casefold()
        matches = [skill for skill in self.skills if needle in skill.skill_name.casefold()]
        return len(matches), matches[skip : skip + top]

    def find_routing_queues(self, name_contains: str, size: int) -> tuple[int, list[SeedSkill]]:
        """Digital skills whose name contains name_contains: (total matches, first size of them)."""
        needle = name_contains.casefold()
        matches = [s for s in self.skills if s.is_digital and needle in s.skill_name.casefold()]
        return len(matches), matches[:size]

    # --- skill activity (live queue state) -------------------------------------------------------

    def skill_activity(self, skill_id: int | None = None) -> dict[str, Any]:
        """``GET skills/activity`` (every skill) or ``skills/{id}/activity`` (one): CXone's shape,
        less the fields the ``skill_activity_omit_fields`` knob leaves out. ApiError(503) while
        the ``skill_activity_outage_seconds`` knob lasts; 404 for an unknown skill."""
        with self._lock:
            now = time.time()
            until = self.knobs.skill_activity_outage_until
            if until is not None and now < until:
                raise ApiError(503, "ServiceUnavailable", "Skill activity is unavailable (sandbox outage)")
            if skill_id is None:
                skills: Sequence[SeedSkill] = self.skills
            elif skill_id in self._skills_by_id:
                skills = [self._skills_by_id[skill_id]]
            else:
                raise ApiError(404, "NotFound", f"Skill {skill_id} was not found")
            omitted = self.knobs.skill_activity_omit_fields
            entries = [
                {
                    key: value
                    for key, value in self._live[skill.skill_id]
                    .cxone_json(skill, self.config.business_unit_id, now)
                    .items()
                    if key not in omitted
                }
                for skill in skills
            ]
        return {
            "businessUnitId": self.config.business_unit_id,
            "lastPollTime": iso_timestamp(now),
            "skillActivity": entries,
        }

    def show_skill_activity(self, skill_id: int) -> dict[str, Any]:
        """One skill's numbers as the sandbox holds them (every field, no knob applied)."""
        with self._lock:
            skill = self._known_skill(skill_id)
            return self._live[skill_id].cxone_json(skill, self.config.business_unit_id, time.time())

    def update_skill_activity(self, skill_id: int, update: dict[str, int]) -> dict[str, Any]:
        """Apply a validated control update to one skill's numbers; returns them."""
        with self._lock:
            skill = self._known_skill(skill_id)
            self._live[skill_id].update(update)
            return self._live[skill_id].cxone_json(skill, self.config.business_unit_id, time.time())

    def _known_skill(self, skill_id: int) -> SeedSkill:
        """The seed skill with this id, or ApiError(404). Caller holds the lock."""
        skill = self._skills_by_id.get(skill_id)
        if skill is None:
            raise ApiError(404, "not_found", f"Skill {skill_id} is not in the sandbox's seed")
        return skill

    # --- contacts -----------------------------------------------------------------------------

    def route_contact(self, contact_id: str, skill_id: int) -> dict[str, Any]:
        """Move a digital contact to skill_id's routing queue and record it; returns the contact."""
        with self._lock:
            contact = self._live_contact(contact_id)
            skill = self._routable_skill(skill_id)
            contact.routing_queue_id, contact.skill_id = skill.routing_queue_id, skill_id
            routing = {"skillId": skill_id, "at": time.time()}
            self._routings.setdefault(contact_id, []).append(routing)
        return {"id": contact_id, "routingQueueId": skill.routing_queue_id, "skillId": skill_id}

    def _routable_skill(self, skill_id: int) -> SeedSkill:
        """The skill a digital contact can be moved to, or ApiError(400) saying why not."""
        skill = self._skills_by_id.get(skill_id)
        if skill is None:
            problem = f"Routing queue for skill {skill_id} does not exist"
        elif not skill.is_digital:
            problem = f"Skill {skill_id} ({skill.media_type_name}) is not a digital routing queue"
        elif not skill.is_active:
            problem = f"Skill {skill_id} is inactive"
        else:
            return skill
        raise ApiError(400, "InvalidRoutingQueue", problem, field="skillId")

    def record_signal(self, contact_id: str, params: dict[str, str]) -> None:
        """Record a Signal API call to a contact's Studio script."""
        with self._lock:
            self._live_contact(contact_id)
            self._signals.setdefault(contact_id, []).append({"params": params, "at": time.time()})

    def read_contact(self, contact_id: str) -> dict[str, Any]:
        """A contact as ``GET /dfo/3.0/contacts/{id}`` returns it; 404 for non-numeric ids."""
        with self._lock:
            contact = self._contact(contact_id)
            closed_by_knob = contact_id in self.knobs.closed_contacts
            return contact.dfo_json(status="closed" if closed_by_knob else None)

    def update_contact(self, contact_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """Apply a validated control update (status, assignee, skillId); returns the contact.

        Assigning an agent to a ``new`` contact opens it, as an agent taking it would, unless the
        update names a status itself.
        """
        with self._lock:
            if not is_contact_id(contact_id):
                raise ApiError(400, "invalid_request", f"{contact_id!r}: CXone contact ids are numeric")
            contact = self._contact(contact_id)
            now = time.time()
            if "skillId" in update:
                skill_id = update["skillId"]
                queue = self._routable_skill(skill_id).routing_queue_id if skill_id is not None else None
                contact.routing_queue_id, contact.skill_id = queue, skill_id
            if "assignee" in update:
                contact.assignee = update["assignee"]
                if contact.assignee is not None and contact.status == "new" and "status" not in update:
                    contact.set_status("open", now)
            if "status" in update:
                contact.set_status(update["status"], now)
            return contact.dfo_json()

    def _contact(self, contact_id: str) -> SandboxContact:
        """The contact with this id, created on first use; ApiError(404) when the id is not numeric
        (CXone has no such contact). Caller holds the lock."""
        if not is_contact_id(contact_id):
            raise ApiError(404, "ContactNotFound", f"Contact {contact_id} was not found")
        contact = self._contacts.get(contact_id)
        if contact is None:
            now = time.time()
            contact = self._contacts[contact_id] = SandboxContact(contact_id, now, now)
        return contact

    def _live_contact(self, contact_id: str) -> SandboxContact:
        """A contact that can still be moved or signalled; ApiError(404) for unknown, closed and
        trashed ones (and those the ``closed_contacts`` knob closes). Caller holds the lock."""
        contact = self._contact(contact_id)
        if contact.finished or contact_id in self.knobs.closed_contacts:
            raise ApiError(404, "ContactNotFound", f"Contact {contact_id} was not found")
        return contact

    # --- control --------------------------------------------------------------------------------

    def update_knobs(self, update: dict[str, Any]) -> dict[str, Any]:
        """Apply an already validated partial update; returns the knobs as GET shows them."""
        with self._lock:
            for name, value in update.items():
                if name == "outage_seconds":
                    self.knobs.outage_until = time.time() + value if value > 0 else None
                elif name == "revoke_tokens":
                    if value:
                        self._tokens.revoke_all()
                elif name == "release_held":
                    if value:
                        self._release_held()
                elif name == "seed":
                    self.knobs.seed = value
                    self._rng = random.Random(value)
                elif name == "skill_activity_outage_seconds":
                    self.knobs.skill_activity_outage_until = time.time() + value if value > 0 else None
                else:
                    setattr(self.knobs, name, value)
            return self._knobs_view()

    def knobs_view(self) -> dict[str, Any]:
        """The current knobs as JSON."""
        with self._lock:
            return self._knobs_view()

    def _knobs_view(self) -> dict[str, Any]:
        """The current knobs as JSON. Caller holds the lock."""
        knobs = self.knobs
        remaining = max(0.0, (knobs.outage_until or 0) - time.time())
        return {
            "latency_ms": knobs.latency_ms,
            "rate_limit_per_minute": knobs.rate_limit_per_minute,
            "retry_after": knobs.retry_after,
            "error_rate": knobs.error_rate,
            "seed": knobs.seed,
            "outage_until": iso_timestamp(knobs.outage_until) if knobs.outage_until and remaining else None,
            "outage_remaining_seconds": round(remaining, 3),
            "token_ttl_seconds": knobs.token_ttl_seconds,
            "closed_contacts": sorted(knobs.closed_contacts),
            "hold_calls": knobs.hold_calls,
            "retry_after_seconds": knobs.retry_after_seconds,
            "throttle_next": knobs.throttle_next,
            "redirect_token_to": knobs.redirect_token_to,
            "redirect_api_to": knobs.redirect_api_to,
            "discovery_token_endpoint": knobs.discovery_token_endpoint,
            "discovery_api_endpoint": knobs.discovery_api_endpoint,
            "client_credentials_grant": knobs.client_credentials_grant,
            "invalid_client": knobs.invalid_client,
            "invalid_grant": knobs.invalid_grant,
            "skill_activity_outage_remaining_seconds": round(
                max(0.0, (knobs.skill_activity_outage_until or 0) - time.time()), 3
            ),
            "skill_activity_omit_fields": sorted(knobs.skill_activity_omit_fields),
            "hold_answers": knobs.hold_answers,
        }

    def stats_view(self, summary: bool) -> dict[str, Any]:
        """Counters of this run; with summary, without the per-contact routing and signal maps."""
        with self._lock:
            routed = [len(history) for history in self._routings.values()]
            signalled = [len(history) for history in self._signals.values()]
            stats: dict[str, Any] = {
                "token_requests": sum(self._token_requests.values()),
                "token_requests_by_grant": dict(self._token_requests),
                "api_calls": sum(self._api_calls.values()),
                "api_calls_by_endpoint": {key: self._api_calls[key] for key in ENDPOINT_KEYS},
                "accepted_api_calls": len(self._accepted_times),
                "answered_429": self._answers["429"],
                "answered_5xx": self._answers["5xx"],
                "answered_401": self._answers["401"],
                "answered_3xx": self._answers["3xx"],
                "max_calls_in_any_60s": max_calls_in_any_window(self._accepted_times),
                "contacts_routed": len(routed),
                "contacts_routed_more_than_once": sum(1 for count in routed if count > 1),
                "contacts_signalled": len(signalled),
                "contacts_signalled_more_than_once": sum(1 for count in signalled if count > 1),
                "held_calls": self._held_now,
                "held_calls_total": self._held_total,
                "held_answers": self._answers_held_now,
                "held_answers_total": self._answers_held_total,
            }
            if not summary:
                # Entries are never mutated once recorded, so copying the lists is enough.
                stats["routings"] = {cid: list(h) for cid, h in self._routings.items()}
                stats["signals"] = {cid: list(h) for cid, h in self._signals.items()}
            return stats
