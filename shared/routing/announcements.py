"""The outcome announcement: how a routing that has finished tells the webhooks waiting for it.

Every transition of a routing record to a terminal state (routed, failed, superseded) is written by
:class:`~shared.routing.records.RoutingStatusStore` in one MULTI/EXEC transaction that also calls
:func:`announce_outcome`: a ``PUBLISH`` of ``{"routingId", "state"}`` on the one channel
:data:`~shared.redis_keys.ROUTING_OUTCOMES`. So an outcome is announced exactly once, in the same
round trip as the record is settled: never before the record says so, never without it.

One channel for every routing (the routing id in the payload) rather than one per routing: each
ingress process holds a single subscriber connection, however many webhooks wait in it, and
dispatches by routing id in memory (``ingress/waiting.py``). Every process receives every
announcement (a few dozen bytes each), which is cheap next to a subscription per request.

Redis pub/sub delivers to the subscribers connected at that moment and keeps nothing
(https://redis.io/docs/latest/develop/interact/pubsub/): a subscriber that is reconnecting misses
what was published meanwhile. The waiter therefore treats an announcement as a wake-up call only:
it registers before reading the record, reads the record for the answer, and re-reads every record
it waits for each time its subscription is (re)established.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from shared import redis_keys


@dataclass(frozen=True)
class Announcement:
    """One routing reached a terminal ``state``."""

    routing_id: str
    state: str


def announce_outcome(pipe: redis.client.Pipeline, routing_id: str, state: str) -> None:
    """Queue the announcement on ``pipe``: call it inside the transaction that settles the record."""
    pipe.publish(redis_keys.ROUTING_OUTCOMES, json.dumps({"routingId": routing_id, "state": state}))


def parse_announcement(data: bytes | str) -> Announcement | None:
    """The announcement in a pub/sub message's data, or None when it is not one (ignored)."""
    try:
        payload = json.loads(data)
        return Announcement(str(payload["routingId"]), str(payload["state"]))
    except (ValueError, TypeError, KeyError):
        return None
