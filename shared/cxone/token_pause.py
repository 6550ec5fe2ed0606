"""The shared pause of token requests after CXone rejected the credentials.

A token request answered ``invalid_grant`` or ``invalid_client`` will be answered the same until an
operator fixes the credentials, and asking again and again can get the API user locked. So the
first rejection stops token requests from *every* worker for 15 s, the next one for 30 s, then
60 s at most: at most one token request per minute while the credentials stay wrong, and routing
resumes within a minute of the fix, with nothing restarted. A token obtained ends the pause.

Both keys are written by the one worker that holds the token refresh lock (see
:mod:`shared.cxone.single_flight`), so the step counter and the pause never race.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from shared import redis_keys

#: How long token requests stop after the 1st, 2nd, 3rd and later rejections in a row.
TOKEN_PAUSE_STEPS = (15.0, 30.0, 60.0)
#: Rejections in a row are forgotten after this long without one (the pause starts small again).
STEP_MEMORY_SECONDS = 3600


@dataclass(frozen=True)
class ActivePause:
    """A pause in force: the OAuth error that started it, the reason routings show, the time left."""

    error: str
    reason: str
    seconds_left: float


class TokenPause:
    """Reads and writes the pause in Redis; one instance per client (thread-safe: Redis does it)."""

    def __init__(
        self,
        client: redis.Redis,
        key: str = redis_keys.CXONE_TOKEN_PAUSE,
        step_key: str = redis_keys.CXONE_TOKEN_PAUSE_STEP,
        steps: tuple[float, ...] = TOKEN_PAUSE_STEPS,
    ):
        self.redis = client
        self.key = key
        self.step_key = step_key
        self.steps = steps

    def current(self) -> ActivePause | None:
        """The pause in force, or None."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key)
        pipe.pttl(self.key)
        raw, ttl_ms = pipe.execute()
        if raw is None or ttl_ms is None or int(ttl_ms) <= 0:
            return None
        try:
            data = json.loads(raw)
            return ActivePause(str(data["error"]), str(data["reason"]), int(ttl_ms) / 1000.0)
        except (ValueError, KeyError, TypeError):
            # Unreadable (written by something else): still a pause, with a generic reason.
            return ActivePause("unknown", "CXone token requests are paused", int(ttl_ms) / 1000.0)

    def start(self, error: str, reason: str) -> float:
        """Start the next, longer pause for this rejection; return its length in seconds."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(self.step_key)
        pipe.expire(self.step_key, STEP_MEMORY_SECONDS)
        step = int(pipe.execute()[0])
        seconds = self.steps[min(step, len(self.steps)) - 1]
        self.redis.set(self.key, json.dumps({"error": error, "reason": reason}), px=int(seconds * 1000))
        return seconds

    def clear(self) -> None:
        """A token was obtained: no pause, and the next rejection starts from the shortest one."""
        self.redis.delete(self.key, self.step_key)
