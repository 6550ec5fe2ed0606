"""Fixtures for the ingress: the Flask app with fake Redis, a recording ``send_task``, no broker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.support.ingress import API_KEYS, ROUTES_YAML, WEBHOOK_URL, ingress_on_fakes, ingress_settings


@pytest.fixture
def settings() -> Settings:
    return ingress_settings()


@pytest.fixture
def routing_table() -> RoutingTable:
    return RoutingTable.parse(ROUTES_YAML, source="test-routes")


@pytest.fixture
def app(settings, routing_table, fake_redis, sent) -> Flask:
    return ingress_on_fakes(settings, routing_table, redis_client=fake_redis, sent=sent).app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": API_KEYS[0]}


@pytest.fixture
def post_json(client: FlaskClient, auth) -> Callable:
    """POST a body (dict/list, or raw str/bytes) to the webhook with a valid key by default."""

    def post(body, headers: dict[str, str] | None = None, content_type: str = "application/json"):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return client.post(
            WEBHOOK_URL, data=data, content_type=content_type, headers=auth if headers is None else headers
        )

    return post
