"""shared.routing.read_back.judge: what a contact read back says about a routing whose earlier
attempt's outcome is unknown, for every status CXone's Digital Engagement API names."""

from __future__ import annotations

import pytest

from shared.cxone.contact import ContactFields, contact_state, unknown_contact
from shared.routing.read_back import FAILED, MOVE, ROUTED, UnreadableContact, judge, status_meaning

SKILL = 1200001
OURS, OTHER = "rq-ours", "rq-other"
AGENT = {"id": 4242, "isBotUser": False}
BOT = {"id": 9001, "isBotUser": True}


def contact(status: str | None, queue: str | None = None, assignee: object = None):
    return contact_state(
        "7000001", {"status": status, "routingQueueId": queue, "inboxAssigneeUser": assignee}, ContactFields()
    )


def never_asked() -> str | None:
    raise AssertionError("the routing queue list was not needed")


@pytest.mark.parametrize(
    ("status", "queue", "assignee", "decision"),
    [
        ("new", OURS, None, ROUTED),
        ("open", OURS, None, ROUTED),
        ("open", OURS, BOT, ROUTED),
        ("new", None, AGENT, ROUTED),
        ("open", OTHER, AGENT, ROUTED),
        ("new", None, None, MOVE),
        ("open", None, BOT, MOVE),
        ("new", OTHER, None, MOVE),
        ("open", OTHER, BOT, MOVE),
        ("pending", OTHER, None, ROUTED),
        ("escalated", None, AGENT, ROUTED),
        ("resolved", OURS, AGENT, FAILED),
        ("closed", OURS, None, FAILED),
        ("trashed", None, None, FAILED),
    ],
)
def test_every_status_has_one_decision(status, queue, assignee, decision) -> None:
    asked = []

    def queue_of_skill() -> str:
        asked.append(True)
        return OURS

    read = judge(contact(status, queue, assignee), SKILL, queue_of_skill)

    assert read.decision == decision
    assert read.settles == (decision != MOVE)
    assert read.seen()["status"] == status and read.seen()["routingQueueId"] == queue
    # The list is read only to compare a queue that is not obviously the answer.
    assert bool(asked) == (queue is not None and status in ("new", "open") and assignee in (None, BOT))


def test_a_skill_id_the_tenant_sends_with_the_contact_needs_no_list() -> None:
    body = {"status": "open", "routingQueueId": OURS, "skillId": SKILL}

    read = judge(contact_state("7000001", body, ContactFields()), SKILL, never_asked)

    assert read.decision == ROUTED


def test_an_unknown_contact_fails_without_a_guess() -> None:
    read = judge(unknown_contact("7000001"), SKILL, never_asked)

    assert (read.decision, read.seen()) == (
        FAILED,
        {"found": False, "conclusion": "CXone no longer knows the contact (404 when read back)"},
    )


@pytest.mark.parametrize("status", [None, "snoozed"])
def test_a_status_outside_cxones_list_cannot_tell(status) -> None:
    with pytest.raises(UnreadableContact) as raised:
        judge(contact(status, None), SKILL, never_asked)

    assert "CXONE_CONTACT_STATUS_FIELD" in raised.value.summary  # our words: Flower may show them


def test_a_queue_that_cannot_be_compared_cannot_tell() -> None:
    with pytest.raises(UnreadableContact, match="lists no single routing queue for skill 1200001"):
        judge(contact("open", OTHER), SKILL, lambda: None)


def test_without_a_queue_the_missing_list_does_not_matter() -> None:
    assert judge(contact("new", None), SKILL, lambda: None).decision == MOVE


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("open", "moves it unless"),
        ("pending", "settled routed"),
        ("resolved", "settled failed"),
        (None, "waits"),
    ],
)
def test_the_doctor_can_say_what_a_status_means(status, words) -> None:
    assert words in status_meaning(status)


def test_a_contact_without_the_queue_field_cannot_tell() -> None:
    # A tenant that names the field otherwise: every contact would look "in no queue" and be moved.
    body = {"status": "open", "inboxAssigneeUser": None}

    with pytest.raises(UnreadableContact, match="CXONE_CONTACT_QUEUE_FIELD"):
        judge(contact_state("7000001", body, ContactFields()), SKILL, never_asked)


def test_a_contact_without_the_assignee_field_counts_as_unassigned() -> None:
    body = {"status": "open", "routingQueueId": None}

    read = judge(contact_state("7000001", body, ContactFields()), SKILL, never_asked)

    assert read.decision == MOVE and read.contact.absent == {"assignee"}
