"""Fixtures every test folder uses. Folder conftests add only what is particular to their side."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import fakeredis
import pytest
import responses

# Shared test code (contracts, fakes) asserts too: give its failures pytest's detailed messages.
# This must run before anything imports tests.support.
pytest.register_assert_rewrite("tests.support")

from tests.support.clock import FakeClock  # noqa: E402
from tests.support.send_recorder import SendRecorder  # noqa: E402

#: Where a Redis server listens by default (and REDIS_URL's default): only integration tests, which
#: run their own server, may need one; `make test-unit` must pass on a machine without Redis.
DEFAULT_REDIS_PORT = 6379


@pytest.fixture(autouse=True)
def no_redis_server_outside_integration(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Outside tests/integration, a connection to a local Redis server is refused, as on a machine
    that has none, and fails the test: a unit test that passes only with Redis running is a bug."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: tuple[object, ...] | str | bytes) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and address[1] == DEFAULT_REDIS_PORT:
            attempts.append(address)
            raise ConnectionRefusedError(f"unit tests must not use a Redis server ({address})")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    if attempts:
        pytest.fail(f"connected to a Redis server outside the integration tests: {attempts}")


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


@pytest.fixture
def redis_server() -> fakeredis.FakeServer:
    """One fake Redis server; each FakeRedis on it is like one more process connected to it."""
    return fakeredis.FakeServer()


@pytest.fixture
def fake_redis(redis_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """A connection to the test's own fake Redis server."""
    return fakeredis.FakeRedis(server=redis_server)


@pytest.fixture
def sent() -> SendRecorder:
    """What the ingress enqueued, recorded instead of sent to a broker."""
    return SendRecorder()


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request of the test goes to this mock; an unregistered URL raises ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
