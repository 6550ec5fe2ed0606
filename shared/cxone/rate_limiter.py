"""One CXone call budget for every worker process: a sliding-window log in Redis.

Celery's ``rate_limit`` is per worker instance, so it cannot keep N workers under one tenant-wide
limit. This limiter is a single Lua script: it counts the calls granted in the last window and either
grants one more or says how long until the oldest grant ages out. It is a true sliding window, so
*any* 60-second span (not just each calendar minute) stays within the limit.

Why hand-written rather than the ``limits`` package: the script reads the clock with Redis ``TIME``,
so worker hosts with skewed clocks still share one timeline, and a refusal returns the exact wait in
the same round trip (the worker turns it into a Celery retry countdown).
"""

from __future__ import annotations

import redis

# KEYS[1] = log (list of grant times, newest first); ARGV = limit, window_ms
_SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
if oldest and now_ms - tonumber(oldest) < window_ms then
    return tonumber(oldest) + window_ms - now_ms
end
redis.call('LPUSH', KEYS[1], now_ms)
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], window_ms)
return 0
"""


class CallLimiter:
    """Grants at most ``limit`` calls per sliding ``window_seconds`` across all processes."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        limit: int,
        window_seconds: float = 60.0,
        guard_seconds: float = 1.0,
    ):
        # The guard widens the window a little: a call granted at t reaches CXone a few ms later,
        # and uneven network delay must not squeeze limit+1 arrivals into CXone's own 60 s.
        self._script = client.register_script(_SLIDING_WINDOW)
        self.key = key
        self.limit = limit
        self.window_ms = int((window_seconds + guard_seconds) * 1000)

    def try_acquire(self) -> float:
        """Take one call slot: return 0.0 if granted, else the seconds to wait before asking again."""
        wait_ms = int(self._script(keys=[self.key], args=[self.limit, self.window_ms]))
        return wait_ms / 1000.0
