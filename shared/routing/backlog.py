"""The backlog: routings waiting for a CXone call slot, kept in Redis rather than in a worker's memory.

Why: Celery keeps a task with a countdown (ETA) in the worker's memory until it is due, whatever the
prefetch setting. When more webhooks arrive than the CXone limit lets through, every rate-limited
retry used to sit in RAM (about 36 KB each): a backlog of thousands grew a worker by ~30 MB a minute
until it was killed. Here a routing that cannot get a slot is *parked* instead, and its task ends.

The structure (keys in :mod:`shared.redis_keys`):

- ``router:backlog``: a sorted set, routing id -> the time its webhook was **accepted**
  (``received_at``). Drained lowest score first, so the order is arrival order: first accepted,
  first routed; a routing accepted ten minutes ago never loses its turn to a newer one.
- The routing record (``router:routing:<id>``) holds what the task message held (``job``, and the
  Celery task id ``task_id``), plus ``state`` ``waiting``, ``waiting_since`` and why. Record and
  set are written by one Lua script (:meth:`Backlog.park`), so a worker killed between parking and
  acking its message loses nothing: the message is delivered again, and parking again is a no-op
  (``ZADD NX`` keeps the first score, ``waiting_since`` the first time).
- ``router:backlog:dispatching``: a hash, routing id -> "<taken ms> <score>", for a routing popped
  from the set but whose task message is not published yet. A dispatcher killed between pop and
  publish leaves its entry behind; after :data:`DISPATCH_LEASE_MS` any dispatcher puts it back in
  the set (:meth:`Backlog.recover_expired`), at its original place.
- ``router:routing:<id>:slot``: the CXone call slot the dispatcher reserved for the routing it
  dispatched (the Redis time it was granted, in ms). The task takes it (:meth:`Backlog.take_pass`):
  its first CXone call then uses that slot instead of asking the limiter again, so a dispatched
  routing does not wait a second time.

Draining (``worker.dispatcher``): every worker process runs a dispatcher thread. One Lua script
(:meth:`Backlog.dispatch_next`) checks CXone's pause and the limiter's sliding window, and only when
a slot is free pops the head, takes the slot for it (the same log the limiter counts in, so the
limit holds for everyone) and records the dispatch lease, atomically: two dispatchers can never
pop the same routing, nor grant more slots than the limit.

Fairness against new arrivals: while the backlog is not empty, the limiter refuses a slot to a
routing that does not come from the backlog (see ``CallLimiter(backlog_key=…)``), so it parks
behind the others; and the ingress parks a new routing directly when the backlog is not empty
(:meth:`shared.routing.records.RoutingStatusStore.create_waiting_if_backlog`), which saves it a task
run that would only park it.

A reserved slot is only used while fresh (:data:`FRESH_SLOT_MS`): the limiter's window counts it
from when it was granted, and its guard (1 s) must cover the delay until the call really leaves.
A task that starts later asks the limiter for a new slot (it still passes the backlog's gate).

The Lua scripts build the per-routing slot key from its prefix, so they assume one Redis node (no
cluster), as the rest of the router does.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from shared import redis_keys
from shared.cxone.rate_limiter import CAUTIOUS_START_LUA, limiter_primary_key
from shared.routing.job import RoutingJob

#: A routing popped but not published within this long (its dispatcher died) goes back in the set.
DISPATCH_LEASE_MS = 30_000
#: How long a reserved slot may wait for its task's first call (well under the limiter's 1 s guard).
FRESH_SLOT_MS = 500
#: How long the "dispatched from the backlog" mark lives (the task normally takes it within ms).
PASS_TTL_MS = 300_000

# KEYS = record, backlog, open index; ARGV = routing id, score (received_at), now, job json,
# task id ('' unknown), reason, record ttl. Returns {parked (1/0), position (0-based) or -1}.
_PARK = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'routed' or state == 'failed' or state == 'superseded' then return {0, -1} end
if state ~= 'waiting' then
    redis.call('HSET', KEYS[1], 'state', 'waiting', 'waiting_since', ARGV[3])
end
if not state then
    redis.call('HSET', KEYS[1], 'received_at', ARGV[2], 'attempts', 0)
end
redis.call('HSET', KEYS[1], 'job', ARGV[4], 'waiting_for', ARGV[6], 'updated_at', ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'task_id', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
return {1, redis.call('ZRANK', KEYS[2], ARGV[1])}
"""

