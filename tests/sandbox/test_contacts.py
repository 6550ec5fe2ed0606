"""Moving digital contacts (DFO routing-queue PUT) and signalling voice contacts."""

from __future__ import annotations

from flask.testing import FlaskClient

from cxone_sandbox import SEED_SKILLS

from .cxone_calls import routing_path, signal_path

SALES_SUPPORT = next(s for s in SEED_SKILLS if s.skill_name == "Sales Support")
BILLING = next(s for s in SEED_SKILLS if s.skill_name == "Billing")
CLAIMS = next(s for s in SEED_SKILLS if s.skill_name == "Claims")
LEGACY_SALES = next(s for s in SEED_SKILLS if s.skill_name == "Legacy Sales")


def assert_dfo_error(body: dict, error_code: str) -> None:
    """The body has DFO's error shape with the given errorCode."""
    assert set(body) == {"errors", "uid"}
    (error,) = body["errors"]
    assert set(error) == {"message", "field", "errorCode", "parameters"}
    assert error["errorCode"] == error_code and error["message"]


def test_routing_put_moves_the_contact_and_is_recorded(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.put(routing_path("chat-1001"), json={"skillId": SALES_SUPPORT.skill_id}, headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "id": "chat-1001",
        "routingQueueId": SALES_SUPPORT.routing_queue_id,
        "skillId": SALES_SUPPORT.skill_id,
    }
    client.put(routing_path("chat-1001"), json={"skillId": BILLING.skill_id}, headers=auth)
    client.put(routing_path("chat-1002"), json={"skillId": BILLING.skill_id}, headers=auth)
    stats = client.get("/sandbox/stats").get_json()
    assert [r["skillId"] for r in stats["routings"]["chat-1001"]] == [
        SALES_SUPPORT.skill_id,
        BILLING.skill_id,
    ]
    assert isinstance(stats["routings"]["chat-1002"][0]["at"], float)
    assert stats["contacts_routed"] == 2
    assert stats["contacts_routed_more_than_once"] == 1
    assert stats["api_calls_by_endpoint"]["routing_put"] == 3


def test_unknown_non_digital_or_inactive_skill_is_400(client: FlaskClient, auth: dict[str, str]) -> None:
    for skill_id in (999, CLAIMS.skill_id, LEGACY_SALES.skill_id):
        response = client.put(routing_path("chat-1"), json={"skillId": skill_id}, headers=auth)
        assert response.status_code == 400, skill_id
        assert_dfo_error(response.get_json(), "InvalidRoutingQueue")
        assert response.get_json()["errors"][0]["field"] == "skillId"
    assert client.get("/sandbox/stats").get_json()["routings"] == {}


def test_missing_or_invalid_body_is_400(client: FlaskClient, auth: dict[str, str]) -> None:
    bodies = [{"json": {}}, {"json": {"skillId": "1200001"}}, {"json": {"skillId": True}}]
    bodies.append({"data": "skillId=1200001"})
    for body in bodies:
        response = client.put(routing_path("chat-1"), headers=auth, **body)
        assert response.status_code == 400, body
        assert_dfo_error(response.get_json(), "InvalidRequestBody")


def test_closed_and_unknown_contacts_are_404(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"closed_contacts": ["chat-gone"]})
    body = {"skillId": SALES_SUPPORT.skill_id}
    for contact_id in ("closed-7", "unknown-8", "chat-gone"):
        response = client.put(routing_path(contact_id), json=body, headers=auth)
        assert response.status_code == 404
        assert_dfo_error(response.get_json(), "ContactNotFound")
        assert client.post(signal_path(contact_id), headers=auth).status_code == 404
    stats = client.get("/sandbox/stats").get_json()
    assert stats["routings"] == {} and stats["signals"] == {}


def test_signal_is_202_and_recorded(client: FlaskClient, auth: dict[str, str]) -> None:
    query = {"p1": "reskill", "p2": str(CLAIMS.skill_id)}
    response = client.post(signal_path("voice-42"), query_string=query, headers=auth)
    assert response.status_code == 202
    assert response.data == b""
    client.post(signal_path("voice-42"), query_string={"p1": "again", "x": "ignored"}, headers=auth)
    stats = client.get("/sandbox/stats").get_json()
    assert [entry["params"] for entry in stats["signals"]["voice-42"]] == [
        {"p1": "reskill", "p2": str(CLAIMS.skill_id)},
        {"p1": "again"},
    ]
    assert stats["contacts_signalled"] == 1
    assert stats["contacts_signalled_more_than_once"] == 1
    assert stats["contacts_routed"] == 0


def test_contact_calls_need_a_token(client: FlaskClient) -> None:
    body = {"skillId": SALES_SUPPORT.skill_id}
    response = client.put(routing_path("chat-1"), json=body)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert client.post(signal_path("voice-1")).status_code == 401
