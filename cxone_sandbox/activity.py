"""Each skill's live state in the sandbox: agents logged in and available, contacts waiting, the
longest wait; served as CXone's skill activity (``GET …/skills/activity``).

NICE publishes no schema for the activity answer. Its shape here follows the one NICE's agent SDK
and third-party clients read (github.com/nice-devone/nice-cxone-agent-sdk; the reference the
router's adapter, ``shared/cxone/skill_activity.py``, cites): ``{"businessUnitId", "lastPollTime",
"skillActivity": [{"skillId", "skillName", "agentsAvailable", "agentsLoggedIn", "queueCount",
"longestQueueTimeInSeconds", …}]}``. Tests and demos set a skill's numbers through
``POST /sandbox/skills/<id>/activity`` or ``python -m cxone_sandbox skill-activity``; the fault
knobs ``skill_activity_outage_seconds`` (the activity endpoint alone answers 503) and
``skill_activity_omit_fields`` (a tenant that names the fields otherwise) make it misbehave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .seed import SeedSkill
from .timestamps import iso_timestamp

#: The values a control update may set, by their CXone names.
SETTABLE = ("agentsLoggedIn", "agentsAvailable", "queueCount", "longestQueueTimeInSeconds")
#: A fresh sandbox: every active skill has agents, some of them free, and nobody waiting.
DEFAULT_AGENTS_LOGGED_IN = 5
DEFAULT_AGENTS_AVAILABLE = 3


@dataclass
class SkillLiveState:
    """One skill's numbers. Not thread-safe: the state lock guards it."""

    agents_logged_in: int
    agents_available: int
    queue_count: int = 0
    longest_wait_seconds: int = 0

    @classmethod
    def default(cls, skill: SeedSkill) -> SkillLiveState:
        """Some agents available on an active skill; nobody on an inactive one."""
        if not skill.is_active:
            return cls(0, 0)
        return cls(DEFAULT_AGENTS_LOGGED_IN, DEFAULT_AGENTS_AVAILABLE)

    def update(self, values: dict[str, int]) -> None:
        """Apply a validated update; agents logged in never drop below agents available."""
        if "agentsLoggedIn" in values:
            self.agents_logged_in = values["agentsLoggedIn"]
        if "agentsAvailable" in values:
            self.agents_available = values["agentsAvailable"]
        if "queueCount" in values:
            self.queue_count = values["queueCount"]
            if not self.queue_count and "longestQueueTimeInSeconds" not in values:
                self.longest_wait_seconds = 0  # nobody waits, so nobody has waited long
        if "longestQueueTimeInSeconds" in values:
            self.longest_wait_seconds = values["longestQueueTimeInSeconds"]
        if "agentsLoggedIn" in values:
            self.agents_available = min(self.agents_available, self.agents_logged_in)
        else:
            self.agents_logged_in = max(self.agents_logged_in, self.agents_available)

    def cxone_json(self, skill: SeedSkill, business_unit_id: int, now: float) -> dict[str, Any]:
        """The skill's entry of ``skillActivity``, every field present."""
        working = self.agents_logged_in - self.agents_available
        waiting_since = now - self.longest_wait_seconds if self.queue_count else None
        return {
            "serverTime": iso_timestamp(now),
            "businessUnitId": business_unit_id,
            "skillId": skill.skill_id,
            "skillName": skill.skill_name,
            "mediaTypeId": skill.media_type_id,
            "mediaTypeName": skill.media_type_name,
            "isActive": skill.is_active,
            "isOutbound": False,
            "agentsLoggedIn": self.agents_logged_in,
            "agentsAvailable": self.agents_available,
            "agentsWorking": working,
            "agentsUnavailable": 0,
            "agentsACW": 0,
            "contactsActive": self.queue_count + working,
            "queueCount": self.queue_count,
            "longestQueueTimeInSeconds": self.longest_wait_seconds,
            "earliestQueueTime": iso_timestamp(waiting_since) if waiting_since is not None else None,
        }


def parse_activity_update(update: Any) -> dict[str, int]:
    """Validate a ``POST /sandbox/skills/<id>/activity`` body: any of :data:`SETTABLE`, each a
    whole number from 0; ValueError names the key."""
    if not isinstance(update, dict) or not update:
        raise ValueError(f"body must be a JSON object with one or more of {list(SETTABLE)}")
    unknown = sorted(set(update) - set(SETTABLE))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; known: {list(SETTABLE)}")
    for key, value in update.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be a whole number from 0")
    return dict(update)