# KEYS = backlog, dispatching, limiter log, pause-until, the limiter log's primary (see
# CAUTIOUS_START_LUA); ARGV = limit, window ms, slot key prefix,
# pass ttl ms. Returns {'empty'}, {'wait', ms, paused 1/0} or {'go', routing id, score}.
_DISPATCH = (
    """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause_until = tonumber(redis.call('GET', KEYS[4]) or '0')
if pause_until > now_ms then return {'wait', pause_until - now_ms, 1} end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then return {'empty'} end
local limit, window_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local primary_key = KEYS[5]
"""
    + CAUTIOUS_START_LUA
    + """
if cautious_wait > 0 then return {'wait', cautious_wait, 0} end
local oldest = redis.call('LINDEX', KEYS[3], limit - 1)
if oldest and now_ms - tonumber(oldest) < window_ms then
    return {'wait', tonumber(oldest) + window_ms - now_ms, 0}
end
redis.call('LPUSH', KEYS[3], now_ms)
redis.call('LTRIM', KEYS[3], 0, limit - 1)
redis.call('PEXPIRE', KEYS[3], window_ms)
redis.call('ZREM', KEYS[1], head[1])
redis.call('HSET', KEYS[2], head[1], now_ms .. ' ' .. head[2])
redis.call('SET', ARGV[3] .. head[1], now_ms, 'PX', tonumber(ARGV[4]))
return {'go', head[1], head[2]}
"""
)

