"""The contact's latest routing: which of one CXone contact's routings is the newest, so it wins.

A customer who changes their mind sends a second webhook for the same contact (billing, then sales).
Both become routings, and both may be retried, so without an order the contact could end in the
older queue. Redis keeps, per contact (keys in :mod:`shared.redis_keys`):

- ``contact_seq``: a counter. The publisher numbers each routing of the contact (``contact_seq`` in
  the task message) in the same round trip as its duplicate check, so numbers follow the order in
  which webhooks were accepted. Higher is newer.
- ``contact_latest``: a hash with the newest routing known so far: ``routing_id``, ``seq``,
  ``intent`` and ``at`` (when its webhook arrived). The ingress advances it once the task is safely
  in Redis (the record's create), a worker when it starts a routing, and a replay once re-published.
  It only ever moves forward.

A worker holds the contact's lease (``worker.routing.ContactLease``) while it carries out a routing,
and under it calls :meth:`LatestRoutings.start`: its routing becomes the latest, unless a newer one
is already known, in which case it is superseded and makes no CXone call. Since the lease lets one
call per contact out at a time and ``latest`` only grows, an older routing never moves the contact
after a newer one did; one already running when a newer arrives finishes first.

The same hash is the duplicate guard for webhooks without an ``inputId``: such a webhook is a resend
only if the contact's latest routing has the same intent and arrived less than
``DEDUPE_CONTACT_INTENT_SECONDS`` ago (a sender retries the request it is waiting for, never one from
before a newer request). While its first copy is being enqueued the claim is *pending* on the hash
(``pending``, ``pending_seq``, ``pending_intent``, ``pending_until``): it counts as the contact's
latest, so a concurrent copy waits for it instead of making a second routing. A pending claim keeps
its routing's number (also in an inputId key, ``pending:<id>#<seq>``), so a resend that finds it
still pending long after can take that routing over under the same id and number (see
:meth:`shared.routing.publisher.RoutingPublisher.publish`).

Task messages published before sequence numbers existed carry none: such a routing yields to any
routing of the contact that has one (necessarily newer), and runs normally otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from shared import redis_keys
from shared.routing.job import RoutingJob

#: How a resend of a webhook is recognised (see :func:`shared.routing.publisher.resend_rule`).
BY_INPUT_ID, BY_CONTACT_INTENT, NOT_CHECKED = "input", "contact", "none"
#: Outcomes of :meth:`LatestRoutings.claim`.
CLAIMED, DUPLICATE, PENDING = "claimed", "duplicate", "pending"
PENDING_PREFIX = "pending:"

#: Lua: ``advance(key, routing_id, seq, intent, at, keep)`` makes the routing the contact's latest
#: if it is newer than the latest, and drops a pending claim it overtakes. Returns the latest seq
#: as it was before (0: none). Shared by the record's create (ingress) and :data:`_START` (worker).
ADVANCE_LUA = """
local function advance(key, routing_id, seq, intent, at, keep)
    local before = tonumber(redis.call('HGET', key, 'seq') or '0')
    if seq > before then
        redis.call('HSET', key, 'routing_id', routing_id, 'seq', seq, 'intent', intent, 'at', at)
    end
    local pending_seq = redis.call('HGET', key, 'pending_seq')
    if pending_seq and tonumber(pending_seq) <= seq then
        redis.call('HDEL', key, 'pending', 'pending_seq', 'pending_intent', 'pending_until')
    end
    redis.call('EXPIRE', key, keep)
    return before
end
"""

# KEYS = contact seq, contact latest, [inputId key]; ARGV = routing id, intent, now, rule,
# contact-intent window, pending ttl, keep. Returns {'duplicate', routing id} or {'pending',
# routing id, its seq ('' if unknown)} for a resend, else {'claimed', seq} after numbering the
# routing and claiming the rule's key as pending ('pending:<routing id>#<seq>' for an inputId).
_CLAIM = """
local routing_id, intent, now, rule = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local window, pending_ttl, keep = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if rule == 'input' then
    local existing = redis.call('GET', KEYS[3])
    if existing then
        if string.sub(existing, 1, 8) == 'pending:' then
            local id, seq = string.match(string.sub(existing, 9), '^(.-)#(%d+)$')
            if id then return {'pending', id, seq} end
            return {'pending', string.sub(existing, 9), ''}  -- written before claims kept their seq
        end
        return {'duplicate', existing}
    end
elseif rule == 'contact' then
    local l = redis.call('HMGET', KEYS[2], 'pending', 'pending_intent', 'pending_until',
                         'routing_id', 'intent', 'at', 'pending_seq')
    if l[1] and l[3] and tonumber(l[3]) > now then
        -- a webhook for this contact is being enqueued right now: it is the latest
        if l[2] == intent then return {'pending', l[1], l[7] or ''} end
    elseif l[4] and l[5] == intent and now - tonumber(l[6]) < window then
        return {'duplicate', l[4]}
    end
end
local seq = redis.call('INCR', KEYS[1])
local latest_seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
if seq <= latest_seq then  -- the counter expired while the latest did not: never go back
    seq = latest_seq + 1
    redis.call('SET', KEYS[1], seq)
end
redis.call('EXPIRE', KEYS[1], keep)
if rule == 'input' then
    redis.call('SET', KEYS[3], 'pending:' .. routing_id .. '#' .. seq, 'EX', pending_ttl)
