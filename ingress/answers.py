"""What the webhook answers about a routing: one function from a routing record to the body.

A new routing is answered ``queued``. A resend is answered with the first routing's *current* state
(``routed``, ``failed``, ``superseded``…), never a stale ``queued``, so a sender that retried because
it got no answer in time learns what actually happened.
"""

from __future__ import annotations

import time

from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, QUEUED, RETRYING, ROUTED, SUPERSEDED, RoutingRecord


def current_answer(record: RoutingRecord) -> dict:
    """The webhook's answer body for the routing in ``record``, in its current state.

    Always ``status`` (the state), ``routingId``, ``intent``, ``queue``, ``contactId`` and ``mode``;
    then what the state adds: ``lastError``/``nextAttemptAt`` (retrying), ``skillId``/``routedAt``
    (routed), ``reason`` (failed), ``supersededBy`` (superseded). Keys come from the public view
    (``GET /routings/<id>``), so the two never disagree.
    """
    public = record.to_public()
    body = {
        "status": record.state,
        "routingId": public["routingId"],
        "intent": public["intent"],
        "queue": public["queue"],
        "contactId": public["contactId"],
        "mode": public["mode"],
    }
    for key in _STATE_KEYS.get(record.state, ()):
        body[key] = public.get(key)
    return body


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


#: The public view's keys each state adds to the answer.
_STATE_KEYS: dict[str, tuple[str, ...]] = {
    RETRYING: ("lastError", "nextAttemptAt"),
    ROUTED: ("skillId", "routedAt"),
    FAILED: ("reason",),
    SUPERSEDED: ("supersededBy",),
}
