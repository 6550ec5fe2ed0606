"""Credentials go only where they belong: rejected credentials pause every worker's token requests,
no redirect is followed, and a discovered endpoint on an untrusted host gets nothing."""

from __future__ import annotations

import json

import fakeredis
import pytest
import requests
import responses

from shared import redis_keys
from shared.cxone import metrics
from shared.cxone.client import ROUTING_QUEUE_PATH, SKILLS_PATH, CXoneClient
from shared.cxone.errors import CredentialsRejected, Permanent, Transient, UntrustedEndpoint
from shared.cxone.token_pause import TokenPause
from tests.support.clock import FakeClock
from tests.support.cxone import (
    API_URL,
    CONFIGURATION_URL,
    DISCOVERY_URL,
    TOKEN_URL,
    FakeCXoneAuth,
    make_settings,
)

SKILLS_URL = API_URL + SKILLS_PATH
ROUTING_URL = API_URL + ROUTING_QUEUE_PATH.format(contact_id="7000001")
ELSEWHERE = "https://collector.attacker.example"


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


@pytest.fixture
def elsewhere(http: responses.RequestsMock) -> list[requests.PreparedRequest]:
    """Everything that reaches the attacker's host (nothing must)."""
    received: list[requests.PreparedRequest] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        received.append(request)
        return 200, {}, "{}"

    for method in (responses.GET, responses.POST, responses.PUT):
        http.add_callback(method, ELSEWHERE + "/auth/token", callback=record)
        http.add_callback(
            method, ELSEWHERE + ROUTING_QUEUE_PATH.format(contact_id="7000001"), callback=record
        )
    return received


def rejected_count(error: str) -> float:
    return metrics.CREDENTIALS_REJECTED.labels(error=error)._value.get()  # noqa: SLF001


# ---------------------------------------------------------------- credentials rejected


@pytest.mark.parametrize(
    ("status", "error", "grant", "reason"),
    [
        (
            400,
            "invalid_grant",
            "password",
            "CXone rejected the credentials (invalid_grant): check CXONE_ACCESS_KEY_ID/SECRET "
            "(an access key of an active CXone API user)",
        ),
        (
            401,
            "invalid_client",
            "password",
            "CXone rejected the credentials (invalid_client): check CXONE_CLIENT_ID/SECRET",
        ),
        (
            400,
            "unauthorized_client",
            "client_credentials",
            "CXone rejected the credentials (unauthorized_client): the application may not use the "
            "client_credentials grant: check CXONE_GRANT_TYPE",
        ),
        (
            400,
            "unsupported_grant_type",
            "password",
            "CXone rejected the credentials (unsupported_grant_type): CXone does not offer the password "
            "grant: check CXONE_GRANT_TYPE",
        ),
        (
            400,
            "invalid_grant",
            "client_credentials",
            "CXone rejected the credentials (invalid_grant): "
            "check CXONE_CLIENT_ID/SECRET and CXONE_GRANT_TYPE",
        ),
    ],
)
def test_rejected_credentials_say_what_to_check_and_pause_token_requests_for_every_worker(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    redis_server: fakeredis.FakeServer,
    status: int,
    error: str,
    grant: str,
    reason: str,
) -> None:
    cxone_auth.token_status, cxone_auth.token_error = status, error
    workers = [
        CXoneClient(make_settings(cxone_grant_type=grant), fakeredis.FakeRedis(server=redis_server))
        for _ in range(3)
    ]
    counted_before = rejected_count(error)

    with pytest.raises(CredentialsRejected) as first:
        workers[0].token()

    assert first.value.reason == reason
    assert first.value.error == error and first.value.status == status
    assert first.value.not_delivered is True and first.value.endpoint == "token"
    assert first.value.retry_after == 15.0
    assert rejected_count(error) == counted_before + 1
    # Every other worker (and the same one again) fails at once with the same reason: no request.
    for worker in workers:
        with pytest.raises(CredentialsRejected) as again:
            worker.search_skills("Claims")
        assert again.value.reason == reason
        assert 14.0 < (again.value.retry_after or 0) <= 15.0
    assert cxone_auth.token_requests == 1
    assert not workers[0].redis.exists(redis_keys.CXONE_TOKEN)


