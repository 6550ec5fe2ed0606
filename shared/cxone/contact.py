"""A digital contact as read back from CXone: the one adapter from its JSON to what the router needs.

``GET {api}/dfo/3.0/contacts/{contactId}`` returns the Digital Engagement contact (NICE's
Digital Engagement API, developer.niceincontact.com/API/DigitalEngagementAPI; the client generated
from NICE's specification, github.com/calljacob/nice-cxone-api
``src/services/digitalEngagement/DigitalContactService.ts``, ``DigitalContact_Contact``): ``id``,
``contactId``, ``interactionId``, ``threadId``, ``channelId``, ``routingQueueId``,
``routingQueuePriority``, ``status`` (``new``, ``open``, ``pending``, ``escalated``, ``resolved``,
``closed``, ``trashed``), ``createdAt``, ``statusUpdatedAt``, the assigned agents
(``inboxAssigneeUser``, ``ownerAssigneeUser``, ``inboxPreAssigneeUser``: user objects with a
numeric ``id``), and the customer (``endUser``, ``authorEndUserIdentity``, ``recipients``, …).

*Unconfirmed* against a live tenant, so every name the router reads is a setting
(``CXONE_CONTACT_QUEUE_FIELD``, ``CXONE_CONTACT_STATUS_FIELD``, ``CXONE_CONTACT_ASSIGNEE_FIELD``;
dotted paths reach into nested objects) and ``python -m ops doctor --contact ID`` prints what the
tenant returns. The assignee default, ``inboxAssigneeUser``, is the field of the spec-generated
client above; NICE's chat SDK (github.com/nice-devone/nice-cxone-chat-web-sdk, ``Case``) carries
both ``inboxAssigneeUser`` (an object) and ``inboxAssignee`` (the agent's numeric id), and either
works here: an object gives its ``id``, a number or string is the id itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.settings import Settings

#: Statuses in which CXone still has the contact waiting in (or for) a routing queue.
WAITING_STATUSES = frozenset({"new", "open"})
#: Statuses of a contact that is over: CXone answers 404 to moving it.
FINISHED_STATUSES = frozenset({"closed", "trashed"})


@dataclass(frozen=True)
class ContactFields:
    """Where the contact's routing queue, status and assigned agent are (field names or dotted paths)."""

    queue: str = "routingQueueId"
    status: str = "status"
    assignee: str = "inboxAssigneeUser"

    @classmethod
    def from_settings(cls, settings: Settings) -> ContactFields:
        """The names configured by the ``CXONE_CONTACT_*_FIELD`` settings."""
        return cls(
            queue=settings.cxone_contact_queue_field,
            status=settings.cxone_contact_status_field,
            assignee=settings.cxone_contact_assignee_field,
        )


@dataclass(frozen=True)
class ContactState:
    """What CXone says about one digital contact.

    ``exists`` is False when CXone answered 404 (not a digital contact of this tenant); every other
    field is then empty. ``raw`` is the body exactly as CXone returned it (it holds the customer's
    data: show it only through :func:`without_customer_data`).
    """

    contact_id: str
    exists: bool
    status: str | None = None
    routing_queue_id: str | None = None
    skill_id: int | None = None
    assignee: str | None = None
    #: The assignee is a bot user (``isBotUser``), e.g. the bot handing the chat over: no agent.
    assignee_is_bot: bool = False
    #: Which of ``status``, ``queue`` and ``assignee`` the body does not have at all (a field that
    #: is there with null is not absent): a name the tenant spells otherwise shows up here.
    absent: frozenset[str] = frozenset()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def waiting_in_queue(self) -> bool:
        """Still in (or waiting for) a routing queue: status new or open and no agent assigned (a
        bot user holding it is no agent)."""
        return (
            self.exists
            and self.status in WAITING_STATUSES
            and (self.assignee is None or self.assignee_is_bot)
        )

    @property
    def finished(self) -> bool:
        """Closed or trashed: CXone will not move it any more."""
        return self.exists and self.status in FINISHED_STATUSES


def contact_state(contact_id: str, body: Mapping[str, Any], fields: ContactFields) -> ContactState:
    """The typed view of a contact body (the one place that knows its field names)."""
    status = _scalar(_at(body, fields.status))
    skill = _at(body, "skillId")  # not in NICE's published schema; read when a tenant sends it
    assignee = _at(body, fields.assignee)
    return ContactState(
        contact_id=contact_id,
        exists=True,
        status=status.lower() if status else None,
        routing_queue_id=_scalar(_at(body, fields.queue)),
        skill_id=skill if isinstance(skill, int) and not isinstance(skill, bool) else None,
        assignee=_agent_id(assignee),
        assignee_is_bot=isinstance(assignee, Mapping) and assignee.get("isBotUser") is True,
        absent=frozenset(
            what
            for what, path in (
                ("status", fields.status),
                ("queue", fields.queue),
                ("assignee", fields.assignee),
            )
            if not has_field(body, path)
        ),
        raw=body,
    )


def unknown_contact(contact_id: str) -> ContactState:
    """The state of a contact CXone does not know (404)."""
    return ContactState(contact_id=contact_id, exists=False)


def _at(body: Mapping[str, Any], path: str) -> Any:
    """The value at a field name or dotted path, or None where any step is missing."""
    value: Any = body
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def has_field(body: Mapping[str, Any], path: str) -> bool:
    """True when the field name or dotted ``path`` is in ``body`` (its value may be null)."""
    value: Any = body
    for name in path.split("."):
        if not isinstance(value, Mapping) or name not in value:
            return False
        value = value[name]
    return True


def _scalar(value: Any) -> str | None:
    """A string or number as text; None for anything else (null, objects, lists, empty text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def _agent_id(value: Any) -> str | None:
    """An assignee given as a user object (its ``id``, else ``incontactId``) or as the id itself."""
    if isinstance(value, Mapping):
        return _scalar(value.get("id")) or _scalar(value.get("incontactId"))
    return _scalar(value)


# ------------------------------------------------------------------------------ showing a contact


def without_customer_data(body: Any) -> Any:
    """A contact body with only what identifies and places it: ids, status, queue, priority,
    direction and timestamps, kept at every depth (an assignee object keeps its ids), and nulls.

    Everything else is dropped: the customer's name, identities, addresses and custom fields,
    message text, device fingerprint, an agent's name and e-mail. It is an allow-list, so a field
    CXone adds later is left out until someone decides it may be shown.
    """
    if isinstance(body, Mapping):
        kept = {}
        for key, value in body.items():
            if isinstance(value, Mapping):
                inner = without_customer_data(value)
                if inner:
                    kept[key] = inner
            elif _shown_as_is(str(key), value):
                kept[key] = value
        return kept
    return None


def dropped_fields(body: Any, prefix: str = "") -> list[str]:
    """The paths of the fields :func:`without_customer_data` leaves out (names only, no values)."""
    if not isinstance(body, Mapping):
        return []
    dropped: list[str] = []
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            dropped += dropped_fields(value, path + ".")
        elif not _shown_as_is(str(key), value):
            dropped.append(path)
    return dropped


def _shown_as_is(key: str, value: Any) -> bool:
    """A null (it tells nothing about anyone), or an id, status, direction, priority or time."""
    if value is None:
        return True
    identifies = key in ("id", "status", "direction", "isBotUser") or key.endswith(("Id", "At", "Priority"))
    return identifies and isinstance(value, str | int | float | bool)
