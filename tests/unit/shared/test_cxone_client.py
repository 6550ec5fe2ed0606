"""The CXone HTTP client against a ``responses`` fake of CXone, with fakeredis for the shared state.

The client keeps its own ``requests`` session (headers, auth, encoding all run for real); only the
transport is faked.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, parse_qsl, urlsplit

import fakeredis
import pytest
import requests
import responses
from urllib3.exceptions import ProtocolError

from shared import redis_keys
from shared.cxone.client import ROUTING_QUEUE_PATH, SIGNAL_PATH, SKILLS_PATH, CXoneClient, Token
from shared.cxone.errors import PausedByCXone, Permanent, RateLimited, Throttled, Transient
from shared.routing.backlog import BacklogPass, carrying
from tests.support.clock import FakeClock
from tests.support.cxone import (
    API_URL,
    CONFIGURATION_URL,
    DISCOVERY_URL,
    TENANT_ID,
    TOKEN_URL,
    FakeCXoneAuth,
    make_settings,
)

SKILLS_URL = API_URL + SKILLS_PATH
ROUTING_URL = API_URL + ROUTING_QUEUE_PATH.format(contact_id="1234567")
SIGNAL_URL = API_URL + SIGNAL_PATH.format(contact_id="7654321")
EMPTY_SKILLS = {"skills": [], "totalRecords": 0}


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


def url_of(request: requests.PreparedRequest) -> str:
    """The URL of a request that was sent (``PreparedRequest.url`` is None only before it is prepared)."""
    assert request.url is not None
    return request.url


def body_text(request: requests.PreparedRequest) -> str:
    """The body of a request that has one, as text (``requests`` keeps form bodies as str, JSON as bytes)."""
    assert request.body is not None, "the request has no body"
    return request.body if isinstance(request.body, str) else request.body.decode()


def calls_to(http: responses.RequestsMock, url: str) -> list[requests.PreparedRequest]:
    """Requests sent to ``url`` (query string ignored), in order."""
    return [call.request for call in http.calls if url_of(call.request).split("?")[0] == url]


def query(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url_of(request)).query)


# ---------------------------------------------------------------- token and discovery


def test_token_comes_from_discovery_then_the_token_endpoint_then_the_tenant_configuration(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    before = time.time()
    token = client.token()

    assert [url_of(call.request).split("?")[0] for call in http.calls] == [
        DISCOVERY_URL,
        TOKEN_URL,
        CONFIGURATION_URL,
    ]
    assert token.access_token == cxone_auth.issued[0]
    assert token.tenant_id == TENANT_ID  # decoded from the JWT payload
    configuration = calls_to(http, CONFIGURATION_URL)[0]
    assert query(configuration) == {"tenantId": [TENANT_ID]}
    assert "Authorization" not in configuration.headers
    assert token.api_base == API_URL  # trailing slash of api_endpoint removed
    assert before + 3600 <= token.expires_at <= time.time() + 3600
    assert client.api_base() == API_URL
    assert client.token_requests == 1


def test_password_grant_sends_basic_auth_and_url_encodes_the_access_key(
    http: responses.RequestsMock, client: CXoneClient
) -> None:
    client.token()

    request = calls_to(http, TOKEN_URL)[0]
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(b"client-id:client-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    body = body_text(request)
    assert "password=sandbox%2Fkey%2Bsecret%3D" in body
    assert parse_qs(body) == {
        "grant_type": ["password"],
        "username": ["key-id"],
        "password": ["sandbox/key+secret="],
    }
    assert "client-secret" not in body  # client credentials travel in Basic only


def test_client_credentials_grant_when_chosen(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    settings = make_settings(cxone_grant_type="client_credentials")
    CXoneClient(settings, fake_redis).token()

    request = calls_to(http, TOKEN_URL)[0]
    assert parse_qs(body_text(request)) == {"grant_type": ["client_credentials"]}
    assert request.headers["Authorization"].startswith("Basic ")


def test_a_pinned_api_url_skips_the_configuration_call(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    pinned = "https://api-eu1.example.test"
    http.add(responses.GET, pinned + SKILLS_PATH, json=EMPTY_SKILLS)
    client = CXoneClient(make_settings(cxone_api_url=pinned), fake_redis)

    assert client.api_base() == pinned
    client.search_skills("Claims")

    assert calls_to(http, CONFIGURATION_URL) == []
    assert client.token().api_base == pinned
    assert len(calls_to(http, pinned + SKILLS_PATH)) == 1


def test_every_call_accepts_json_and_only_api_calls_carry_the_bearer(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    http.add(responses.PUT, ROUTING_URL, status=204)
    http.add(responses.POST, SIGNAL_URL, status=202)

    client.search_skills("Claims")
    client.route_digital("1234567", 42)
    client.signal("7654321", ["42"])

    assert len(http.calls) == 6
    for call in http.calls:
        assert call.request.headers["Accept"] == "application/json", call.request.url
    api_calls = [c.request for c in http.calls if url_of(c.request).startswith(API_URL)]
    assert len(api_calls) == 3
    for request in api_calls:
        assert request.headers["Authorization"] == f"Bearer {cxone_auth.issued[0]}"
    assert "Authorization" not in calls_to(http, DISCOVERY_URL)[0].headers


def test_a_token_without_tenant_and_no_pinned_api_url_is_a_configuration_error(
    http: responses.RequestsMock, fake_redis: fakeredis.FakeRedis
) -> None:
    FakeCXoneAuth(http, tenant_id="")

    with pytest.raises(Permanent, match="CXONE_API_URL"):
        CXoneClient(make_settings(), fake_redis).token()


def test_a_failed_token_request_is_transient_and_nothing_is_cached(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    fake_redis: fakeredis.FakeRedis,
    clock: FakeClock,
) -> None:
    # An outage, not a verdict on the credentials (those: tests/unit/shared/test_cxone_credentials.py).
    cxone_auth.token_status = 503
    cxone_auth.token_error = "temporarily_unavailable"

    with pytest.raises(Transient) as caught:
        client.token()

    assert type(caught.value) is Transient
    assert caught.value.status == 503
    assert caught.value.endpoint == "token"
    assert "Bad client credentials" in caught.value.reason
    assert not fake_redis.exists(redis_keys.CXONE_TOKEN)
    assert not fake_redis.exists(redis_keys.CXONE_TOKEN_LOCK)

    # The failure is shared for a few seconds: other tasks fail fast without a request of their own.
    requests_so_far = len(http.calls)
    assert 0 < fake_redis.pttl(redis_keys.CXONE_TOKEN_FAILURE) <= 5000  # the clock stands still
    with pytest.raises(Transient, match="Bad client credentials"):
        client.token()
    assert len(http.calls) == requests_so_far

    # Once the operator fixes the credentials and the cooldown is over, the next attempt succeeds.
    cxone_auth.token_status = 200
    fake_redis.delete(redis_keys.CXONE_TOKEN_FAILURE)  # what the key's expiry does
    assert client.token().access_token == cxone_auth.issued[0]


def test_the_token_is_shared_through_redis(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    redis_server: fakeredis.FakeServer,
    clock: FakeClock,
) -> None:
    first = client.token()
    other_worker = CXoneClient(make_settings(), fakeredis.FakeRedis(server=redis_server))

    assert other_worker.token() == first
    assert cxone_auth.token_requests == 1
    # TTL = expires_in - refresh margin (3600 - 600).
    pttl = other_worker.redis.pttl(redis_keys.CXONE_TOKEN)
    assert 2_990_000 < pttl <= 3_000_000  # the clock stands still: no pause ages it


# ---------------------------------------------------------------- 401 handling


def test_a_401_drops_the_token_gets_one_new_token_and_retries_once(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    fake_redis: fakeredis.FakeRedis,
) -> None:
    http.add(responses.GET, SKILLS_URL, status=401, json={"error": "invalid_token"})
    http.add(responses.GET, SKILLS_URL, json={"skills": [], "totalRecords": 0})

    assert client.search_skills("Claims") == EMPTY_SKILLS

    assert cxone_auth.token_requests == 2
    sent = calls_to(http, SKILLS_URL)
    assert [r.headers["Authorization"] for r in sent] == [
        f"Bearer {cxone_auth.issued[0]}",
        f"Bearer {cxone_auth.issued[1]}",
    ]
    stored = Token.from_json(fake_redis.get(redis_keys.CXONE_TOKEN).decode())
    assert stored.access_token == cxone_auth.issued[1]
    assert len(calls_to(http, DISCOVERY_URL)) == 1  # the token endpoint is remembered


def test_a_401_twice_is_transient_after_a_single_refresh(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.GET, SKILLS_URL, status=401, json={"error": "invalid_token"})

    with pytest.raises(Transient) as caught:
        client.search_skills("Claims")

    assert type(caught.value) is Transient
    assert caught.value.status == 401
    assert "rejected twice" in caught.value.reason
    assert len(calls_to(http, SKILLS_URL)) == 2
    assert cxone_auth.token_requests == 2


def test_drop_token_keeps_a_token_another_worker_already_replaced(
    cxone_auth: FakeCXoneAuth, client: CXoneClient, fake_redis: fakeredis.FakeRedis
) -> None:
    rejected = client.token()
    replacement = Token("newer", time.time() + 3600, TENANT_ID, API_URL)
    fake_redis.set(redis_keys.CXONE_TOKEN, replacement.to_json())

    client.drop_token(rejected)
    assert fake_redis.get(redis_keys.CXONE_TOKEN).decode() == replacement.to_json()

    client.drop_token(replacement)
    assert not fake_redis.exists(redis_keys.CXONE_TOKEN)


# ---------------------------------------------------------------- error classification


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (429, {}, None),
        (429, {"Retry-After": "soon"}, None),
    ],
)
def test_429_is_throttled_with_retry_after_when_sent(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    http.add(
        responses.PUT,
        ROUTING_URL,
        status=status,
        headers=headers,
        json={"errors": [{"message": "Too many requests"}]},
    )

    with pytest.raises(Throttled) as caught:
        client.route_digital("1234567", 42)

    assert caught.value.retry_after == retry_after
    assert caught.value.status == 429
    assert caught.value.not_delivered is True
    assert "Too many requests" in caught.value.reason


def test_retry_after_as_an_http_date(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 30, tz=UTC), usegmt=True)
    http.add(responses.PUT, ROUTING_URL, status=429, headers={"Retry-After": when})

    with pytest.raises(Throttled) as caught:
        client.route_digital("1234567", 42)

    assert caught.value.retry_after is not None
    assert 28 <= caught.value.retry_after <= 31


@pytest.mark.parametrize(("status", "not_delivered"), [(500, False), (502, False), (504, False), (503, True)])
def test_5xx_is_transient_and_only_503_means_not_delivered(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    status: int,
    not_delivered: bool,
) -> None:
    http.add(responses.POST, SIGNAL_URL, status=status, body="upstream trouble")

    with pytest.raises(Transient) as caught:
        client.signal("7654321", ["42"])

    assert type(caught.value) is Transient
    assert caught.value.status == status
    assert caught.value.not_delivered is not_delivered
    assert caught.value.endpoint == "signal"
    assert "upstream trouble" in caught.value.reason


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_is_permanent_with_the_dfo_error_message(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient, status: int
) -> None:
    http.add(
        responses.PUT,
        ROUTING_URL,
        status=status,
        json={
            "errors": [
                {
                    "message": f"Contact 1234567 refused ({status})",
                    "field": None,
                    "errorCode": "ContactRefused",
                    "parameters": {},
                }
            ],
            "uid": "5f1c",
        },
    )

    with pytest.raises(Permanent) as caught:
        client.route_digital("1234567", 42)

    assert caught.value.status == status
    assert f"Contact 1234567 refused ({status})" in caught.value.reason
    assert caught.value.endpoint == "routing_queue"
    assert len(calls_to(http, ROUTING_URL)) == 1  # not retried


def test_connection_refused_is_transient_and_not_delivered(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    # A real refused connection on loopback: a port that was free a moment ago.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    http.add_passthru(closed)
    client = CXoneClient(make_settings(cxone_api_url=closed), fake_redis)

    with pytest.raises(Transient) as caught:
        client.signal("7654321", ["42"])

    assert caught.value.not_delivered is True
    assert "connection failed" in caught.value.reason


def test_a_connection_dropped_mid_request_may_have_been_delivered(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    dropped = requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )
    http.add(responses.POST, SIGNAL_URL, body=dropped)

    with pytest.raises(Transient) as caught:
        client.signal("7654321", ["42"])

    # A voice signal is not idempotent: this must not count as "safe to re-send".
    assert caught.value.not_delivered is False


def test_a_read_timeout_is_transient_and_may_have_been_delivered(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.POST, SIGNAL_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(Transient) as caught:
        client.signal("7654321", ["42"])

    assert type(caught.value) is Transient
    assert caught.value.not_delivered is False
    assert "no answer within 0.5s" in caught.value.reason


def test_a_connect_timeout_is_transient_and_not_delivered(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.POST, SIGNAL_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(Transient) as caught:
        client.signal("7654321", ["42"])

    assert caught.value.not_delivered is True
    assert "connect timeout" in caught.value.reason


def test_the_shared_limiter_refuses_before_anything_is_sent(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    client = CXoneClient(make_settings(cxone_rate_limit_per_minute=1), fake_redis)
    client.search_skills("Claims")

    with pytest.raises(RateLimited) as caught:
        client.search_skills("Claims")

    assert 59 < caught.value.wait <= 61  # 60 s window + 1 s guard
    assert caught.value.not_delivered is True
    assert len(calls_to(http, SKILLS_URL)) == 1


def test_calls_wait_behind_the_backlog_unless_dispatched_from_it(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    client = CXoneClient(make_settings(cxone_rate_limit_per_minute=10), fake_redis)
    fake_redis.zadd(redis_keys.BACKLOG, {"waiting-routing": 1.0})

    # A routing accepted earlier waits: a newcomer gets no slot, though the window has room.
    with pytest.raises(RateLimited) as caught:
        client.search_skills("Claims")
    assert caught.value.behind_backlog and caught.value.not_delivered
    # Dispatched from the backlog with its reserved slot: no second slot taken for the first call,
    # the next call takes one (the backlog's gate does not apply to the head of the line).
    ticket = BacklogPass(reserved=True)
    with carrying(ticket):
        client.search_skills("Claims")
        assert fake_redis.llen(redis_keys.CXONE_RATE_LIMIT) == 0
        client.search_skills("Claims")
        assert fake_redis.llen(redis_keys.CXONE_RATE_LIMIT) == 1
    assert len(calls_to(http, SKILLS_URL)) == 2


def test_a_reserved_slot_still_honours_a_pause_cxone_asked_for_since(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)
    client.limiter.pause(30)

    with carrying(BacklogPass(reserved=True)), pytest.raises(PausedByCXone):
        client.search_skills("Claims")
    assert calls_to(http, SKILLS_URL) == []


def test_a_call_slot_is_taken_only_once_the_token_is_in_hand(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    fake_redis: fakeredis.FakeRedis,
) -> None:
    # Getting a token can wait up to ~44 s behind another worker's refresh. A slot taken before
    # that wait is spent long before the call reaches CXone, so CXone could count more calls in
    # some 60 s than the limiter granted. The retry after a 401 also takes its new token first.
    slots_taken_while_fetching: list[int] = []
    cxone_auth.on_request = lambda: slots_taken_while_fetching.append(
        fake_redis.llen(redis_keys.CXONE_RATE_LIMIT)
    )
    http.add(responses.GET, SKILLS_URL, status=401, json={"error": "invalid_token"})
    http.add(responses.GET, SKILLS_URL, json=EMPTY_SKILLS)

    assert client.search_skills("Claims") == EMPTY_SKILLS

    assert slots_taken_while_fetching == [0, 1]  # only the first call's slot, at the refresh
    assert fake_redis.llen(redis_keys.CXONE_RATE_LIMIT) == 2


def test_a_failed_token_request_spends_no_call_slot(
    http: responses.RequestsMock,
    cxone_auth: FakeCXoneAuth,
    client: CXoneClient,
    fake_redis: fakeredis.FakeRedis,
) -> None:
    cxone_auth.token_status = 503

    with pytest.raises(Transient):
        client.search_skills("Claims")

    assert not fake_redis.exists(redis_keys.CXONE_RATE_LIMIT)
    assert calls_to(http, SKILLS_URL) == []


# ---------------------------------------------------------------- the calls themselves


def test_route_digital_puts_the_skill_id_to_the_routing_queue(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=204)

    client.route_digital("1234567", 1200042)

    (request,) = calls_to(http, ROUTING_URL)
    assert request.method == "PUT"
    assert urlsplit(request.url).path == "/dfo/3.0/contacts/1234567/routing-queue"
    assert json.loads(body_text(request)) == {"skillId": 1200042}
    assert request.headers["Content-Type"] == "application/json"


def test_contact_ids_cannot_escape_their_path_segment(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.PUT, API_URL + "/dfo/3.0/contacts/..%2Fadmin%3Fx%3D1/routing-queue", status=200)

    client.route_digital("../admin?x=1", 5)

    assert urlsplit(http.calls[-1].request.url).path == ("/dfo/3.0/contacts/..%2Fadmin%3Fx%3D1/routing-queue")


def test_signal_posts_p1_to_pn_in_the_query_string(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.POST, SIGNAL_URL, status=204)

    client.signal("7654321", ["1200042", "Sales Support", "a&b=c"])

    (request,) = calls_to(http, SIGNAL_URL)
    assert request.method == "POST"
    assert urlsplit(request.url).path == ("/inContactAPI/services/v30.0/interactions/7654321/signal")
    assert parse_qsl(urlsplit(url_of(request)).query) == [
        ("p1", "1200042"),
        ("p2", "Sales Support"),
        ("p3", "a&b=c"),
    ]
    assert not request.body


def test_signal_sends_at_most_nine_parameters(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.POST, SIGNAL_URL, status=202)

    client.signal("7654321", [str(n) for n in range(1, 12)])

    sent = parse_qsl(urlsplit(url_of(calls_to(http, SIGNAL_URL)[0])).query)
    assert [name for name, _ in sent] == [f"p{n}" for n in range(1, 10)]


def test_search_skills_pages_with_skip_and_top(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    page = {"skills": [{"skillId": 1, "skillName": "Claims", "isActive": True}], "totalRecords": 1}
    http.add(responses.GET, SKILLS_URL, json=page)

    assert client.search_skills("Claims", skip=200, top=100) == page
    assert query(calls_to(http, SKILLS_URL)[0]) == {
        "searchString": ["Claims"],
        "skip": ["200"],
        "top": ["100"],
    }


def test_search_skills_treats_204_as_no_match(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.GET, SKILLS_URL, status=204)

    assert client.search_skills("Nothing Like This") == EMPTY_SKILLS


def test_a_non_json_answer_is_transient(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.GET, SKILLS_URL, body="No known way to render data", status=200)

    with pytest.raises(Transient, match="not JSON"):
        client.search_skills("Claims")


def test_the_environment_is_read_once_per_host_and_still_honoured(monkeypatch):
    from shared.cxone import client as client_module

    lookups = []
    real = requests.utils.get_netrc_auth

    def counting_netrc(url, *args, **kwargs):
        lookups.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(requests.utils, "get_netrc_auth", counting_netrc)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    session = client_module._new_session(4)
    first = session.merge_environment_settings("https://api.example/a", {}, None, None, None)
    assert first["proxies"]["https"] == "http://proxy.example:3128"  # HTTPS_PROXY still applies
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:3128")
    again = session.merge_environment_settings("https://api.example/b", {}, None, None, None)
    assert again == first  # the same host: not read again
    elsewhere = session.merge_environment_settings("https://auth.example/t", {}, None, None, None)
    assert elsewhere["proxies"]["https"] == "http://other.example:3128"
    for path in ("/a", "/b", "/c"):
        session.prepare_request(requests.Request("GET", "https://api.example" + path))
    assert lookups == ["https://api.example/a"]  # .netrc looked up once for the host
