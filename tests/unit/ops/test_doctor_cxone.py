"""The doctor shows what the tenant answers about credentials and hosts: each URL trusted or not,
the grant type, CXone's OAuth error when it rejects the credentials, and the workers' pauses.
CXone is faked with ``responses`` and Redis with fakeredis (the real thing: test_doctor.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import responses

from ops.doctor import FAIL, OK, SKIP, WARN, Report, render, run_checks
from shared import redis_keys
from shared.cxone.rate_limiter import CallLimiter
from shared.cxone.token_pause import TokenPause
from tests.support.cxone import make_jwt

AUTH = "https://cxone.niceincontact.com"
TOKEN_URL = AUTH + "/auth/token"
API = "https://api-na1.niceincontact.com"
TENANT = "11eb5a3e-tenant-0001"


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  vip: {skill_id: 1200042}\n")  # pinned: no skill search needed
    return {
        "WEBHOOK_API_KEYS": "a-webhook-key-long-enough",
        "ROUTES_FILE": str(routes),
        "CXONE_CLIENT_ID": "client-id",
        "CXONE_CLIENT_SECRET": "client-secret",
        "CXONE_ACCESS_KEY_ID": "key-id",
        "CXONE_ACCESS_KEY_SECRET": "key/secret=",
    }


def nice_tenant(
    http: responses.RequestsMock, token_endpoint: str = TOKEN_URL, api_endpoint: str = API
) -> None:
    """CXone's discovery, token endpoint and tenant configuration, answering as NICE documents."""
    http.add(
        responses.GET, AUTH + "/.well-known/openid-configuration", json={"token_endpoint": token_endpoint}
    )
    token = make_jwt({"tenantId": TENANT})
    http.add(
        responses.POST, TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600}
    )
    http.add(
        responses.GET,
        AUTH + "/.well-known/cxone-configuration",
        json={"api_endpoint": api_endpoint, "tenantId": TENANT},
    )


def run(environ: dict[str, str], redis_client: fakeredis.FakeRedis) -> dict[str, tuple[str, str]]:
    report = run_checks(environ, redis_factory=lambda _settings: redis_client)
    print(render(report))
    return checks(report)


def checks(report: Report) -> dict[str, tuple[str, str]]:
    return {check.name: (check.status, check.detail) for check in report.checks}


def test_a_nice_tenant_shows_every_host_it_trusts_and_the_grant(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    nice_tenant(http)

    found = run(environ, redis_client)

    assert found["cxone credentials"] == (
        OK,
        "password grant: client id and secret, access key id and secret set",
    )
    assert found["cxone hosts"] == (
        OK,
        f"CXONE_AUTH_URL {AUTH}: ok\nCXONE_API_URL: not set (api_endpoint is discovered)\n"
        f"token_endpoint {TOKEN_URL}: ok (discovered)\napi_endpoint {API}: ok (discovered)",
    )
    assert found["cxone pauses"][0] == OK
    assert found["cxone token"][0] == OK and "password grant" in found["cxone token"][1]


def test_an_untrusted_configured_url_fails_and_no_credential_is_sent(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    environ |= {
        "CXONE_AUTH_URL": "http://cxone.niceincontact.com",
        "CXONE_API_URL": "https://api.evil.example",
    }

    found = run(environ, redis_client)

    status, detail = found["cxone hosts"]
    assert status == FAIL
    assert "CXONE_AUTH_URL http://cxone.niceincontact.com: FAIL: plain http" in detail
    assert (
        "CXONE_API_URL https://api.evil.example: FAIL: host api.evil.example is not in CXONE_TRUSTED_HOSTS"
        in detail
    )
    assert found["cxone token"] == (SKIP, "untrusted CXone URL: no credential sent")
    assert len(http.calls) == 0


def test_an_untrusted_discovered_endpoint_fails_both_checks(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    nice_tenant(http, api_endpoint="https://api-na1.niceincontact.com.evil.io")

    found = run(environ, redis_client)

    assert found["cxone hosts"][0] == FAIL
    assert (
        "discovered https://api-na1.niceincontact.com.evil.io: FAIL: not trusted" in found["cxone hosts"][1]
    )
    assert found["cxone token"][0] == FAIL
    assert "CXone discovery returned an untrusted api_endpoint" in found["cxone token"][1]


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (
            400,
            "invalid_grant",
            "CXone rejected the credentials (invalid_grant): check CXONE_ACCESS_KEY_ID/SECRET",
        ),
        (
            401,
            "invalid_client",
            "CXone rejected the credentials (invalid_client): check CXONE_CLIENT_ID/SECRET",
        ),
    ],
)
def test_rejected_credentials_show_cxones_oauth_error_and_pause_no_worker(
    http: responses.RequestsMock,
    environ: dict[str, str],
    redis_client: fakeredis.FakeRedis,
    status: int,
    error: str,
    expected: str,
) -> None:
    http.add(responses.GET, AUTH + "/.well-known/openid-configuration", json={"token_endpoint": TOKEN_URL})
    http.add(responses.POST, TOKEN_URL, status=status, json={"error": error, "error_description": "nope"})

    found = run(environ, redis_client)

    token_status, detail = found["cxone token"]
    assert token_status == FAIL
    assert expected in detail
    assert detail.endswith(f"(CXone's OAuth error: {error}, HTTP {status})")
    # The doctor's own request: the workers' pause is theirs to start (and it leaves none behind).
    assert not redis_client.exists(redis_keys.CXONE_TOKEN_PAUSE, redis_keys.CXONE_TOKEN_PAUSE_STEP)


def test_the_workers_pauses_are_shown(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    nice_tenant(http)
    reason = "CXone rejected the credentials (invalid_grant): check CXONE_ACCESS_KEY_ID/SECRET"
    TokenPause(redis_client).start("invalid_grant", reason)
    CallLimiter(redis_client, redis_keys.CXONE_RATE_LIMIT, 1, pause_key=redis_keys.CXONE_PAUSE_UNTIL).pause(
        90
    )

    status, detail = run(environ, redis_client)["cxone pauses"]

    assert status == WARN
    assert f"token requests paused 15s more: {reason}" in detail
    assert "API calls paused 90s more (CXone answered 429 with Retry-After)" in detail


def test_client_credentials_with_an_unused_access_key_warns(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    nice_tenant(http)
    environ["CXONE_GRANT_TYPE"] = "client_credentials"

    status, detail = run(environ, redis_client)["cxone credentials"]

    assert status == WARN
    assert "the access key that is also set is not used" in detail


def test_the_password_grant_without_an_access_key_fails_naming_it(
    http: responses.RequestsMock, environ: dict[str, str], redis_client: fakeredis.FakeRedis
) -> None:
    del environ["CXONE_ACCESS_KEY_ID"], environ["CXONE_ACCESS_KEY_SECRET"]

    found = run(environ, redis_client)

    assert found["cxone credentials"][0] == FAIL
    assert "CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET" in found["cxone credentials"][1]
    assert found["cxone token"] == (SKIP, "CXone credentials are incomplete")


def test_the_doctors_calls_do_not_queue_behind_the_backlog() -> None:
    # During an overload routings wait in the backlog; the doctor's few calls take the next free
    # slots like them instead of waiting for the whole backlog to drain (the gate lets them pass).
    from ops.doctor import _in_turn
    from shared.routing.backlog import current_pass

    ticket = _in_turn(current_pass)

    assert ticket is not None and not ticket.reserved  # no slot of a dispatcher's to spend
    assert current_pass() is None
