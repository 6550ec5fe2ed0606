"""Fixtures every test folder uses. Folder conftests add only what is particular to their side."""

from __future__ import annotations

import time
import uuid

import pytest

# Shared test code (contracts, fakes) asserts too: give its failures pytest's detailed messages.
# This must run before anything imports tests.support.
pytest.register_assert_rewrite("tests.support")

from tests.support.clock import FakeClock  # noqa: E402


@pytest.fixture
def unique_key(request: pytest.FixtureRequest) -> str:
    """A Redis key no other test (or concurrent run on the same server) uses."""
    return f"test:{request.node.name}:{uuid.uuid4().hex}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """``time.time`` stopped at the real time, moved on only by ``clock.advance(seconds)``."""
    fake = FakeClock()
    monkeypatch.setattr(time, "time", fake.time)
    return fake
