"""The webhook with ``?wait=`` / ``Prefer: wait=``: it answers when the routing finishes (the test
plays the worker by settling the record through the store, which announces it), or when its time
is up; refusals are unchanged; a resend waits for the first routing."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from ingress import create_app
from shared.routing.records import RoutingStatusStore

from .conftest import WEBHOOK_URL

BODY = {
    "sessionId": "session-7000001",
    "inputId": "input-1",
    "channel": "webchat3",
    "intent": "sales_inquiry",
    "intentScore": 0.9,
    "data": {"contactId": "7000001"},
}


@pytest.fixture
def store(fake_redis) -> RoutingStatusStore:
    return RoutingStatusStore(fake_redis, ttl_seconds=3600)


@pytest.fixture
def waiter(app):
    waiter = app.extensions["ingress"].waiter
    yield waiter
    waiter.stop()


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _post_in_thread(client, auth, url=WEBHOOK_URL, body=BODY, headers=None) -> tuple[threading.Thread, list]:
    out: list = []

    def post():
        out.append(client.post(url, json=body, headers={**auth, **(headers or {})}))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, out


def _routing_id(sent, index: int = 0) -> str:
    return sent.messages[index]["routing_id"]


def test_without_a_wait_nothing_changes(client, auth, sent):
    response = client.post(WEBHOOK_URL, json=BODY, headers=auth)

    assert response.status_code == 202
    assert set(response.get_json()) == {
        "status",
        "routingId",
        "intent",
        "queue",
        "contactId",
        "contactSource",
        "mode",
    }
    assert "Preference-Applied" not in response.headers


def test_routed_while_waiting_is_200_with_where_and_when(client, auth, sent, store, waiter):
    thread, out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=5")
    _until(lambda: sent.messages and waiter.waiting_count() == 1)

    store.mark_routed(_routing_id(sent), 1200001)
    thread.join(10)

    response = out[0]
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "routed"
    assert body["routingId"] == _routing_id(sent)
    assert (body["intent"], body["queue"], body["contactId"], body["mode"]) == (
        "sales_inquiry",
        "Sales Support",
        "7000001",
        "digital",
    )
    assert body["skillId"] == 1200001 and body["routedAt"]
    assert 0 <= body["waitedMs"] < 5000
    assert "Preference-Applied" not in response.headers


def test_prefer_wait_among_other_preferences_is_honoured_and_said_so(client, auth, sent, store, waiter):
    thread, out = _post_in_thread(client, auth, headers={"Prefer": "respond-async, wait=5"})
    _until(lambda: sent.messages and waiter.waiting_count() == 1)

    store.mark_routed(_routing_id(sent), 1200001)
    thread.join(10)

    assert out[0].status_code == 200
    assert out[0].headers["Preference-Applied"] == "wait=5"


def test_a_failure_while_waiting_is_200_failed_with_the_reason(client, auth, sent, store, waiter):
    thread, out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=5")
    _until(lambda: sent.messages and waiter.waiting_count() == 1)

    store.mark_failed(_routing_id(sent), "CXone answered 404: unknown or closed contact", sent.messages[0])
    thread.join(10)

    body = out[0].get_json()
    assert out[0].status_code == 200
    assert body["status"] == "failed" and body["reason"] == "CXone answered 404: unknown or closed contact"


def test_time_up_is_202_with_the_current_state_and_the_routing_goes_on(client, auth, sent, store, waiter):
    thread, out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=0.3")
    _until(lambda: sent.messages and waiter.waiting_count() == 1)
    store.mark_retrying(_routing_id(sent), "CXone answered 503", time.time() + 2)
    thread.join(10)

    body = out[0].get_json()
    assert out[0].status_code == 202
    assert body["status"] == "retrying" and body["lastError"] == "CXone answered 503"
    assert body["waitedMs"] >= 300
    assert len(sent.messages) == 1  # queued once, and still open
    assert store.get(_routing_id(sent)).state == "retrying"


def test_wait_zero_answers_at_once_with_the_current_state(client, auth, sent):
    response = client.post(WEBHOOK_URL + "?wait=0", json=BODY, headers=auth)

    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"


@pytest.mark.parametrize(
    "url, headers",
    [
        (WEBHOOK_URL + "?wait=abc", {}),
        (WEBHOOK_URL + "?wait=-1", {}),
        (WEBHOOK_URL + "?wait=1&wait=2", {}),
        (WEBHOOK_URL, {"Prefer": "respond-async, wait=later"}),
    ],
)
def test_a_bad_wait_is_400_naming_the_field_and_nothing_is_queued(client, auth, sent, url, headers):
    response = client.post(url, json=BODY, headers={**auth, **headers})

    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["wait"]
    assert sent.messages == []


def test_a_bad_wait_is_reported_with_the_bodys_problems(client, auth, sent):
    body = {**BODY, "intentScore": "very"}

    response = client.post(WEBHOOK_URL + "?wait=x", json=body, headers=auth)

    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"wait", "intentScore"}


def test_refusals_do_not_wait(client, auth, sent):
    started = time.monotonic()

    unauthorized = client.post(WEBHOOK_URL + "?wait=7", json=BODY, headers={"X-API-Key": "wrong"})
    not_json = client.post(WEBHOOK_URL + "?wait=7", data="x", content_type="text/plain", headers=auth)

    assert (unauthorized.status_code, not_json.status_code) == (401, 415)
    assert time.monotonic() - started < 5
    assert sent.messages == []


def test_a_resend_waits_for_the_first_routing_and_gets_its_outcome(client, auth, sent, store, waiter):
    first, first_out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=5")
    _until(lambda: sent.messages and waiter.waiting_count() == 1)
    resend, resend_out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=5")
    _until(lambda: waiter.waiting_count() == 2)

    store.mark_routed(_routing_id(sent), 1200001)
    first.join(10)
    resend.join(10)

    one, two = first_out[0].get_json(), resend_out[0].get_json()
    assert first_out[0].status_code == resend_out[0].status_code == 200
    assert one["routingId"] == two["routingId"] == _routing_id(sent)
    assert two["duplicate"] is True and "duplicate" not in one
    assert len(sent.messages) == 1


def test_a_resend_after_the_outcome_gets_it_at_once(client, auth, sent, store):
    client.post(WEBHOOK_URL, json=BODY, headers=auth)
    store.mark_routed(_routing_id(sent), 1200001)

    response = client.post(WEBHOOK_URL + "?wait=5", json=BODY, headers=auth)

    assert response.status_code == 200
    assert response.get_json()["status"] == "routed" and response.get_json()["duplicate"] is True
    assert response.get_json()["waitedMs"] < 5000


def test_redis_gone_while_waiting_is_202_with_the_routing_id(client, auth, sent, fake_redis, waiter):
    thread, out = _post_in_thread(client, auth, WEBHOOK_URL + "?wait=7")
    _until(lambda: sent.messages and waiter.waiting_count() == 1)
    started = time.monotonic()

    fake_redis.connection_pool.connection_kwargs["server"].connected = False
    thread.join(10)

    assert out, "the webhook was not answered"
    assert time.monotonic() - started < 5
    assert out[0].status_code == 202
    assert out[0].get_json()["routingId"] == _routing_id(sent)


def test_max_wait_zero_never_waits(settings, routing_table, fake_redis, sent, auth):
    app = create_app(
        dataclasses.replace(settings, webhook_max_wait_seconds=0.0),
        routing_table=routing_table,
        redis_client=fake_redis,
        send_task=sent,
    )
    started = time.monotonic()

    response = app.test_client().post(WEBHOOK_URL + "?wait=7", json=BODY, headers=auth)

    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    assert time.monotonic() - started < 5
    app.extensions["ingress"].waiter.stop()
