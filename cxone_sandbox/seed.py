"""The fixed skill directory the sandbox serves: deterministic, so tests can import it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# CXone's media type ids, as the ACD skills API reports them in mediaTypeId / mediaTypeName.
MEDIA_TYPE_NAMES = {
    1: "Email",
    3: "Chat",
    4: "Phone Call",
    5: "Voice Mail",
    6: "Work Item",
    7: "SMS",
    8: "Social",
    9: "Digital",
}
EMAIL, CHAT, PHONE_CALL, VOICE_MAIL, WORK_ITEM, DIGITAL = 1, 3, 4, 5, 6, 9

# Skills of these media types also exist as Digital Engagement (DFO) routing queues.
DIGITAL_MEDIA_TYPE_IDS = frozenset({EMAIL, CHAT, DIGITAL})

FIRST_SKILL_ID = 1200001
GENERATED_REGION_COUNT = 118

# Fixed namespace so a skill's routing queue uuid is the same in every run.
_ROUTING_QUEUE_NAMESPACE = uuid.UUID("6f1c8f3e-4d0b-4c53-9a53-5a4d1c0ffee0")


@dataclass(frozen=True)
class SeedSkill:
    """One ACD skill of the sandbox tenant; digital ones double as DFO routing queues."""

    skill_id: int
    skill_name: str
    media_type_id: int
    is_active: bool = True

    @property
    def media_type_name(self) -> str:
        """CXone's display name of the skill's media type."""
        return MEDIA_TYPE_NAMES[self.media_type_id]

    @property
    def is_digital(self) -> bool:
        """True when CXone would also list this skill as a digital routing queue."""
        return self.media_type_id in DIGITAL_MEDIA_TYPE_IDS

    @property
    def routing_queue_id(self) -> str:
        """Stable uuid of the DFO routing queue synced from this skill."""
        return str(uuid.uuid5(_ROUTING_QUEUE_NAMESPACE, str(self.skill_id)))


# The skills the router's tests and examples name; order fixes their ids (1200001, 1200002, ...).
_NAMED_SKILLS: tuple[tuple[str, int, bool], ...] = (
    ("Sales Support", CHAT, True),
    ("Sales Support Overflow", CHAT, True),
    ("Technical Support", DIGITAL, True),
    ("Technical Support Tier 2", DIGITAL, True),
    ("Billing", CHAT, True),
    ("Billing Disputes", EMAIL, True),
    ("Claims", PHONE_CALL, True),
    ("Claims Escalations", PHONE_CALL, True),
    ("General Inquiry", DIGITAL, True),
    ("Retention", CHAT, True),
    ("Legacy Sales", CHAT, False),
    # Two active skills with one name: resolving "Duplicate Queue" by name must be ambiguous.
    ("Duplicate Queue", CHAT, True),
    ("Duplicate Queue", CHAT, True),
    ("After Hours Voicemail", VOICE_MAIL, True),
)

# Cycled per region so the generated skills cover several media types.
_REGION_SALES_MEDIA = (CHAT, DIGITAL, PHONE_CALL)
_REGION_SUPPORT_MEDIA = (PHONE_CALL, DIGITAL, EMAIL, WORK_ITEM)


def _build_seed_skills() -> tuple[SeedSkill, ...]:
    """Named skills first, then two per region ("Region 017 Sales", "Region 017 Support")."""
    rows: list[tuple[str, int, bool]] = list(_NAMED_SKILLS)
    for region in range(1, GENERATED_REGION_COUNT + 1):
        rows.append((f"Region {region:03d} Sales", _REGION_SALES_MEDIA[region % 3], True))
        # Every 17th region's support skill is retired, like the odd leftover in a real tenant.
        support_active = region % 17 != 0
        rows.append((f"Region {region:03d} Support", _REGION_SUPPORT_MEDIA[region % 4], support_active))
    return tuple(
        SeedSkill(FIRST_SKILL_ID + offset, name, media, active)
        for offset, (name, media, active) in enumerate(rows)
    )


SEED_SKILLS: tuple[SeedSkill, ...] = _build_seed_skills()
