"""CallLimiter on fakeredis. The same contract runs on a real Redis in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest

from tests.support.limiter_contract import CallLimiterContract, ClientFactory


class TestCallLimiterOnFakeRedis(CallLimiterContract):
    @pytest.fixture
    def connect(self) -> Iterator[ClientFactory]:
        server = fakeredis.FakeServer()
        yield lambda: fakeredis.FakeRedis(server=server)
