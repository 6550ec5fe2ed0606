"""Fixtures for the shared modules: fakeredis servers, a mocked CXone, a real Redis, a fake clock.

CXone is faked with ``responses`` (the client's own ``requests`` session still runs; only the
transport is replaced), and any request that no test registered fails, so no test reaches a real
network.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis
import responses

from shared.settings import Settings

AUTH_URL = "https://cxone.example.test"
DISCOVERY_URL = AUTH_URL + "/.well-known/openid-configuration"
CONFIGURATION_URL = AUTH_URL + "/.well-known/cxone-configuration"
TOKEN_URL = AUTH_URL + "/auth/token"
API_URL = "https://api-na1.example.test"
TENANT_ID = "11eb5a3e-tenant-0001"
REAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` as payload (base64url without padding, as CXone sends)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def make_settings(**overrides: Any) -> Settings:
    """Settings for a password-grant tenant on the fake CXone, with short HTTP timeouts."""
    values: dict[str, Any] = {
        "cxone_auth_url": AUTH_URL,
        "cxone_client_id": "client-id",
        "cxone_client_secret": "client-secret",
        "cxone_access_key_id": "key-id",
        "cxone_access_key_secret": "sandbox/key+secret=",
        # The fake CXone lives under example.test: trusted here as NICE's domains are by default.
        "cxone_trusted_hosts": ("example.test",),
        "cxone_connect_timeout_seconds": 0.5,
        "cxone_read_timeout_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


class FakeCXoneAuth:
    """CXone's discovery, token and configuration endpoints on a ``RequestsMock``.

    Each token request issues a new JWT (``issued`` keeps them in order) carrying ``tenant_id``.
    """

    def __init__(
        self,
        mock: responses.RequestsMock,
        *,
        expires_in: float = 3600,
        tenant_id: str = TENANT_ID,
        api_url: str = API_URL,
        delay: float = 0.0,
    ):
        self.expires_in = expires_in
        self.tenant_id = tenant_id
        self.delay = delay
        self.token_status = 200
        #: The OAuth error code answered with a ``token_status`` other than 200.
        self.token_error = "invalid_client"
        #: Called with no arguments while a token request is being answered (to look at Redis).
        self.on_request: Callable[[], None] | None = None
        self.issued: list[str] = []
        self.token_bodies: list[str] = []
        self._lock = threading.Lock()
        mock.add(responses.GET, DISCOVERY_URL, json={"issuer": AUTH_URL, "token_endpoint": TOKEN_URL})
        mock.add_callback(responses.POST, TOKEN_URL, callback=self._token, content_type="application/json")
        # A trailing slash, as some tenants answer: the client must not produce "//inContactAPI".
        mock.add(
            responses.GET,
            CONFIGURATION_URL,
            json={
                "area": "na1",
                "cluster": "B32",
                "domain": "example.test",
                "api_endpoint": api_url + "/",
                "tenantId": tenant_id,
            },
        )

    @property
    def token_requests(self) -> int:
        return len(self.token_bodies)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.on_request is not None:
            self.on_request()
        if self.delay:
            time.sleep(self.delay)  # widens the race between workers missing the cache together
        with self._lock:
            self.token_bodies.append(request.body)
            if self.token_status != 200:
                return (
                    self.token_status,
                    {},
                    json.dumps({"error": self.token_error, "error_description": "Bad client credentials"}),
                )
            token = make_jwt({"tenantId": self.tenant_id, "icBUId": 4600001, "n": len(self.issued) + 1})
            self.issued.append(token)
        return (
            200,
            {},
            json.dumps(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "refresh_token": "refresh",
                    "id_token": token,
                    "issued_token_type": "access_token",
                }
            ),
        )


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request in the test goes to this mock; unregistered URLs raise ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def cxone_auth(http: responses.RequestsMock) -> FakeCXoneAuth:
    """The fake CXone auth endpoints (token lifetime 3600 s)."""
    return FakeCXoneAuth(http)


@pytest.fixture
def redis_server() -> fakeredis.FakeServer:
    """One fake Redis server; each FakeRedis on it is like one more worker process."""
    return fakeredis.FakeServer()


@pytest.fixture
def fake_redis(redis_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=redis_server)


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    """The real Redis at 127.0.0.1:6379. Unreachable is a failure, not a skip: the Lua must run there."""
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(
            f"the real Redis at {REAL_REDIS_URL} is unreachable ({exc!r}); "
            "these tests check the Lua scripts against a real server: start one"
        )
    yield client
    client.close()


@pytest.fixture
def unique_key(request: pytest.FixtureRequest) -> str:
    """A key no other test (or concurrent run) uses."""
    return f"test:{request.node.name}:{uuid.uuid4().hex}"


class FakeClock:
    """Shifts ``time.time`` for everything in the process (client, fakeredis TTLs, Lua TIME)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + fake.offset)
    return fake
