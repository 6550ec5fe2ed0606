"""Digital contacts: moving them (DFO routing-queue PUT), reading them back, signalling voice
contacts, and the controls that put a contact in a given state."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient

from cxone_sandbox import SEED_SKILLS, SandboxServer
from cxone_sandbox.control import contact_command

from .cxone_calls import contact_path, routing_path, signal_path

SALES_SUPPORT = next(s for s in SEED_SKILLS if s.skill_name == "Sales Support")
BILLING = next(s for s in SEED_SKILLS if s.skill_name == "Billing")
CLAIMS = next(s for s in SEED_SKILLS if s.skill_name == "Claims")
LEGACY_SALES = next(s for s in SEED_SKILLS if s.skill_name == "Legacy Sales")
#: Ids CXone cannot have (they are not numbers), each of them a 404 on every contact call.
NOT_CONTACT_IDS = ("chat-1001", "closed-7", "unknown-8", "٣٣", "1e3", "-5", "12345678901234567890123")


def assert_dfo_error(body: dict, error_code: str) -> None:
    """The body has DFO's error shape with the given errorCode."""
    assert set(body) == {"errors", "uid"}
    (error,) = body["errors"]
    assert set(error) == {"message", "field", "errorCode", "parameters"}
    assert error["errorCode"] == error_code and error["message"]


