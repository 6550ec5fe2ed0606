"""When Redis or the broker is unreachable: 503 so Cognigy retries, and nothing half-kept."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest
import redis
from kombu.exceptions import OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

from ingress import create_app
from shared import redis_keys
from tests.support.ingress import load_payload


@pytest.fixture
def dead_redis() -> redis.Redis:
    """A client pointed at a closed port (no retries, so the test stays fast)."""
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    yield client
    client.close()


@pytest.fixture
def dead_client(settings, routing_table, dead_redis, sent):
    return create_app(
        settings, routing_table=routing_table, redis_client=dead_redis, send_task=sent
    ).test_client()


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("broker gone"),
        redis.TimeoutError("broker slow"),
        OperationalError("kombu could not connect"),
    ],
    ids=["redis-connection", "redis-timeout", "kombu"],
)
def test_publish_failure_is_503_and_leaves_no_record(post_json, sent, fake_redis, error):
    sent.fail_with = error

    response = post_json(load_payload("seed-intents"))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "retry" in response.get_json()["error"]
    assert sent.messages == []
    # Only the contact's counter moved (a number used up; gaps between a contact's routing
    # numbers are harmless): no record, no duplicate claim, no latest routing.
    assert [key.decode() for key in fake_redis.keys("router:*")] == [
        redis_keys.contact_seq(load_payload("seed-intents")["sessionId"])
    ]


def test_publish_failure_then_success_keeps_one_record(post_json, sent, fake_redis):
    sent.fail_with = redis.ConnectionError("blip")
    assert post_json(load_payload("seed-intents")).status_code == 503
    sent.fail_with = None

    response = post_json(load_payload("seed-intents"))

    assert response.status_code == 202
    assert len(sent.messages) == 1
    assert fake_redis.zcard("router:routings:open") == 1


def test_redis_down_is_503_and_nothing_sent(dead_client, sent):
    response = dead_client.post(
        "/webhook/cognigy/route",
        json=load_payload("seed-intents"),
        headers={"X-API-Key": "key-current-0123456789"},
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert sent.messages == []


def test_routing_status_with_redis_down_is_503(dead_client):
    response = dead_client.get("/routings/abc", headers={"X-API-Key": "key-current-0123456789"})

    assert response.status_code == 503


def test_default_redis_client_fails_fast_when_redis_is_down(settings, routing_table, sent, monkeypatch):
    """The client create_app builds itself must answer 503 well inside Cognigy's 8 s timeout.

    Judged by what the client may wait, not by a stopwatch that a busy machine would stretch: the
    connection attempts it makes, each bounded by its connect and read timeouts (even against a
    Redis that accepts and never answers), and no sleep between them.
    """
    down = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    app = create_app(down, routing_table=routing_table, send_task=sent)
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def counting_connect(sock: socket.socket, address: object) -> None:
        attempts.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    slept: list[float] = []  # backoff between attempts: redis-py's Retry sleeps with its own import
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr("redis.retry.sleep", slept.append)

    response = app.test_client().post(
        "/webhook/cognigy/route",
        json=load_payload("seed-intents"),
        headers={"X-API-Key": "key-current-0123456789"},
    )

    assert response.status_code == 503
    assert sent.messages == []
    timeouts = app.extensions["ingress"].redis.connection_pool.connection_kwargs
    per_attempt = timeouts["socket_connect_timeout"] + timeouts["socket_timeout"]
    assert attempts and len(attempts) * per_attempt + sum(slept) <= 3


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_needs_no_redis(dead_client):
    assert dead_client.get("/healthz").status_code == 200


def test_readyz_with_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_without_redis(dead_client):
    response = dead_client.get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["detail"] == "ConnectionError"
