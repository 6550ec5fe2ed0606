"""The sandbox refuses what CXone refuses, and can be made to: a grant the application was not given,
rejected client or access key, redirects, a tampered discovery, and a 429 with any Retry-After."""

from __future__ import annotations

import time

from flask.testing import FlaskClient

from cxone_sandbox.faults import KNOB_HELP, KNOB_NAMES

from .cxone_calls import CONFIG, SKILLS_PATH, password_grant, routing_path

ELSEWHERE = "https://collector.attacker.example"


def faults(client: FlaskClient, **knobs: object) -> dict:
    response = client.post("/sandbox/faults", json=knobs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def client_credentials_grant(client: FlaskClient):
    return client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(CONFIG.client_id, CONFIG.client_secret),
    )


# ---------------------------------------------------------------- the token endpoint


def test_an_application_without_client_credentials_is_refused_that_grant(client: FlaskClient) -> None:
    refused = client_credentials_grant(client)

    assert refused.status_code == 400
    assert refused.get_json() == {
        "error": "unauthorized_client",
        "error_description": "The client is not authorized to use the client_credentials grant",
    }
    faults(client, client_credentials_grant=True)
    assert client_credentials_grant(client).status_code == 200


def test_invalid_client_can_be_switched_on_and_off(client: FlaskClient) -> None:
    faults(client, invalid_client=True)

    refused = password_grant(client)  # the right client id and secret
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic")

    faults(client, invalid_client=False)
    assert password_grant(client).status_code == 200


def test_invalid_grant_rejects_the_access_key_until_switched_off(client: FlaskClient) -> None:
    faults(client, invalid_grant=True)

    refused = password_grant(client)  # the right access key
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_grant"

    faults(client, invalid_grant=False)
    assert password_grant(client).status_code == 200
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["token_requests_by_grant"] == {"password": 2}


def test_a_redirected_token_endpoint_answers_307_and_issues_nothing(client: FlaskClient) -> None:
    faults(client, redirect_token_to=ELSEWHERE + "/")

    moved = password_grant(client)

    assert moved.status_code == 307
    assert moved.headers["Location"] == ELSEWHERE + "/auth/token"
    assert "access_token" not in moved.get_json()
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["token_requests"] == 1 and stats["answered_3xx"] == 1


# ---------------------------------------------------------------- API calls and discovery


def test_redirected_api_calls_keep_their_path_and_query(client: FlaskClient, auth: dict[str, str]) -> None:
    faults(client, redirect_api_to=ELSEWHERE)

    skills = client.get(SKILLS_PATH + "?searchString=Sales&top=5", headers=auth)
    put = client.put(routing_path("7000001"), json={"skillId": 1200001}, headers=auth)

    assert skills.status_code == 307
    assert skills.headers["Location"] == f"{ELSEWHERE}{SKILLS_PATH}?searchString=Sales&top=5"
    assert put.status_code == 307 and put.headers["Location"] == ELSEWHERE + routing_path("7000001")
    assert client.get("/sandbox/stats").get_json()["routings"] == {}  # nothing was carried out


def test_discovery_can_advertise_other_endpoints(client: FlaskClient) -> None:
    faults(
        client,
        discovery_token_endpoint="http://cxone.niceincontact.com/auth/token",
        discovery_api_endpoint="https://api.attacker.example",
    )

    openid = client.get("/.well-known/openid-configuration").get_json()
    tenant = client.get(f"/.well-known/cxone-configuration?tenantId={CONFIG.tenant_id}").get_json()

    assert openid["token_endpoint"] == "http://cxone.niceincontact.com/auth/token"
    assert tenant["api_endpoint"] == "https://api.attacker.example"
    faults(client, discovery_token_endpoint=None, discovery_api_endpoint=None)
    assert (
        client.get("/.well-known/openid-configuration")
        .get_json()["token_endpoint"]
        .startswith("http://localhost/")
    )