elseif rule == 'contact' then
    redis.call('HSET', KEYS[2], 'pending', routing_id, 'pending_seq', seq, 'pending_intent', intent,
               'pending_until', now + pending_ttl)
    redis.call('EXPIRE', KEYS[2], keep)
end
return {'claimed', tostring(seq)}
"""

# KEYS = contact latest, [inputId key]; ARGV = routing id. Drops only our own, still pending claim.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'pending') == ARGV[1] then
    redis.call('HDEL', KEYS[1], 'pending', 'pending_seq', 'pending_intent', 'pending_until')
end
if KEYS[2] then
    local v = redis.call('GET', KEYS[2])
    if v == 'pending:' .. ARGV[1] or (v and string.find(v, 'pending:' .. ARGV[1] .. '#', 1, true) == 1) then
        redis.call('DEL', KEYS[2])
    end
end
return true
"""

# KEYS = contact latest; ARGV = routing id, seq ('' for an old message without one), intent, at,
# keep. Returns the id of a newer routing of the contact (this one is superseded), or nil after
# making this routing the latest.
_START = (
    ADVANCE_LUA
    + """
if ARGV[2] == '' then
    local newest = redis.call('HGET', KEYS[1], 'routing_id')
    if newest and newest ~= ARGV[1] then return newest end
    return false
end
local seq = tonumber(ARGV[2])
if advance(KEYS[1], ARGV[1], seq, ARGV[3], ARGV[4], tonumber(ARGV[5])) > seq then
    return redis.call('HGET', KEYS[1], 'routing_id')
end
return false
"""
)


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`LatestRoutings.claim`."""

    outcome: str  # CLAIMED, DUPLICATE or PENDING
    #: DUPLICATE: the routing the resend belongs to; PENDING: the one being enqueued right now.
    routing_id: str | None = None
    #: CLAIMED: the new routing's ``contact_seq``; PENDING: the pending routing's (None if unknown).
    seq: int | None = None


@dataclass(frozen=True)
class LatestRouting:
    """The contact's newest known routing."""

    routing_id: str
    seq: int
    intent: str
    at: float  # when its webhook arrived (or its replay was made)


class LatestRoutings:
    """Numbers the routings of each contact and keeps the newest, in Redis (see the module doc)."""

    def __init__(self, client: redis.Redis, keep_seconds: int):
        self.redis = client
        #: How long a contact's counter and latest routing outlive its last routing.
        self.keep_seconds = keep_seconds
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._start = client.register_script(_START)

    def claim(self, job: RoutingJob, rule: str, *, contact_window: float, pending_ttl: int) -> Claim:
        """Recognise a resend of ``job``'s webhook by ``rule``, or number the routing and claim it.

        ``rule``: :data:`BY_INPUT_ID` (its inputId key alone decides), :data:`BY_CONTACT_INTENT`
        (the contact's latest routing, within ``contact_window`` seconds) or :data:`NOT_CHECKED`
        (only a number is assigned). A claim stays pending for ``pending_ttl`` seconds at most
        unless settled (the record's create) or released (:meth:`release`).
        """
        keys = [redis_keys.contact_seq(job.contact_id), redis_keys.contact_latest(job.contact_id)]
        if rule == BY_INPUT_ID:
            keys.append(input_key(job))
        outcome, value, *pending_seq = self._claim(
            keys=keys,
            args=[
                job.routing_id,
                job.intent,
                time.time(),
                rule,
                contact_window,
                pending_ttl,
                self.keep_seconds,
            ],
        )
        outcome, value = _text(outcome), _text(value)
        if outcome == CLAIMED:
            return Claim(CLAIMED, seq=int(value))
        seq = _text(pending_seq[0]) if pending_seq else ""
        return Claim(outcome, routing_id=value, seq=int(seq) if seq else None)

    def release(self, job: RoutingJob, rule: str) -> None:
        """Drop ``job``'s pending claim (its publish failed), so the sender's retry is not taken
        for a resend of nothing."""
        keys = [redis_keys.contact_latest(job.contact_id)]
        if rule == BY_INPUT_ID:
            keys.append(input_key(job))
        self._release(keys=keys, args=[job.routing_id])

    def start(self, job: RoutingJob) -> str | None:
        """Called by the worker under the contact's lease: make ``job`` the contact's latest routing
        and return None, or return the id of a newer routing that supersedes it."""
        newer = self._start(
            keys=[redis_keys.contact_latest(job.contact_id)],
            args=[
                job.routing_id,
                "" if job.contact_seq is None else job.contact_seq,
                job.intent,
                job.received_at or time.time(),
                self.keep_seconds,
            ],
        )
        return None if newer is None else _text(newer)

    def advance(self, job: RoutingJob) -> None:
        """Make ``job`` the contact's latest routing if it is newer (a replay, once re-published)."""
        if job.contact_seq is not None:
            self._start(
                keys=[redis_keys.contact_latest(job.contact_id)],
                args=[job.routing_id, job.contact_seq, job.intent, job.received_at, self.keep_seconds],
            )

    def get(self, contact_id: str) -> LatestRouting | None:
        """The contact's latest routing, or None when none is known (or it expired)."""
        routing_id, seq, intent, at = self.redis.hmget(
            redis_keys.contact_latest(contact_id), ["routing_id", "seq", "intent", "at"]
        )
        if routing_id is None:
            return None
        return LatestRouting(_text(routing_id), int(seq), _text(intent or b""), float(at or 0))


def input_key(job: RoutingJob) -> str:
    """The key under which a resend of ``job``'s webhook is recognised by its inputId."""
    return redis_keys.dedupe_input(job.input_id or "")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
