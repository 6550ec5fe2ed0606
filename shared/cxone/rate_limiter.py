"""One CXone call budget for every worker process: a sliding-window log in Redis.

Celery's ``rate_limit`` is per worker instance, so it cannot keep N workers under one tenant-wide
limit. This limiter is a single Lua script: it counts the calls granted in the last window and either
grants one more or says how long until the oldest grant ages out. It is a true sliding window, so
*any* 60-second span (not just each calendar minute) stays within the limit.

Why hand-written rather than the ``limits`` package: the script reads the clock with Redis ``TIME``,
so worker hosts with skewed clocks still share one timeline, and a refusal returns the exact wait in
the same round trip (the worker turns it into a Celery retry countdown).

It also keeps the tenant-wide pause CXone asks for with a 429's ``Retry-After``: :meth:`CallLimiter.pause`
moves a "no call before" time forward (never back), and while it lies ahead every grant is refused
with the time left, whichever worker, task or code path asks. The sliding window is untouched by a
pause, so its own pacing simply continues afterwards.

After a Sentinel failover the new primary has the log as its replica had it: replication is
asynchronous, so the last grants before the crash may be missing, and a generous limiter could let
more than the limit through in a 60 s span around the switch. The script keeps the replication id of
the primary that holds the log (``<key>:primary``); when it finds itself on a server promoted from a
replica of that primary (``INFO replication``: the old id is now ``master_replid2``), it grants
nothing until one window has passed since it noticed: whatever was granted before the switch has
then aged out, lost or not. A restart of the same server (its own append-only file, nothing
replicated to lose) or a fresh Redis starts normally.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

#: Lua, shared by every script that grants from the limiter's log (this one and the backlog's
#: dispatch): after a failover the last grants may be lost, so on a server promoted from a replica of
#: the primary that held the log, grant nothing for one window (module doc). Expects the locals
#: ``now_ms``, ``window_ms`` and ``primary_key`` (the log's ``<key>:primary`` hash); sets
#: ``cautious_wait`` (ms, 0 when no caution applies). INFO is refused where it is not Redis
#: (fakeredis): no replication there, nothing to guard.
CAUTIOUS_START_LUA = """
local cautious_wait = 0
do
    local ok, info = pcall(redis.call, 'INFO', 'replication')
    if ok and type(info) == 'string' then
        local replid = string.match(info, 'master_replid:(%x+)')
        local replid2 = string.match(info, 'master_replid2:(%x+)')
        local known = redis.call('HMGET', primary_key, 'replid', 'cautious_until')
        local cautious_until = tonumber(known[2] or '0')
        if replid and known[1] ~= replid then
            if known[1] and known[1] == replid2 then
                cautious_until = now_ms + window_ms
            end
            redis.call('HSET', primary_key, 'replid', replid, 'cautious_until', cautious_until)
        end
        if cautious_until > now_ms then
            cautious_wait = cautious_until - now_ms
        end
    end
end
"""


def limiter_primary_key(log_key: str) -> str:
    """Where the limiter's log keeps the replication id of its primary (CAUTIOUS_START_LUA)."""
    return log_key + ":primary"


# KEYS[1] = log (list of grant times, newest first), KEYS[2] = the primary's replication id and the
# end of a cautious start, KEYS[3] = pause-until (ms, Redis clock; optional), last KEYS = the backlog
# (when ARGV[3] is '1'). ARGV = limit, window_ms, gated.
# Returns {wait_ms, paused, behind_backlog}: {0, 0, 0} is a grant.
_SLIDING_WINDOW = (
    """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local gated = ARGV[3] == '1'
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if #KEYS - (gated and 1 or 0) > 2 then
    local pause_until = tonumber(redis.call('GET', KEYS[3]) or '0')
    if pause_until > now_ms then
        return {pause_until - now_ms, 1, 0}
    end
end
local primary_key = KEYS[2]
"""
    + CAUTIOUS_START_LUA
    + """
if cautious_wait > 0 then
    return {cautious_wait, 0, 0}
end
local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
if oldest and now_ms - tonumber(oldest) < window_ms then
    return {tonumber(oldest) + window_ms - now_ms, 0, 0}
end
if gated and redis.call('ZCARD', KEYS[#KEYS]) > 0 then
    return {1, 0, 1}
end
redis.call('LPUSH', KEYS[1], now_ms)
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], window_ms)
return {0, 0, 0}
"""
)