def test_routing_put_moves_the_contact_and_is_recorded(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.put(routing_path("7001001"), json={"skillId": SALES_SUPPORT.skill_id}, headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "id": "7001001",
        "routingQueueId": SALES_SUPPORT.routing_queue_id,
        "skillId": SALES_SUPPORT.skill_id,
    }
    client.put(routing_path("7001001"), json={"skillId": BILLING.skill_id}, headers=auth)
    client.put(routing_path("7001002"), json={"skillId": BILLING.skill_id}, headers=auth)
    stats = client.get("/sandbox/stats").get_json()
    assert [r["skillId"] for r in stats["routings"]["7001001"]] == [
        SALES_SUPPORT.skill_id,
        BILLING.skill_id,
    ]
    assert isinstance(stats["routings"]["7001002"][0]["at"], float)
    assert stats["contacts_routed"] == 2
    assert stats["contacts_routed_more_than_once"] == 1
    assert stats["api_calls_by_endpoint"]["routing_put"] == 3


def test_unknown_non_digital_or_inactive_skill_is_400(client: FlaskClient, auth: dict[str, str]) -> None:
    for skill_id in (999, CLAIMS.skill_id, LEGACY_SALES.skill_id):
        response = client.put(routing_path("7000001"), json={"skillId": skill_id}, headers=auth)
        assert response.status_code == 400, skill_id
        assert_dfo_error(response.get_json(), "InvalidRoutingQueue")
        assert response.get_json()["errors"][0]["field"] == "skillId"
    assert client.get("/sandbox/stats").get_json()["routings"] == {}


def test_missing_or_invalid_body_is_400(client: FlaskClient, auth: dict[str, str]) -> None:
    bodies: list[dict] = [{"json": {}}, {"json": {"skillId": "1200001"}}, {"json": {"skillId": True}}]
    bodies.append({"data": "skillId=1200001"})
    for body in bodies:
        response = client.put(routing_path("7000001"), headers=auth, **body)
        assert response.status_code == 400, body
        assert_dfo_error(response.get_json(), "InvalidRequestBody")


def test_non_numeric_ids_are_unknown_contacts_on_every_call(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    body = {"skillId": SALES_SUPPORT.skill_id}
    for contact_id in NOT_CONTACT_IDS:
        response = client.put(routing_path(contact_id), json=body, headers=auth)
        assert response.status_code == 404, contact_id
        assert_dfo_error(response.get_json(), "ContactNotFound")
        assert client.post(signal_path(contact_id), headers=auth).status_code == 404, contact_id
        read = client.get(contact_path(contact_id), headers=auth)
        assert read.status_code == 404, contact_id
        assert_dfo_error(read.get_json(), "ContactNotFound")
    stats = client.get("/sandbox/stats").get_json()
    assert stats["routings"] == {} and stats["signals"] == {}


def test_closed_contacts_are_404_to_move_but_read_back_as_closed(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    client.post("/sandbox/faults", json={"closed_contacts": ["7009001"]})
    client.post("/sandbox/contacts/7009002", json={"status": "closed"})
    client.post("/sandbox/contacts/7009003", json={"status": "trashed"})
    body = {"skillId": SALES_SUPPORT.skill_id}
    for contact_id in ("7009001", "7009002", "7009003"):
        response = client.put(routing_path(contact_id), json=body, headers=auth)
        assert response.status_code == 404, contact_id
        assert_dfo_error(response.get_json(), "ContactNotFound")
        assert client.post(signal_path(contact_id), headers=auth).status_code == 404
    # A finished contact is still a contact of the tenant: reading it says why it cannot move.
    assert client.get(contact_path("7009001"), headers=auth).get_json()["status"] == "closed"
    assert client.get(contact_path("7009002"), headers=auth).get_json()["status"] == "closed"
    assert client.get(contact_path("7009003"), headers=auth).get_json()["status"] == "trashed"
    stats = client.get("/sandbox/stats").get_json()
    assert stats["routings"] == {} and stats["signals"] == {}


def test_a_contact_reads_back_in_the_dfo_shape_and_shows_where_the_put_moved_it(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    fresh = client.get(contact_path("7002001"), headers=auth)
    assert fresh.status_code == 200
    contact = fresh.get_json()
    assert contact["id"] == contact["contactId"] == "7002001"
    assert contact["status"] == "new"  # created on first touch: no agent has worked on it
    assert contact["routingQueueId"] is None and contact["inboxAssigneeUser"] is None
    for key in ("interactionId", "threadId", "channelId", "routingQueuePriority", "createdAt"):
        assert contact[key] is not None, key
    assert contact["statusUpdatedAt"] == contact["createdAt"]

    client.put(routing_path("7002001"), json={"skillId": SALES_SUPPORT.skill_id}, headers=auth)

    moved = client.get(contact_path("7002001"), headers=auth).get_json()
    assert moved["routingQueueId"] == SALES_SUPPORT.routing_queue_id
    assert moved["status"] == "new" and moved["interactionId"] == contact["interactionId"]
    stats = client.get("/sandbox/stats").get_json()
    assert stats["api_calls_by_endpoint"]["contact_get"] == 2
    assert stats["contacts_routed"] == 1  # reading is not routing


def test_the_controls_assign_an_agent_and_move_a_contact_between_two_attempts(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    client.put(routing_path("7003001"), json={"skillId": SALES_SUPPORT.skill_id}, headers=auth)

    assigned = client.post("/sandbox/contacts/7003001", json={"assignee": 4242})

    assert assigned.status_code == 200
    contact = client.get(contact_path("7003001"), headers=auth).get_json()
    assert contact == assigned.get_json()
    assert contact["inboxAssigneeUser"]["id"] == 4242
    assert contact["status"] == "open"  # an agent took it
    assert contact["routingQueueId"] == SALES_SUPPORT.routing_queue_id
    queued = client.post("/sandbox/contacts/7003001", json={"skillId": BILLING.skill_id, "assignee": None})
    assert queued.get_json()["routingQueueId"] == BILLING.routing_queue_id
    assert queued.get_json()["inboxAssigneeUser"] is None
    assert queued.get_json()["status"] == "open"  # unassigning does not reopen it as new
    pending = client.post("/sandbox/contacts/7003001", json={"status": "pending", "skillId": None})
    assert (pending.get_json()["status"], pending.get_json()["routingQueueId"]) == ("pending", None)
    # The controls are not CXone calls: never counted, never rate limited.
    assert client.get("/sandbox/stats").get_json()["api_calls_by_endpoint"]["contact_get"] == 1


@pytest.mark.parametrize(
    ("contact_id", "body"),
    [
        ("7004001", {"status": "gone"}),
        ("7004001", {"assignee": "4242"}),
        ("7004001", {"assignee": 0}),
        ("7004001", {"skillId": CLAIMS.skill_id}),  # a phone skill has no routing queue
        ("7004001", {"queue": "Sales"}),
        ("7004001", ["status", "open"]),
        ("chat-1", {"status": "open"}),
    ],
)
def test_the_controls_refuse_what_cxone_could_not_hold(
    client: FlaskClient, contact_id: str, body: object
) -> None:
    response = client.post(f"/sandbox/contacts/{contact_id}", json=body)

    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "InvalidRoutingQueue")
    assert client.get("/sandbox/contacts/7004001").get_json()["status"] == "new"


def test_reset_forgets_contacts(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/contacts/7005001", json={"assignee": 7, "status": "escalated"})
    client.post("/sandbox/reset")
    assert client.get(contact_path("7005001"), headers=auth).get_json()["status"] == "new"


def test_signal_is_202_and_recorded(client: FlaskClient, auth: dict[str, str]) -> None:
    query = {"p1": "reskill", "p2": str(CLAIMS.skill_id)}
    response = client.post(signal_path("7000042"), query_string=query, headers=auth)
    assert response.status_code == 202
    assert response.data == b""
    client.post(signal_path("7000042"), query_string={"p1": "again", "x": "ignored"}, headers=auth)
    stats = client.get("/sandbox/stats").get_json()
    assert [entry["params"] for entry in stats["signals"]["7000042"]] == [
        {"p1": "reskill", "p2": str(CLAIMS.skill_id)},
        {"p1": "again"},
    ]
    assert stats["contacts_signalled"] == 1
    assert stats["contacts_signalled_more_than_once"] == 1
    assert stats["contacts_routed"] == 0


def test_contact_calls_need_a_token(client: FlaskClient) -> None:
    body = {"skillId": SALES_SUPPORT.skill_id}
    response = client.put(routing_path("7000001"), json=body)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert client.post(signal_path("7000001")).status_code == 401
    assert client.get(contact_path("7000001")).status_code == 401


def test_the_contact_command_changes_and_shows_a_contact(live_sandbox: SandboxServer) -> None:
    out = io.StringIO()

    status = contact_command(
        ["7006001", "--assignee", "31", "--skill-id", str(SALES_SUPPORT.skill_id), "--url", live_sandbox.url],
        {},
        out,
    )

    assert status == 0, out.getvalue()
    assert '"status": "open"' in out.getvalue()
    shown = io.StringIO()
    assert contact_command(["7006001"], {"SANDBOX_PUBLIC_URL": live_sandbox.url}, shown) == 0
    assert f'"routingQueueId": "{SALES_SUPPORT.routing_queue_id}"' in shown.getvalue()
    assert '"id": 31' in shown.getvalue()
    refused = io.StringIO()
    assert contact_command(["7006001", "--url", live_sandbox.url, "--status", "closed"], {}, refused) == 0
    assert contact_command(["not-a-contact", "--status", "open", "--url", live_sandbox.url], {}, refused) == 1
    assert "numeric" in refused.getvalue()
