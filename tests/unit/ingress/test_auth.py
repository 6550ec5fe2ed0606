"""Webhook authentication: both API-key headers, key rotation, refusal to start without keys."""

from __future__ import annotations

import dataclasses

import pytest

from ingress import create_app
from ingress.auth import is_valid_key, presented_key
from shared.settings import SettingsError
from tests.support.ingress import API_KEYS, WEBHOOK_URL, load_payload


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": API_KEYS[0]},
        {"Authorization": f"ApiKey {API_KEYS[0]}"},
        {"Authorization": f"apikey   {API_KEYS[0]}  "},
    ],
    ids=["x-api-key", "authorization-apikey", "authorization-loose-spacing"],
)
def test_both_headers_are_accepted(post_json, sent, headers):
    response = post_json(load_payload("seed-intents"), headers=headers)

    assert response.status_code == 202
    assert len(sent.messages) == 1


@pytest.mark.parametrize("key", API_KEYS, ids=["current", "next"])
def test_every_configured_key_works_for_rotation(post_json, key):
    assert post_json(load_payload("seed-flat"), headers={"X-API-Key": key}).status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": API_KEYS[0] + "x"},
        {"X-API-Key": API_KEYS[0][:-1]},
        {"Authorization": "ApiKey wrong"},
        {"Authorization": f"Bearer {API_KEYS[0]}"},
        {"Authorization": f"Basic {API_KEYS[0]}"},
        {"Authorization": "ApiKey "},
    ],
    ids=["missing", "wrong", "longer", "prefix", "wrong-apikey", "bearer", "basic", "empty"],
)
def test_bad_or_missing_key_is_401_and_nothing_happens(post_json, sent, fake_redis, headers):
    response = post_json(load_payload("seed-intents"), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "ApiKey"
    assert "API key" in response.get_json()["error"]
    assert sent.messages == []
    assert fake_redis.keys("*") == []


def test_authentication_comes_before_parsing(post_json, sent):
    response = post_json("{not json", headers={"X-API-Key": "wrong"})

    assert response.status_code == 401
    assert sent.messages == []


def test_routing_status_requires_a_key(client, post_json, auth):
    routing_id = post_json(load_payload("seed-intents")).get_json()["routingId"]

    assert client.get(f"/routings/{routing_id}").status_code == 401
    assert client.get(f"/routings/{routing_id}", headers={"X-API-Key": "wrong"}).status_code == 401
    assert (
        client.get(f"/routings/{routing_id}", headers={"Authorization": f"ApiKey {API_KEYS[1]}"}).status_code
        == 200
    )
    assert client.get(f"/routings/{routing_id}", headers=auth).status_code == 200


def test_create_app_refuses_to_start_without_keys(settings, routing_table, fake_redis, sent):
    no_keys = dataclasses.replace(settings, webhook_api_keys=())

    with pytest.raises(SettingsError, match="WEBHOOK_API_KEYS"):
        create_app(no_keys, routing_table=routing_table, redis_client=fake_redis, send_task=sent)


def test_auth_can_be_disabled_explicitly(settings, routing_table, fake_redis, sent):
    open_settings = dataclasses.replace(settings, webhook_api_keys=(), webhook_auth_disabled=True)
    client = create_app(
        open_settings, routing_table=routing_table, redis_client=fake_redis, send_task=sent
    ).test_client()

    response = client.post(WEBHOOK_URL, json=load_payload("seed-intents"))

    assert response.status_code == 202
    assert len(sent.messages) == 1


def test_presented_key_prefers_x_api_key():
    assert presented_key({"X-API-Key": " k1 ", "Authorization": "ApiKey k2"}) == "k1"
    assert presented_key({"Authorization": "ApiKey k2"}) == "k2"
    assert presented_key({"Authorization": "Bearer k2"}) is None
    assert presented_key({}) is None


def test_is_valid_key():
    assert is_valid_key("b", ["a", "b"])
    assert not is_valid_key("c", ["a", "b"])
    assert not is_valid_key("", ["a", ""])
    assert not is_valid_key(None, ["a"])
    assert not is_valid_key("a", [])
    assert is_valid_key("clé", ["clé"])
