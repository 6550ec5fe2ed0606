"""Fixtures: an in-process sandbox app with a ready token, and a live one on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import flask
import pytest
from flask.testing import FlaskClient

from cxone_sandbox import SandboxServer, create_app, serve_in_thread

from .cxone_calls import password_grant


@pytest.fixture
def app() -> flask.Flask:
    """A fresh sandbox app (own state per test)."""
    return create_app()


@pytest.fixture
def client(app: flask.Flask) -> FlaskClient:
    """Flask test client of the fresh app."""
    return app.test_client()


@pytest.fixture
def auth(client: FlaskClient) -> dict[str, str]:
    """Authorization header carrying a valid access token."""
    token = password_grant(client).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


@pytest.fixture
def live_sandbox() -> Iterator[SandboxServer]:
    """A sandbox served on a free loopback port for the duration of one test."""
    server = serve_in_thread()
    try:
        yield server
    finally:
        server.stop()