def test_the_pause_grows_to_at_most_one_token_request_a_minute(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient, clock: FakeClock
) -> None:
    cxone_auth.token_status, cxone_auth.token_error = 400, "invalid_grant"
    pauses = []
    for _ in range(5):
        with pytest.raises(CredentialsRejected) as caught:
            client.token()
        pause = caught.value.retry_after or 0.0
        pauses.append(pause)
        # Just before the pause ends nothing is asked; just after it, one request.
        clock.advance(pause - 0.5)
        with pytest.raises(CredentialsRejected):
            client.token()
        clock.advance(0.6)

    assert pauses == [15.0, 30.0, 60.0, 60.0, 60.0]
    assert cxone_auth.token_requests == 5


def test_fixed_credentials_resume_routing_with_nothing_restarted(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    fake_redis: fakeredis.FakeRedis,
    clock: FakeClock,
) -> None:
    http.add(responses.GET, SKILLS_URL, json={"skills": [], "totalRecords": 0})
    cxone_auth.token_status, cxone_auth.token_error = 400, "invalid_grant"
    for step in (15, 30):
        with pytest.raises(CredentialsRejected):
            client.search_skills("Claims")
        clock.advance(step + 0.1)

    cxone_auth.token_status = 200  # the operator fixed the API user in CXone
    assert client.search_skills("Claims") == {"skills": [], "totalRecords": 0}

    # A token ends the pause and forgets the steps: a later rejection starts small again.
    assert not fake_redis.exists(redis_keys.CXONE_TOKEN_PAUSE, redis_keys.CXONE_TOKEN_PAUSE_STEP)
    client.drop_token(client.token())  # a revoked token: the next call asks for a new one
    cxone_auth.token_status = 401
    with pytest.raises(CredentialsRejected) as caught:
        client.token()
    assert caught.value.retry_after == 15.0


def test_a_401_without_an_oauth_body_is_invalid_client(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, DISCOVERY_URL, json={"token_endpoint": TOKEN_URL})
    http.add(responses.POST, TOKEN_URL, status=401, body="Unauthorized")

    with pytest.raises(CredentialsRejected) as caught:
        CXoneClient(make_settings(), fake_redis).token()

    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize(("status", "error"), [(400, "invalid_request"), (400, "invalid_scope"), (503, "x")])
def test_other_token_errors_stay_transient_with_the_short_shared_cooldown(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient, status: int, error: str
) -> None:
    cxone_auth.token_status, cxone_auth.token_error = status, error

    with pytest.raises(Transient) as caught:
        client.token()

    assert type(caught.value) is Transient
    assert not client.redis.exists(redis_keys.CXONE_TOKEN_PAUSE)
    assert 0 < client.redis.pttl(redis_keys.CXONE_TOKEN_FAILURE) <= 5000


