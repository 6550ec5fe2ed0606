"""``CXoneError.summary``: what Flower may show of a CXone failure, built from its classification only.

CXone's error messages may echo what was sent (a contact id is fine; an access key's name, or any
other text a future call sends, is not), so the summary never quotes them. The errors here come
from the real client, answering with bodies that echo such text.
"""

from __future__ import annotations

import fakeredis
import pytest
import requests
import responses

from shared.cxone.client import ROUTING_QUEUE_PATH, SIGNAL_PATH, SKILLS_PATH, CXoneClient
from shared.cxone.errors import CXoneError, OutcomeUnknown, RateLimited, Transient
from shared.cxone.queue_directory import UnknownQueue
from shared.cxone.single_flight import SingleFlightTimeout
from tests.support.cxone import API_URL, FakeCXoneAuth, make_settings

ROUTING_URL = API_URL + ROUTING_QUEUE_PATH.format(contact_id="7000001")
SIGNAL_URL = API_URL + SIGNAL_PATH.format(contact_id="7000002")
SKILLS_URL = API_URL + SKILLS_PATH
#: Text CXone might echo back: it must reach the routing record at most, never the summary.
ECHOED = "echo: key-id sandbox/key+secret= customer words"


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


def raised_by(call) -> CXoneError:
    with pytest.raises(CXoneError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        (400, "CXone answered 400 (bad request) on routing_queue"),
        (403, "CXone answered 403 (forbidden) on routing_queue"),
        (404, "CXone answered 404 (not found) on routing_queue"),
        (418, "CXone answered 418 (refused) on routing_queue"),
        (429, "CXone answered 429 (throttled) on routing_queue"),
        (502, "CXone answered 502 (bad gateway) on routing_queue"),
        (503, "CXone answered 503 (outage) on routing_queue"),
        (599, "CXone answered 599 (server error) on routing_queue"),
    ],
)
def test_an_http_error_reads_as_status_and_endpoint_without_cxones_message(
    http: responses.RequestsMock, client: CXoneClient, status: int, summary: str
) -> None:
    http.add(
        responses.PUT,
        ROUTING_URL,
        status=status,
        json={"errors": [{"message": ECHOED, "errorCode": "X", "field": None, "parameters": {}}]},
    )

    error = raised_by(lambda: client.route_digital("7000001", 42))

    assert ECHOED in error.reason  # the record keeps CXone's words for the operator...
    assert error.summary == summary  # ...Flower gets ours


def test_a_failed_token_request_says_so_without_the_oauth_description(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    cxone_auth.token_status = 503  # answers {"error": …, "error_description": "Bad client credentials"}

    error = raised_by(lambda: client.route_digital("7000001", 42))

    assert error.summary == "CXone answered 503 (outage) on token"
    assert "Bad client credentials" in error.reason and "credentials" not in error.summary


def test_rejected_credentials_say_what_to_check_and_never_quote_cxone(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    cxone_auth.token_status = 401  # answers {"error": "invalid_client", "error_description": …}

    error = raised_by(lambda: client.route_digital("7000001", 42))

    assert (
        error.summary
        == error.reason
        == ("CXone rejected the credentials (invalid_client): check CXONE_CLIENT_ID/SECRET")
    )


def test_a_redirect_and_an_untrusted_url_never_name_where_they_pointed(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, client: CXoneClient
) -> None:
    http.add(responses.PUT, ROUTING_URL, status=307, headers={"Location": "https://echo.example/" + ECHOED})

    redirected = raised_by(lambda: client.route_digital("7000001", 42))

    assert redirected.summary == "CXone answered 307 (redirect, not followed) on routing_queue"
    assert "echo.example" in redirected.reason and "echo.example" not in redirected.summary


@pytest.mark.parametrize(
    ("failure", "summary"),
    [
        (requests.ConnectTimeout(ECHOED), "no connection to CXone within the connect timeout on signal"),
        (requests.ReadTimeout(ECHOED), "no answer from CXone within the read timeout on signal"),
        (requests.ConnectionError(ECHOED), "the connection to CXone failed on signal"),
    ],
)
def test_a_failure_without_an_answer_is_named_by_its_kind(
    http: responses.RequestsMock, client: CXoneClient, failure: Exception, summary: str
) -> None:
    http.add(responses.POST, SIGNAL_URL, body=failure)

    assert raised_by(lambda: client.signal("7000002", ["42"])).summary == summary


def test_an_answer_that_is_not_json_says_so(http: responses.RequestsMock, client: CXoneClient) -> None:
    http.add(responses.GET, SKILLS_URL, body=f"<html>{ECHOED}</html>", status=200)

    error = raised_by(lambda: client.search_skills("Sales"))

    assert error.summary == "CXone's answer was not the JSON expected on skills"


def test_our_own_reasons_are_shown_as_they_are() -> None:
    assert RateLimited(0.42).summary == "waiting for a CXone call slot (CXONE_RATE_LIMIT_PER_MINUTE)"
    unknown = UnknownQueue("queue 'Claims': missing: no CXone skill has this exact name", endpoint="skills")
    assert unknown.summary == unknown.reason
    try:
        raise Transient("token refresh took too long: " + ECHOED, endpoint="token") from SingleFlightTimeout()
    except Transient as error:
        assert error.summary == "waited too long for another worker's CXone request on token"


def test_an_unknown_signal_outcome_names_the_failure_behind_it() -> None:
    cause = Transient(ECHOED, endpoint="signal")
    cause.__cause__ = requests.ReadTimeout()
    try:
        raise OutcomeUnknown(f"{ECHOED}; may have reached CXone", endpoint="signal") from cause
    except OutcomeUnknown as error:
        assert error.summary == (
            "signal outcome unknown (no answer from CXone within the read timeout on signal); not sent twice"
        )
    assert OutcomeUnknown("already started", endpoint="signal").summary == (
        "signal outcome unknown (a signal for this routing was already started); not sent twice"
    )


def test_an_error_of_unknown_origin_never_shows_its_reason() -> None:
    assert Transient(ECHOED, endpoint="token").summary == "the CXone request failed on token"
    assert CXoneError(ECHOED).summary == "the CXone request failed"
