"""The ingress refuses to start with a demo secret while CXone is a real tenant (create_app)."""

from __future__ import annotations

import pytest

from ingress import create_app
from shared.routing.table import RoutingTable
from shared.settings import Settings, SettingsError
from tests.support.ingress import ROUTES_YAML


def test_the_demo_webhook_key_with_a_real_tenant_stops_the_app(monkeypatch, fake_redis, sent):
    # As gunicorn loads it: settings from the environment, nothing passed in.
    monkeypatch.setenv("WEBHOOK_API_KEYS", "demo-webhook-key")
    monkeypatch.setenv("CXONE_AUTH_URL", "https://cxone.niceincontact.com")
    monkeypatch.setenv("ROUTES_FILE", "config/routes.example.yaml")

    with pytest.raises(SettingsError, match="WEBHOOK_API_KEYS carries the demo webhook key"):
        create_app(redis_client=fake_redis, send_task=sent)


def test_demo_settings_from_the_caller_are_checked_too(fake_redis, sent):
    table = RoutingTable.parse(ROUTES_YAML)
    settings = Settings(
        webhook_api_keys=("our-own-key-0123456789",),
        flower_basic_auth="admin:demo-flower-password",
        cxone_auth_url="https://cxone.niceincontact.com",
    )

    with pytest.raises(SettingsError, match="FLOWER_BASIC_AUTH carries the demo Flower password"):
        create_app(settings, routing_table=table, redis_client=fake_redis, send_task=sent)


def test_the_demo_key_against_the_sandbox_serves(fake_redis, sent):
    table = RoutingTable.parse(ROUTES_YAML)
    settings = Settings(webhook_api_keys=("demo-webhook-key",), cxone_auth_url="http://127.0.0.1:8088")

    client = create_app(settings, routing_table=table, redis_client=fake_redis, send_task=sent).test_client()

    assert client.get("/healthz").status_code == 200