# KEYS[1] = pause-until (ms); ARGV[1] = pause length in ms. Keeps the later of the current and the
# new end (two workers' 429s never shorten each other's pause); returns the ms left.
_PAUSE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wanted = now_ms + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if wanted > current then
    redis.call('SET', KEYS[1], wanted, 'PX', wanted - now_ms)
    return wanted - now_ms
end
return math.max(0, current - now_ms)
"""


#: CXone counts its limit per minute; the guard covers the delay between a grant and the call.
WINDOW_SECONDS = 60.0
GUARD_SECONDS = 1.0


def window_ms(window_seconds: float = WINDOW_SECONDS, guard_seconds: float = GUARD_SECONDS) -> int:
    """The sliding window, guard included, in ms (what the Lua scripts count grants in)."""
    return int((window_seconds + guard_seconds) * 1000)


@dataclass(frozen=True)
class SlotAnswer:
    """What the limiter said: ``wait`` 0.0 is a granted slot, else the seconds to wait; ``paused``
    when the refusal is CXone's pause (a 429's Retry-After) rather than the window being full."""

    wait: float
    paused: bool = False
    #: Refused only because routings wait in the backlog (they go first: arrival order).
    behind_backlog: bool = False


class CallLimiter:
    """Grants at most ``limit`` calls per sliding ``window_seconds`` across all processes, and none
    while the pause at ``pause_key`` (if given) lasts."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        limit: int,
        window_seconds: float = WINDOW_SECONDS,
        guard_seconds: float = GUARD_SECONDS,
        pause_key: str | None = None,
        backlog_key: str | None = None,
    ):
        self.redis = client
        self._script = client.register_script(_SLIDING_WINDOW)
        self._pause_script = client.register_script(_PAUSE)
        self.key = key
        self.pause_key = pause_key
        #: While this sorted set (the backlog of waiting routings) is not empty, a slot goes only
        #: to a caller that comes from it (``acquire(gated=False)``).
        self.backlog_key = backlog_key
        self.limit = limit
        # The guard widens the window a little: a call granted at t reaches CXone a few ms later,
        # and uneven network delay must not squeeze limit+1 arrivals into CXone's own 60 s.
        self.window_ms = window_ms(window_seconds, guard_seconds)

    def acquire(self, *, gated: bool = True) -> SlotAnswer:
        """Take one call slot, unless the window is full or CXone's pause lies ahead, or (when
        ``gated`` and a backlog key is set) routings wait in the backlog."""
        keys = [self.key, limiter_primary_key(self.key)]
        if self.pause_key is not None:
            keys.append(self.pause_key)
        gate = gated and self.backlog_key is not None
        if gate:
            keys.append(str(self.backlog_key))
        wait_ms, paused, behind = self._script(
            keys=keys, args=[self.limit, self.window_ms, "1" if gate else "0"]
        )
        return SlotAnswer(int(wait_ms) / 1000.0, bool(int(paused)), bool(int(behind)))

    def try_acquire(self) -> float:
        """Take one call slot: return 0.0 if granted, else the seconds to wait before asking again."""
        return self.acquire().wait

    def pause(self, seconds: float) -> float:
        """Grant no slot to anyone for ``seconds`` from now (or longer, if a pause already ends
        later); return the seconds the pause lasts from now. Needs ``pause_key``."""
        if self.pause_key is None:
            raise ValueError("this limiter has no pause key")
        left_ms = self._pause_script(keys=[self.pause_key], args=[max(1, int(seconds * 1000))])
        return int(left_ms) / 1000.0

    def pause_left(self) -> float:
        """Seconds until CXone's pause ends (0.0 when there is none)."""
        if self.pause_key is None:
            return 0.0
        # The key expires when the pause ends, so its time to live is the time left (-2: none).
        return max(0.0, int(self.redis.pttl(self.pause_key)) / 1000.0)
