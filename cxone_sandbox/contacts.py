"""Digital contacts of the sandbox tenant: which ids exist, their status, queue and agent.

As in CXone, contact ids are numbers (sent as decimal strings); any other id names no contact and
is answered 404. Every numeric id is an existing digital contact from the moment it is first used:
status ``new`` (created, no agent has worked on it), no routing queue, no agent. That is the state
of a chat a Cognigy bot is about to hand over. NICE's Studio action "Update Digital Contact Status"
(help.nice-incontact.com, ``set_digi_contact_status``) moves a contact on to Open, Pending,
Escalated, Resolved or Closed; ``new`` is only where a contact starts. The status list and the
contact's fields follow NICE's Digital Engagement API (``GET /dfo/3.0/contacts/{contactNumber}``,
as in the client generated from NICE's specification, github.com/calljacob/nice-cxone-api).
Tests change a contact through ``POST /sandbox/contacts/<id>`` (or ``python -m cxone_sandbox
contact``), e.g. to assign it to an agent between two routing attempts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from .timestamps import iso_timestamp

STATUSES = ("new", "open", "pending", "escalated", "resolved", "closed", "trashed")
#: Statuses of a contact that is over: moving it or signalling it is answered 404.
FINISHED = frozenset({"closed", "trashed"})
CONTACT_ID = re.compile(r"[0-9]{1,20}", re.ASCII)
CHANNEL_ID = "chat_5e0f7a51-8f8e-4c9b-9d51-3a1e2b4c5d6e"

# Fixed namespace so a contact's interaction, thread and customer ids are the same in every run.
_NAMESPACE = uuid.UUID("0c6f3b52-77a1-4e0e-a0e5-5a4d1c0ffee1")


def is_contact_id(value: str) -> bool:
    """True when ``value`` can be a CXone contact id (1 to 20 ASCII digits)."""
    return CONTACT_ID.fullmatch(value) is not None


def _stable_uuid(kind: str, contact_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{contact_id}"))


@dataclass
class SandboxContact:
    """One digital contact. Not thread-safe: the state lock guards it."""

    contact_id: str
    created_at: float
    status_updated_at: float
    status: str = "new"
    routing_queue_id: str | None = None
    skill_id: int | None = None
    routing_queue_priority: int = 0
    assignee: int | None = None  # the agent's user id (inboxAssigneeUser.id)

    @property
    def finished(self) -> bool:
        """Closed or trashed: CXone does not move it any more."""
        return self.status in FINISHED

    def set_status(self, status: str, now: float) -> None:
        """Change the status (and when it last changed, as CXone's statusUpdatedAt says)."""
        if status != self.status:
            self.status = status
            self.status_updated_at = now

    def dfo_json(self, status: str | None = None) -> dict[str, Any]:
        """The contact as ``GET /dfo/3.0/contacts/{id}`` returns it (``status`` overrides, e.g. a
        contact closed by the ``closed_contacts`` knob)."""
        return {
            "id": self.contact_id,
            "contactId": self.contact_id,
            "interactionId": _stable_uuid("interaction", self.contact_id),
            "threadId": _stable_uuid("thread", self.contact_id),
            "threadIdOnExternalPlatform": f"sandbox-thread-{self.contact_id}",
            "channelId": CHANNEL_ID,
            "direction": "inbound",
            "routingQueueId": self.routing_queue_id,
            "routingQueuePriority": self.routing_queue_priority,
            "status": status or self.status,
            "createdAt": iso_timestamp(self.created_at),
            "statusUpdatedAt": iso_timestamp(self.status_updated_at),
            "inboxAssigneeUser": _agent(self.assignee) if self.assignee is not None else None,
            # The customer, as CXone returns it with every contact: a client must not echo it.
            "endUser": {
                "id": _stable_uuid("customer", self.contact_id),
                "firstName": "Sandbox",
                "surname": f"Customer {self.contact_id}",
                "fullName": f"Sandbox Customer {self.contact_id}",
                "customFields": [{"ident": "account", "value": f"ACCT-{self.contact_id}"}],
            },
            "authorEndUserIdentity": {
                "idOnExternalPlatform": f"customer-{self.contact_id}@example.com",
                "firstName": "Sandbox",
                "lastName": f"Customer {self.contact_id}",
            },
        }


def _agent(user_id: int) -> dict[str, Any]:
    """An agent as the contact's ``inboxAssigneeUser`` shows it."""
    return {
        "id": user_id,
        "incontactId": _stable_uuid("agent", str(user_id)),
        "emailAddress": f"agent{user_id}@sandbox.example",
        "loginUsername": f"agent{user_id}@sandbox.example",
        "firstName": "Sandbox",
        "surname": f"Agent {user_id}",
        "isBotUser": False,
        "isSurveyUser": False,
    }


def parse_contact_update(update: Any) -> dict[str, Any]:
    """Validate a ``POST /sandbox/contacts/<id>`` body: ``status``, ``assignee`` (an agent's user
    id, or null to unassign) and ``skillId`` (a digital skill, or null for no queue); ValueError
    names the key."""
    if not isinstance(update, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(update) - {"status", "assignee", "skillId"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; known: ['status', 'assignee', 'skillId']")
    if "status" in update and update["status"] not in STATUSES:
        raise ValueError(f"status must be one of {list(STATUSES)}")
    for key in ("assignee", "skillId"):
        value = update.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a positive integer or null")
    return dict(update)
