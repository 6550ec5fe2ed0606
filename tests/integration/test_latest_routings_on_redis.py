"""LatestRoutings on a real Redis: the unit tests' cases (tests/unit/shared/test_latest_routings.py),
run against the integration tests' Redis server, because its Lua must behave there exactly as on
fakeredis. ``make test-unit`` never needs this server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.unit.shared.test_latest_routings import *  # noqa: F403 - the same cases, on this client


@pytest.fixture  # type: ignore[no-redef]  # replaces the star-imported fixture, on purpose
def client(redis_url: str) -> Iterator[redis.Redis]:  # noqa: F811 - the real Redis instead of fakeredis
    real = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
    yield real
    real.close()
