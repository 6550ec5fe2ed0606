"""What a digital contact read back from CXone says about a routing whose earlier attempt's
outcome is unknown: settled already, or still to be moved.

A routing-queue PUT can reach CXone and still leave the router without its answer: the worker is
killed while it waits, Redis goes away before the routing is recorded, the answer times out, or
CXone answers 500/502/504. Repeating the PUT a minute later is not harmless: an agent may have
accepted the chat meanwhile, and moving it into the queue again can take it away from that agent or
put it back in line. So such a routing reads the contact first (``GET /dfo/3.0/contacts/{id}``,
:meth:`~shared.cxone.client.CXoneClient.get_contact`) and :func:`judge` decides, from the statuses
of NICE's Digital Engagement API (``new``: created, nobody has worked on it; ``open``: being
worked on or waiting in a queue; ``pending``: an agent answered and waits for the customer;
``escalated``; ``resolved``: an agent closed the case, the customer may reopen it; ``closed``;
``trashed``; see help.nice-incontact.com, "Digital case statuses"):

===================================  =============================  ===================================
status (``CXONE_CONTACT_STATUS_FIELD``)  and                        decision
===================================  =============================  ===================================
new, open                            an agent assigned (not a bot)  routed, no PUT: an agent has it
new, open                            in the routing's queue         routed, no PUT: the PUT took effect
new, open                            no queue, or another queue     send the PUT
pending, escalated                   (any)                          routed, no PUT: past the queue
resolved, closed, trashed            (any)                          failed, no PUT: the case is over
(CXone answers 404)                                                 failed, no PUT: no such contact
anything else, or no status                                         cannot tell: retry (never guess)
===================================  =============================  ===================================

An assignee that is a bot user (``isBotUser``) is not an agent: a bot may hold the chat it is
handing over. A contact without the queue field at all (not even null) cannot tell either: the
tenant names it otherwise (``CXONE_CONTACT_QUEUE_FIELD``). One without the assignee field counts as
unassigned, since a tenant may well leave an empty assignee out; the doctor shows which fields a
tenant sends. The contact's routing queue is compared with the routing queue CXone lists for the
routing's skill (``GET /dfo/3.0/routing-queues``, ``skillId``); a contact in some queue when that
list names none for the skill is a case the router cannot tell either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.cxone.contact import FINISHED_STATUSES, WAITING_STATUSES, ContactState
from shared.cxone.errors import Transient

#: Waiting for an agent (in a queue, or with the bot that hands it over): the PUT decides.
WAITING = WAITING_STATUSES
#: An agent has worked on it: the contact is past the queue, moving it would take it from them.
PAST_THE_QUEUE = frozenset({"pending", "escalated"})
#: The case is over (closed and trashed ones CXone does not move at all), so nothing is moved.
OVER = FINISHED_STATUSES | {"resolved"}

ROUTED, FAILED, MOVE = "routed", "failed", "move"
#: The routing record's ``confirmedBy`` when a read-back settled it.
CONFIRMED_BY = "contact read-back"


class UnreadableContact(Transient):
    """The contact was read but says nothing the router can act on: retried, never guessed."""

    #: Our own words, naming settings and fields only.
    reason_is_ours = True


@dataclass(frozen=True)
class ReadBack:
    """What :func:`judge` decided (``routed``, ``failed`` or ``move``), why, and what was read."""

    decision: str
    why: str
    contact: ContactState

    @property
    def settles(self) -> bool:
        """True when the routing ends here without a PUT."""
        return self.decision != MOVE

    def seen(self) -> dict:
        """What was read, as the record shows it (``contactReadBack``): ids and status only."""
        if not self.contact.exists:
            return {"found": False, "conclusion": self.why}
        return {
            "status": self.contact.status,
            "routingQueueId": self.contact.routing_queue_id,
            "assignee": self.contact.assignee,
            "conclusion": self.why,
        }


def judge(contact: ContactState, skill_id: int, queue_of_skill: Callable[[], str | None]) -> ReadBack:
    """Decide what a routing to ``skill_id`` does with ``contact`` as read back (table above).

    ``queue_of_skill`` gives the routing queue id of ``skill_id`` (called only when needed).
    Raises :class:`UnreadableContact` when the contact cannot tell.
    """
    status = contact.status
    if not contact.exists:
        return ReadBack(FAILED, "CXone no longer knows the contact (404 when read back)", contact)
    if status in OVER:
        return ReadBack(FAILED, f"the contact is {status} in CXone", contact)
    if status in PAST_THE_QUEUE:
        return ReadBack(
            ROUTED, f"past the queue: the contact is {status} (an agent has worked on it)", contact
        )
    if status not in WAITING:
        raise UnreadableContact(
            f"the contact read back has status {status!r}, not one of CXone's digital statuses "
            "(check CXONE_CONTACT_STATUS_FIELD against `python -m ops doctor --contact ID`); "
            "not moved again until it can be told whether an earlier attempt moved it",
            endpoint="contact",
        )
    if contact.assignee is not None and not contact.assignee_is_bot:
        return ReadBack(ROUTED, f"an agent has it: assigned to agent {contact.assignee}", contact)
    if contact.skill_id == skill_id:
        return ReadBack(ROUTED, f"already in the routing queue of skill {skill_id}", contact)
    if "queue" in contact.absent:
        raise UnreadableContact(
            "the contact read back has no routing queue field (check CXONE_CONTACT_QUEUE_FIELD against "
            "`python -m ops doctor --contact ID`); not moved again until it can be told whether an "
            "earlier attempt moved it",
            endpoint="contact",
        )
    if contact.routing_queue_id is None:
        return ReadBack(MOVE, "in no routing queue: not moved yet", contact)
    target = queue_of_skill()
    if contact.routing_queue_id == target:
        return ReadBack(ROUTED, f"already in the routing queue of skill {skill_id}", contact)
    if target is None:
        raise UnreadableContact(
            f"the contact is in routing queue {contact.routing_queue_id}, and CXone lists no single "
            f"routing queue for skill {skill_id} to compare it with; not moved again until it can "
            "be told whether an earlier attempt moved it",
            endpoint="contact",
        )
    return ReadBack(MOVE, f"in another routing queue ({contact.routing_queue_id}): not moved yet", contact)


def status_meaning(status: str | None) -> str:
    """What a repeated routing does with a contact in ``status`` (for the doctor)."""
    if status in WAITING:
        return "waiting: a repeated routing moves it unless it is in that queue or an agent has it"
    if status in PAST_THE_QUEUE:
        return "past the queue: a repeated routing is settled routed without moving it"
    if status in OVER:
        return "over: a repeated routing is settled failed without moving it"
    return "not a CXone digital status: a repeated routing waits (check CXONE_CONTACT_STATUS_FIELD)"
