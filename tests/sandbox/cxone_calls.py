"""Paths and requests the sandbox tests share."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cxone_sandbox import SandboxConfig

CONFIG = SandboxConfig()
SKILLS_PATH = "/inContactAPI/services/v30.0/skills"
ROUTING_QUEUES_PATH = "/dfo/3.0/routing-queues"


def routing_path(contact_id: str) -> str:
    """Path of the DFO routing-queue PUT for a contact."""
    return f"/dfo/3.0/contacts/{contact_id}/routing-queue"


def contact_path(contact_id: str) -> str:
    """Path of the DFO contact read (GET) for a contact."""
    return f"/dfo/3.0/contacts/{contact_id}"


def signal_path(contact_id: str) -> str:
    """Path of the Signal API for a contact."""
    return f"/inContactAPI/services/v30.0/interactions/{contact_id}/signal"


def password_grant(client: FlaskClient, **form: str) -> TestResponse:
    """POST a password grant with the default credentials; keyword args override form fields."""
    body = {
        "grant_type": "password",
        "username": CONFIG.access_key_id,
        "password": CONFIG.access_key_secret,
        **form,
    }
    return client.post("/auth/token", data=body, auth=(CONFIG.client_id, CONFIG.client_secret))
