"""CallLimiter on a real Redis: its Lua script must behave there exactly as on fakeredis.

The unit tests run the same contract on fakeredis (tests/unit/shared/test_rate_limiter.py); this
module runs it against the integration tests' Redis server, which ``make test-unit`` never needs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.limiter_contract import CallLimiterContract, ClientFactory


class TestCallLimiterOnRealRedis(CallLimiterContract):
    @pytest.fixture
    def connect(self, redis_url: str, unique_key: str) -> Iterator[ClientFactory]:
        opened: list[redis.Redis] = []

        def factory() -> redis.Redis:
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
            opened.append(client)
            return client

        yield factory
        factory().delete(unique_key)
        for client in opened:
            client.close()
