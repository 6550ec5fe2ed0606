"""Every Redis key the router writes, in one place, so both sides (and operators) agree on them.

All keys start with ``router:`` so the router can share a Redis database with Celery's own keys
(``celery``, ``unacked``, ``_kombu.*``) without collisions.
"""

from __future__ import annotations

import hashlib

PREFIX = "router:"

# Routing records (GET /routings/<id>, the stuck-routings CLI, the worker's state machine)
OPEN_ROUTINGS = PREFIX + "routings:open"  # sorted set: routing id -> received_at, not yet terminal
DEAD_LETTERS = PREFIX + "dead-letters"  # hash: routing id -> JSON {job, reason, failed_at}
ORPHAN_SWEEP_LOCK = PREFIX + "orphan-sweep:lock"  # one worker sweeps for lost messages at a time
# Pub/sub channel: {"routingId", "state"} each time a routing reaches a terminal state (the waiting
# webhooks' wake-up call, see shared/routing/announcements.py)
ROUTING_OUTCOMES = PREFIX + "routing-outcomes"
# Counter written just before a WAIT, so the WAIT covers every earlier write (shared/redis_connection.py)
REPLICA_ACK_MARKER = PREFIX + "replica-ack"
# The backlog (shared/routing/backlog.py): routings waiting for a CXone call slot, in Redis rather
# than in a worker's memory. Sorted set: routing id -> when its webhook was accepted (drain order).
BACKLOG = PREFIX + "backlog"
# hash: routing id -> "<taken ms> <score>" for a routing popped from the backlog and not yet published
BACKLOG_DISPATCHING = PREFIX + "backlog:dispatching"


def routing(routing_id: str) -> str:
    """Hash with the routing's state, attempts, last error and outcome."""
    return f"{PREFIX}routing:{routing_id}"


def routing_signal_sent(routing_id: str) -> str:
    """Set before a voice signal leaves: a signal is not idempotent and must never go twice."""
    return f"{PREFIX}routing:{routing_id}:signal"


def routing_put_started(routing_id: str) -> str:
    """Set before a digital routing-queue PUT leaves, cleared when CXone certainly did not act on
    it: present on a routing that is not settled, it means an earlier attempt's outcome is unknown
    and the contact must be read back before any new PUT (a contact is moved at most once)."""
    return f"{PREFIX}routing:{routing_id}:put"


def routing_deliveries(routing_id: str, attempt: int) -> str:
    """Counts how often the same attempt was (re)delivered: the poison-message guard."""
    return f"{PREFIX}routing:{routing_id}:deliveries:{attempt}"


def backlog_slot(routing_id: str) -> str:
    """Set by the backlog's dispatcher (the Redis time, ms) when it reserves a call slot for the
    routing it dispatches; taken by the routing's task. The Lua script builds it from
    ``backlog_slot("")`` + the id, so keep the id last."""
    return f"{PREFIX}routing-slot:{routing_id}"


def task_revoked(task_id: str) -> str:
    """Set when an operator revokes a task (Flower's "Revoke"): workers that were not running
    then, and so never heard Celery's broadcast, still refuse it."""
    return f"{PREFIX}task:{task_id}:revoked"


def dedupe_input(input_id: str) -> str:
    """Cognigy's inputId, unique per user input: a resend of the same body maps to one routing."""
    return f"{PREFIX}dedupe:input:{_digest(input_id)}"


# One CXone contact: its routings are numbered as they arrive, and only the newest may move it


def contact_seq(contact_id: str) -> str:
    """Counter: the sequence number of the contact's next routing (INCR at the ingress)."""
    return f"{PREFIX}contact:{_digest(contact_id)}:seq"


def contact_latest(contact_id: str) -> str:
    """Hash: the contact's latest routing (routing_id, seq, intent, at), and a pending claim
    (pending, pending_seq, pending_intent, pending_until) while a webhook without inputId is
    being enqueued."""
    return f"{PREFIX}contact:{_digest(contact_id)}:latest"


def contact_lease(contact_id: str) -> str:
    """Held (value: routing id and a token) while a worker carries out one of the contact's
    routings, so no two routings of one contact, nor two copies of one routing, run at once."""
    return f"{PREFIX}contact:{_digest(contact_id)}:lease"


# CXone
CXONE_TOKEN = PREFIX + "cxone:token"
CXONE_TOKEN_LOCK = PREFIX + "cxone:token:lock"
CXONE_TOKEN_FAILURE = PREFIX + "cxone:token:last-failure"  # short-lived: shared failure cooldown
CXONE_RATE_LIMIT = PREFIX + "cxone:rate-limit"
# "No CXone API call before" (ms, Redis clock), set from a 429's Retry-After; expires when it passes.
CXONE_PAUSE_UNTIL = PREFIX + "cxone:pause-until"
# CXone rejected the credentials: no token request while this exists (JSON: error, reason); the
# step counts rejections in a row, so the pause grows (15 s, 30 s, 60 s ...). Both go on success.
CXONE_TOKEN_PAUSE = PREFIX + "cxone:token:paused"
CXONE_TOKEN_PAUSE_STEP = PREFIX + "cxone:token:pause-step"
# Every skill's live state (JSON, with when it was fetched), shared by the workers for overflow
# decisions; and the refresh turn: set (NX, for one TTL) by the one worker that asks CXone.
CXONE_SKILL_ACTIVITY = PREFIX + "cxone:skill-activity"
CXONE_SKILL_ACTIVITY_FETCHED_AT = PREFIX + "cxone:skill-activity:fetched-at"  # read first: is it new?
CXONE_SKILL_ACTIVITY_REFRESH = PREFIX + "cxone:skill-activity:refresh"
# Set for one TTL when our own limiter refused the refresh a slot (we are pacing, CXone is not down)
CXONE_SKILL_ACTIVITY_REFUSED = PREFIX + "cxone:skill-activity:refused"


def cxone_skill(api_base: str, queue_name: str) -> str:
    """Cached skill lookup for one queue name on one CXone API host."""
    return f"{PREFIX}cxone:skill:{_digest(api_base + chr(0) + queue_name)}"


def cxone_routing_queue_of_skill(api_base: str, skill_id: int) -> str:
    """Cached digital routing queue id of one skill on one CXone API host."""
    return f"{PREFIX}cxone:routing-queue-of-skill:{_digest(api_base + chr(0) + str(skill_id))}"


def lock_for(key: str) -> str:
    """The lock that guards the (re)computation of a cached ``key``."""
    return key + ":lock"


def _digest(text: str) -> str:
    # Hash free text so arbitrary sender values cannot produce huge or odd key names.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
