"""Compute a value once for all processes, under a Redis lock, and share it through Redis.

Used for the CXone token and for skill lookups: when N workers miss the cache together, exactly one
of them does the expensive call while the others wait (bounded) and then read its result.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from redis.exceptions import LockError


class SingleFlightTimeout(RuntimeError):
    """Another process held the lock for longer than we are willing to wait; try again later."""


def get_or_compute(
    client: redis.Redis,
    key: str,
    compute: Callable[[], tuple[str, float]],
    *,
    lock_timeout: float,
    wait_timeout: float,
    is_fresh: Callable[[str], bool] = lambda _value: True,
) -> str:
    """Return the cached string at ``key``, computing and storing it once if it is absent or stale.

    ``compute`` returns ``(value, ttl_seconds)``. ``lock_timeout`` must exceed the slowest
    ``compute`` (a crashed holder then frees the lock by itself); ``wait_timeout`` bounds how long a
    waiter blocks before :class:`SingleFlightTimeout`.
    """
    cached = _read(client, key)
    if cached is not None and is_fresh(cached):
        return cached
    lock = client.lock(key + ":lock", timeout=lock_timeout, blocking_timeout=wait_timeout, sleep=0.05)
    if not lock.acquire():
        raise SingleFlightTimeout(f"waited {wait_timeout:g}s for another process to refresh {key}")
    try:
        # Read again: the process that held the lock before us has probably just refreshed it.
        cached = _read(client, key)
        if cached is not None and is_fresh(cached):
            return cached
        value, ttl = compute()
        if ttl > 0:
            client.set(key, value, px=max(1, int(ttl * 1000)))
        return value
    finally:
        try:
            lock.release()
        except LockError:
            pass  # expired while computing: someone else may hold it now, nothing to release


def delete_if_equal(client: redis.Redis, key: str, expected: str) -> bool:
    """Delete ``key`` only if it still holds ``expected`` (compare-and-delete, atomic)."""
    return bool(_COMPARE_AND_DELETE(keys=[key], args=[expected], client=client))


def _read(client: redis.Redis, key: str) -> str | None:
    value = client.get(key)
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _Script:
    """A Lua script registered lazily per client (fakeredis and real Redis alike)."""

    def __init__(self, source: str):
        self.source = source

    def __call__(self, keys: list[str], args: list, client: redis.Redis):
        return client.register_script(self.source)(keys=keys, args=args)


_COMPARE_AND_DELETE = _Script(
    """
    if redis.call('get', KEYS[1]) == ARGV[1] then
        return redis.call('del', KEYS[1])
    end
    return 0
    """
)