# KEYS = backlog, dispatching; ARGV = lease ms. Puts routings whose dispatch lease expired back.
_RECOVER = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('HGETALL', KEYS[2])
local back = {}
for i = 1, #entries, 2 do
    local taken, score = string.match(entries[i + 1], '^(%S+) (%S+)$')
    if not taken or now_ms - tonumber(taken) > tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], 'NX', tonumber(score or '0') or 0, entries[i])
        redis.call('HDEL', KEYS[2], entries[i])
        back[#back + 1] = entries[i]
    end
end
return back
"""

# KEYS = slot key, record; ARGV = now (s). Takes the dispatcher's mark: {present 1/0, age ms}, and
# notes on the record when the routing left the backlog (its retry window starts again there).
_TAKE_TICKET = """
local granted = redis.call('GET', KEYS[1])
if not granted then return {0, 0} end
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'left_backlog_at', ARGV[1]) end
return {1, now_ms - tonumber(granted)}
"""


@dataclass(frozen=True)
class Parked:
    """A routing now waiting in the backlog: ``since`` (epoch s) it first waited, ``position``
    (1 = next) among the waiting ones when it was parked."""

    since: float
    position: int


@dataclass(frozen=True)
class Dispatch:
    """What :meth:`Backlog.dispatch_next` did: ``routing_id`` popped (with its slot reserved), or
    nothing, with ``wait`` seconds until a slot frees (``paused``: CXone's pause), or ``empty``."""

    routing_id: str | None = None
    wait: float = 0.0
    paused: bool = False
    empty: bool = False


@dataclass
class BacklogPass:
    """Carried by a task dispatched from the backlog: it is the head of the line, so the limiter's
    backlog gate lets it through; ``reserved`` while its dispatcher's slot is still unused and fresh."""

    reserved: bool


_PASS: contextvars.ContextVar[BacklogPass | None] = contextvars.ContextVar("backlog_pass", default=None)


@contextlib.contextmanager
def carrying(ticket: BacklogPass | None) -> Iterator[None]:
    """Within the block, CXone calls of this thread use ``ticket`` (see :func:`current_pass`)."""
    token = _PASS.set(ticket)
    try:
        yield
    finally:
        _PASS.reset(token)


def current_pass() -> BacklogPass | None:
    """The backlog pass of the routing this thread is carrying out, if it was dispatched."""
    return _PASS.get()


class Backlog:
    """The waiting routings in Redis (see the module doc)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int):
        self.redis = client
        self.ttl_seconds = ttl_seconds
        self._park = client.register_script(_PARK)
        self._dispatch = client.register_script(_DISPATCH)
        self._recover = client.register_script(_RECOVER)
        self._take_pass = client.register_script(_TAKE_TICKET)

    def park(self, job: RoutingJob, reason: str, task_id: str | None = None) -> Parked | None:
        """Put ``job`` in the backlog (state ``waiting``), in one step with its record; idempotent.
        None if its routing has ended meanwhile (nothing to wait for)."""
        now = time.time()
        parked, rank = self._park(
            keys=[redis_keys.routing(job.routing_id), redis_keys.BACKLOG, redis_keys.OPEN_ROUTINGS],
            args=[
                job.routing_id,
                job.received_at or now,
                now,
                json.dumps(job.to_message()),
                task_id or "",
                reason[:500],
                self.ttl_seconds,
            ],
        )
        if not int(parked):
            return None
        since = self.redis.hget(redis_keys.routing(job.routing_id), "waiting_since")
        return Parked(float(since or now), int(rank) + 1)

    def dispatch_next(self, limit: int, window_ms: int) -> Dispatch:
        """Pop the oldest waiting routing if a call slot is free, taking the slot for it."""
        answer = self._dispatch(
            keys=[
                redis_keys.BACKLOG,
                redis_keys.BACKLOG_DISPATCHING,
                redis_keys.CXONE_RATE_LIMIT,
                redis_keys.CXONE_PAUSE_UNTIL,
                limiter_primary_key(redis_keys.CXONE_RATE_LIMIT),
            ],
            args=[limit, window_ms, redis_keys.backlog_slot(""), PASS_TTL_MS],
        )
        kind = _text(answer[0])
        if kind == "empty":
            return Dispatch(empty=True)
        if kind == "wait":
            return Dispatch(wait=int(answer[1]) / 1000.0, paused=bool(int(answer[2])))
        return Dispatch(routing_id=_text(answer[1]))

    def dispatched(self, routing_id: str) -> None:
        """The routing's task message is published: its dispatch lease is no longer needed."""
        self.redis.hdel(redis_keys.BACKLOG_DISPATCHING, routing_id)

    def drop(self, routing_id: str) -> None:
        """Take a routing out of the backlog (it ended, or it is dispatched some other way)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(redis_keys.BACKLOG, routing_id)
        pipe.hdel(redis_keys.BACKLOG_DISPATCHING, routing_id)
        pipe.execute()

    def recover_expired(self, lease_ms: int = DISPATCH_LEASE_MS) -> list[str]:
        """Put back the routings whose dispatcher died between pop and publish; their ids."""
        back = self._recover(keys=[redis_keys.BACKLOG, redis_keys.BACKLOG_DISPATCHING], args=[lease_ms])
        return [_text(routing_id) for routing_id in back]

    def take_pass(self, routing_id: str) -> BacklogPass | None:
        """The pass of a routing the dispatcher just handed over (taken once), or None."""
        present, age_ms = self._take_pass(
            keys=[redis_keys.backlog_slot(routing_id), redis_keys.routing(routing_id)], args=[time.time()]
        )
        if not int(present):
            return None
        return BacklogPass(reserved=int(age_ms) <= FRESH_SLOT_MS)

    def head(self) -> str | None:
        """The routing next in line, without taking it."""
        head = self.redis.zrange(redis_keys.BACKLOG, 0, 0)
        return _text(head[0]) if head else None

    def depth(self) -> int:
        """How many routings wait for a slot (popped ones on their way to a worker included)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(redis_keys.BACKLOG)
        pipe.hlen(redis_keys.BACKLOG_DISPATCHING)
        waiting, dispatching = pipe.execute()
        return int(waiting) + int(dispatching)

    def oldest_since(self) -> float | None:
        """When the oldest waiting routing was accepted (None: nobody waits)."""
        head = self.redis.zrange(redis_keys.BACKLOG, 0, 0, withscores=True)
        return float(head[0][1]) if head else None

    def contains(self, routing_ids: list[str]) -> set[str]:
        """Those of ``routing_ids`` that are in the backlog (waiting or being dispatched)."""
        if not routing_ids:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for routing_id in routing_ids:
            pipe.zscore(redis_keys.BACKLOG, routing_id)
            pipe.hexists(redis_keys.BACKLOG_DISPATCHING, routing_id)
        answers = pipe.execute()
        return {
            routing_id
            for routing_id, score, dispatching in zip(routing_ids, answers[::2], answers[1::2], strict=True)
            if score is not None or dispatching
        }


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
