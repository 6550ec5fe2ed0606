"""Discovery, the token endpoint, token expiry and revocation."""

from __future__ import annotations

import base64
import json

import requests
from flask.testing import FlaskClient

from cxone_sandbox import SandboxConfig, SandboxServer, create_app
from tests.support.clock import FakeClock

from .cxone_calls import CONFIG, SKILLS_PATH, password_grant


def jwt_payload(token: str) -> dict:
    """Decode a JWT's payload without verifying it, as the router does."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_openid_discovery_points_at_token_endpoint(client: FlaskClient) -> None:
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["issuer"] == "http://localhost"
    assert document["token_endpoint"] == "http://localhost/auth/token"
    assert set(document["grant_types_supported"]) == {
        "password",
        "client_credentials",
        "refresh_token",
    }
    assert "client_secret_basic" in document["token_endpoint_auth_methods_supported"]
    assert client.get(document["jwks_uri"]).status_code == 200


def test_public_url_overrides_advertised_base() -> None:
    client = create_app(SandboxConfig(public_url="http://cxone-sandbox:8088/")).test_client()
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["token_endpoint"] == "http://cxone-sandbox:8088/auth/token"
    tenant = client.get(f"/.well-known/cxone-configuration?tenantId={CONFIG.tenant_id}")
    assert tenant.get_json()["api_endpoint"] == "http://cxone-sandbox:8088"


def test_cxone_configuration_known_and_unknown_tenant(client: FlaskClient) -> None:
    known = client.get(f"/.well-known/cxone-configuration?tenantId={CONFIG.tenant_id}")
    assert known.status_code == 200
    assert known.get_json() == {
        "area": "na1",
        "cluster": "B32",
        "domain": "niceincontact.com",
        "api_endpoint": "http://localhost",
        "auth_endpoint": "http://localhost",
        "ui_endpoint": "http://localhost",
        "tenantId": CONFIG.tenant_id,
    }
    assert client.get("/.well-known/cxone-configuration?tenantId=nope").status_code == 404


def test_password_grant_with_basic_auth_issues_cxone_shaped_tokens(client: FlaskClient) -> None:
    response = password_grant(client)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["refresh_token"] and body["id_token"].count(".") == 2
    claims = jwt_payload(body["access_token"])
    assert claims["tenantId"] == CONFIG.tenant_id
    assert claims["icBUId"] == CONFIG.business_unit_id
    assert (claims["icClusterId"], claims["area"]) == ("B32", "na1")
    assert claims["exp"] - claims["iat"] == 3600 and claims["jti"]


def test_client_secret_post_and_client_credentials_grant(client: FlaskClient) -> None:
    client.post("/sandbox/faults", json={"client_credentials_grant": True})
    form = {
        "grant_type": "client_credentials",
        "client_id": CONFIG.client_id,
        "client_secret": CONFIG.client_secret,
    }
    response = client.post("/auth/token", data=form)
    assert response.status_code == 200
    token = response.get_json()["access_token"]
    skills = client.get(SKILLS_PATH, headers={"Authorization": f"Bearer {token}"})
    assert skills.status_code == 200


def test_refresh_token_grant_is_single_use(client: FlaskClient) -> None:
    refresh_token = password_grant(client).get_json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    credentials = (CONFIG.client_id, CONFIG.client_secret)
    assert client.post("/auth/token", data=form, auth=credentials).status_code == 200
    again = client.post("/auth/token", data=form, auth=credentials)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_wrong_client_is_401_invalid_client(client: FlaskClient) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "x", "password": "y"},
        auth=(CONFIG.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.get_json()["error_description"]


def test_wrong_access_key_is_400_invalid_grant(client: FlaskClient) -> None:
    response = password_grant(client, password="wrong")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_unencoded_access_key_secret_is_rejected(client: FlaskClient) -> None:
    # '+' left raw in a form body decodes to a space, so the secret no longer matches.
    raw_body = f"grant_type=password&username={CONFIG.access_key_id}&password=sandbox/key+secret="
    response = client.post(
        "/auth/token",
        data=raw_body,
        content_type="application/x-www-form-urlencoded",
        auth=(CONFIG.client_id, CONFIG.client_secret),
    )
    assert response.status_code == 400


def test_other_grant_is_unsupported(client: FlaskClient) -> None:
    response = password_grant(client, grant_type="authorization_code")
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_api_calls_need_a_known_token(client: FlaskClient) -> None:
    assert client.get(SKILLS_PATH).status_code == 401
    response = client.get(SKILLS_PATH, headers={"Authorization": "Bearer made.up.token"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert client.get("/sandbox/stats").get_json()["answered_401"] == 2


def test_tokens_expire(client: FlaskClient, clock: FakeClock) -> None:
    client.post("/sandbox/faults", json={"token_ttl_seconds": 60})
    body = password_grant(client).get_json()
    assert body["expires_in"] == 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(SKILLS_PATH, headers=headers).status_code == 200
    clock.advance(60)  # the token's whole life, at once
    expired = client.get(SKILLS_PATH, headers=headers)
    assert expired.status_code == 401
    assert expired.get_json() == {
        "error": "invalid_token",
        "error_description": "token has expired",
    }


def test_revoked_tokens_are_refused_and_new_ones_work(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get(SKILLS_PATH, headers=auth).status_code == 200
    client.post("/sandbox/faults", json={"revoke_tokens": True})
    revoked = client.get(SKILLS_PATH, headers=auth)
    assert revoked.status_code == 401
    assert revoked.get_json()["error"] == "invalid_token"
    fresh = password_grant(client).get_json()["access_token"]
    assert client.get(SKILLS_PATH, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_token_requests_are_counted_by_grant(client: FlaskClient) -> None:
    password_grant(client)
    password_grant(client, grant_type="client_credentials")
    stats = client.get("/sandbox/stats").get_json()
    assert stats["token_requests"] == 2
    assert stats["token_requests_by_grant"] == {"password": 1, "client_credentials": 1}


def test_live_server_with_requests_url_encodes_the_secret(live_sandbox: SandboxServer) -> None:
    discovery = requests.get(f"{live_sandbox.url}/.well-known/openid-configuration", timeout=5)
    token_endpoint = discovery.json()["token_endpoint"]
    assert token_endpoint == f"{live_sandbox.url}/auth/token"
    response = requests.post(
        token_endpoint,
        data={
            "grant_type": "password",
            "username": CONFIG.access_key_id,
            "password": CONFIG.access_key_secret,
        },
        auth=(CONFIG.client_id, CONFIG.client_secret),
        timeout=5,
    )
    assert response.status_code == 200
    tenant_id = jwt_payload(response.json()["access_token"])["tenantId"]
    config = requests.get(
        f"{live_sandbox.url}/.well-known/cxone-configuration",
        params={"tenantId": tenant_id},
        timeout=5,
    )
    assert config.json()["api_endpoint"] == live_sandbox.url