def test_throttle_next_answers_exactly_that_many_calls_429_with_the_retry_after_asked(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    faults(client, throttle_next=2, retry_after_seconds=90)

    answers = [client.get(SKILLS_PATH, headers=auth) for _ in range(4)]

    assert [a.status_code for a in answers] == [429, 429, 200, 200]
    assert [a.headers.get("Retry-After") for a in answers[:2]] == ["90", "90"]
    assert client.get("/sandbox/faults").get_json()["throttle_next"] == 0
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["answered_429"] == 2 and stats["accepted_api_calls"] == 2


def test_a_429_can_carry_any_retry_after_or_none(client: FlaskClient, auth: dict[str, str]) -> None:
    http_date = "Wed, 21 Oct 2015 07:28:00 GMT"
    faults(client, throttle_next=1, retry_after_seconds=http_date)
    assert client.get(SKILLS_PATH, headers=auth).headers["Retry-After"] == http_date

    faults(client, throttle_next=1, retry_after_seconds=None)
    assert client.get(SKILLS_PATH, headers=auth).headers["Retry-After"] == "1"

    faults(client, throttle_next=1, retry_after=False)
    assert "Retry-After" not in client.get(SKILLS_PATH, headers=auth).headers

    # The rate limit's 429 says the knob's value too, when one is set.
    faults(client, rate_limit_per_minute=0, retry_after=True, retry_after_seconds=120)
    assert client.get(SKILLS_PATH, headers=auth).headers["Retry-After"] == "120"


def test_every_token_and_api_request_is_logged_with_its_arrival_and_answer(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    faults(client, throttle_next=1)
    before = time.time()
    client.get(SKILLS_PATH, headers=auth)
    client.get(SKILLS_PATH, headers=auth)
    password_grant(client)
    client.get("/.well-known/openid-configuration")  # discovery and controls are not logged

    calls = client.get("/sandbox/calls").get_json()["calls"]

    assert [(c["endpoint"], c["status"]) for c in calls] == [
        ("issue_token", 200),  # the auth fixture's token
        ("list_skills", 429),
        ("list_skills", 200),
        ("issue_token", 200),
    ]
    assert all(c["at"] >= before for c in calls[1:])
    assert [c["at"] for c in calls] == sorted(c["at"] for c in calls)
    client.post("/sandbox/reset")
    assert client.get("/sandbox/calls").get_json() == {"calls": []}


# ---------------------------------------------------------------- the controls


def test_the_new_knobs_are_validated(client: FlaskClient) -> None:
    for update in (
        {"redirect_token_to": "ftp://x"},
        {"redirect_api_to": "not a url"},
        {"discovery_token_endpoint": 5},
        {"throttle_next": -1},
        {"throttle_next": True},
        {"retry_after_seconds": -5},
        {"retry_after_seconds": ""},
        {"invalid_client": "yes"},
        {"client_credentials_grant": 1},
    ):
        response = client.post("/sandbox/faults", json=update)
        assert response.status_code == 400, update
        assert next(iter(update)) in response.get_json()["error_description"]


def test_reset_turns_every_refusal_off(client: FlaskClient) -> None:
    faults(
        client,
        invalid_client=True,
        invalid_grant=True,
        client_credentials_grant=True,
        redirect_token_to=ELSEWHERE,
        redirect_api_to=ELSEWHERE,
        discovery_api_endpoint=ELSEWHERE,
        throttle_next=3,
        retry_after_seconds=90,
    )

    knobs = client.post("/sandbox/reset").get_json()["faults"]

    assert knobs["invalid_client"] is knobs["invalid_grant"] is knobs["client_credentials_grant"] is False
    assert knobs["redirect_token_to"] is knobs["redirect_api_to"] is knobs["discovery_api_endpoint"] is None
    assert knobs["throttle_next"] == 0 and knobs["retry_after_seconds"] is None
    assert password_grant(client).status_code == 200


def test_the_help_page_says_what_every_knob_does(client: FlaskClient) -> None:
    page = client.get("/sandbox").text

    assert set(KNOB_HELP) == set(KNOB_NAMES)
    for name in KNOB_NAMES:
        assert name in page and KNOB_HELP[name] in page
    assert "GET  /sandbox/calls" in page