def test_an_unreadable_pause_is_still_a_pause(fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.set(redis_keys.CXONE_TOKEN_PAUSE, "not json", px=5000)

    paused = TokenPause(fake_redis).current()

    assert paused is not None and paused.reason == "CXone token requests are paused"
    assert 4.0 < paused.seconds_left <= 5.0


# ---------------------------------------------------------------- redirects are never followed


def test_a_redirected_token_request_is_not_followed_and_pauses_token_requests(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis, elsewhere: list
) -> None:
    http.add(responses.GET, DISCOVERY_URL, json={"token_endpoint": TOKEN_URL})
    http.add(responses.POST, TOKEN_URL, status=307, headers={"Location": ELSEWHERE + "/auth/token"})

    with pytest.raises(CredentialsRejected) as caught:
        CXoneClient(make_settings(), fake_redis).token()

    assert elsewhere == []  # the access key secret went nowhere else
    assert caught.value.error == "redirect" and caught.value.status == 307
    assert caught.value.reason == (
        f"the CXone token endpoint {TOKEN_URL} answered HTTP 307, a redirect to "
        "collector.attacker.example: not followed, the credentials are never sent elsewhere; "
        "check CXONE_AUTH_URL"
    )
    assert fake_redis.exists(redis_keys.CXONE_TOKEN_PAUSE)
    # What Flower shows never names where the redirect pointed.
    assert (
        caught.value.summary == "CXone answered 307 (redirect, not followed) on token: check CXONE_AUTH_URL"
    )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_api_call_is_not_followed_and_fails_naming_the_host(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient, elsewhere: list, status: int
) -> None:
    http.add(
        responses.PUT,
        ROUTING_URL,
        status=status,
        headers={"Location": ELSEWHERE + ROUTING_QUEUE_PATH.format(contact_id="7000001")},
    )

    with pytest.raises(Permanent) as caught:
        client.route_digital("7000001", 1200001)

    assert elsewhere == []  # the bearer token went nowhere else
    assert caught.value.status == status
    assert caught.value.reason == (
        f"routing_queue: HTTP {status}, a redirect to collector.attacker.example: not followed "
        "(the CXone token is only sent to the configured API host)"
    )


def test_a_redirect_without_location_still_fails_clearly(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=302)

    with pytest.raises(Permanent, match="a redirect to nowhere \\(no Location header\\)"):
        client.route_digital("7000001", 1200001)


def test_redirected_discovery_is_not_followed(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, DISCOVERY_URL, status=302, headers={"Location": "/moved"})

    with pytest.raises(Transient) as caught:
        CXoneClient(make_settings(), fake_redis).token()

    assert (
        caught.value.reason
        == "OIDC discovery failed: HTTP 302 (redirect to cxone.example.test, not followed)"
    )
    assert len(http.calls) == 1


# ---------------------------------------------------------------- untrusted endpoints


@pytest.mark.parametrize(
    "token_endpoint",
    [
        "https://auth.evil.example/auth/token",
        "http://cxone.example.test/auth/token",  # a trusted host, but plain http
        "https://example.test.evil.io/auth/token",
    ],
)
def test_an_untrusted_discovered_token_endpoint_gets_no_credentials(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis, token_endpoint: str
) -> None:
    http.add(responses.GET, DISCOVERY_URL, json={"token_endpoint": token_endpoint})

    with pytest.raises(UntrustedEndpoint) as caught:
        CXoneClient(make_settings(), fake_redis).token()

    assert caught.value.reason.startswith(
        f"CXone discovery returned an untrusted token_endpoint {token_endpoint} ("
    )
    assert caught.value.reason.endswith("): not sent any credentials")
    assert caught.value.url == token_endpoint
    assert token_endpoint not in caught.value.summary
    assert [call.request.url for call in http.calls] == [DISCOVERY_URL]  # no POST anywhere


def test_an_untrusted_discovered_api_endpoint_gets_no_token_and_no_flood_of_token_requests(
    http: responses.RequestsMock, redis_server: fakeredis.FakeServer
) -> None:
    auth = FakeCXoneAuth(http, api_url="http://api-na1.example.test")  # plain http
    first, other = (CXoneClient(make_settings(), fakeredis.FakeRedis(server=redis_server)) for _ in range(2))

    with pytest.raises(UntrustedEndpoint) as caught:
        first.route_digital("7000001", 1200001)

    assert caught.value.reason == (
        "CXone discovery returned an untrusted api_endpoint http://api-na1.example.test (plain http: "
        "CXone credentials only travel over https (loopback excepted)): no token sent there"
    )
    # Every routing fails with the same reason; for a few seconds without asking for tokens again.
    with pytest.raises(Permanent, match="untrusted api_endpoint"):
        other.route_digital("7000002", 1200001)
    assert auth.token_requests == 1
    urls = [str(call.request.url) for call in http.calls]
    assert len([url for url in urls if url.split("?")[0] == CONFIGURATION_URL]) == 1
    assert not [url for url in urls if "api-na1" in url]


def test_an_untrusted_pinned_api_url_gets_no_token(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    client = CXoneClient(make_settings(cxone_api_url="https://api.evil.example"), fake_redis)

    with pytest.raises(UntrustedEndpoint, match="CXONE_API_URL is untrusted: https://api.evil.example"):
        client.search_skills("Claims")


def test_an_untrusted_auth_url_is_not_even_asked_for_discovery(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis
) -> None:
    client = CXoneClient(make_settings(cxone_auth_url="https://cxone.evil.example"), fake_redis)

    with pytest.raises(UntrustedEndpoint, match="CXONE_AUTH_URL is untrusted"):
        client.token()
    assert len(http.calls) == 0


def test_the_shared_failure_keeps_its_kind() -> None:
    from shared.cxone.client import _shared_failure

    assert type(_shared_failure(json.dumps({"reason": "r", "permanent": True}))) is Permanent
    assert type(_shared_failure(json.dumps({"reason": "r", "permanent": False}))) is Transient
    assert _shared_failure("plain text from an older worker").reason == "plain text from an older worker"
