"""The webhook's answer for a routing, from its record: what a bot that waited can branch on.

``status`` says what the flow should tell the customer:

- ``routed`` (200): CXone accepted the call; ``skillId`` and ``routedAt`` say where and when.
- ``failed`` (200): the routing will not happen (unknown or closed contact, a permanent CXone
  refusal, dead-lettered, or superseded by a newer routing for the same contact); ``reason`` says
  why, so the flow can offer something else.
- anything else (202): still under way (``queued``, ``retrying`` with ``lastError``, ``waiting`` for
  a CXone call slot); the routing goes on and ``GET /routings/<routingId>`` follows it.

The body is the record's public view (``GET /routings/<id>``) with ``status`` in place of
``state``, so every public field a record gains (overflow, supersededBy, …) reaches the sender too.
"""

from __future__ import annotations

from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, QUEUED, ROUTED, RoutingRecord

SUPERSEDED = "superseded"


def outcome_answer(record: RoutingRecord) -> tuple[dict, int]:
    """``(body, HTTP status)`` answering a webhook with the routing in ``record``, as it stands."""
    return answer_from_public(record.to_public())


def answer_from_public(public: dict) -> tuple[dict, int]:
    """``(body, HTTP status)`` for a routing's public view (``RoutingRecord.to_public()``)."""
    state = public.get("state") or QUEUED
    body = {"status": state, **{key: value for key, value in public.items() if key != "state"}}
    if state == ROUTED:
        return body, 200
    if state == SUPERSEDED:
        newer = public.get("supersededBy") or "a newer routing for this contact"
        body.update(status=FAILED, reason=f"superseded by {newer}")
        return body, 200
    if state == FAILED:
        return body, 200
    return body, 202


def queued_answer(job: RoutingJob, routing_id: str) -> tuple[dict, int]:
    """The answer for a routing whose record could not be read: queued, as the ingress left it."""
    return (
        {
            "status": QUEUED,
            "routingId": routing_id,
            "intent": job.intent,
            "queue": job.queue_label,
            "contactId": job.contact_id,
            "mode": job.mode,
        },
        202,
    )
