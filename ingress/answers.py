"""What the webhook answers about a routing: one function from a routing record to the answer.

Used for a new routing (``queued``), for a resend (the first routing's *current* state, never a stale
``queued``) and for a webhook that waited for the outcome (``?wait=N``), so all three say the same
thing about the same routing. ``status`` tells the bot's flow what to say to the customer:

- ``routed``: CXone accepted the call; ``skillId`` and ``routedAt`` say where and when.
- ``failed``: the routing will not happen (unknown or closed contact, a permanent CXone refusal,
  dead-lettered, or superseded by a newer routing for the same contact: ``supersededBy``); ``reason``
  says why, so the flow can offer something else.
- anything else (``queued``, ``retrying`` with ``lastError``, ``waiting`` for a CXone call slot): still
  under way; ``GET /routings/<routingId>`` follows it.

The body is the record's public view (``GET /routings/<id>``) with ``status`` in place of ``state``,
minus its bookkeeping times, so every public field a record gains (overflow, supersededBy, …)
reaches the sender too.
"""

from __future__ import annotations

import time

from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, QUEUED, ROUTED, SUPERSEDED, RoutingRecord

#: Public-view keys that describe the record rather than the routing: not part of an answer.
_BOOKKEEPING = frozenset({"state", "receivedAt", "updatedAt", "attempts"})


def routing_answer(record: RoutingRecord) -> tuple[dict, int]:
    """``(body, HTTP status if the sender waited)`` for the routing in ``record``, as it stands:
    200 when its outcome is final (routed, failed, superseded), 202 while it is under way."""
    return answer_from_public(record.to_public())


def answer_from_public(public: dict) -> tuple[dict, int]:
    """``(body, HTTP status if the sender waited)`` for a routing's public view."""
    state = public.get("state") or QUEUED
    body = {"status": state, **{key: value for key, value in public.items() if key not in _BOOKKEEPING}}
    if state == SUPERSEDED:
        newer = public.get("supersededBy") or "a newer routing for this contact"
        body.update(status=FAILED, reason=f"superseded by {newer}")
    return body, 200 if state in (ROUTED, FAILED, SUPERSEDED) else 202


def queued_record(job: RoutingJob, routing_id: str | None = None) -> RoutingRecord:
    """The record of a routing just queued for ``job`` (under ``routing_id`` if given), as it
    stands before any worker touched it."""
    now = time.time()
    return RoutingRecord(
        routing_id=routing_id or job.routing_id,
        state=QUEUED,
        job=job.to_message(),
        received_at=job.received_at or now,
        updated_at=now,
    )
