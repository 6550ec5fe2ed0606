"""Which contact a webhook moves: Cognigy's renderings of a missing value are absent, only CXone
contact ids are accepted (400 naming the field otherwise), and the answer says where the id came from."""

from __future__ import annotations

import pytest

from ingress import create_app
from shared.routing.job import RoutingJob
from shared.settings import Settings
from tests.support.ingress import API_KEYS, WEBHOOK_URL, load_payload

ABSENT = ["undefined", "null", "", "  ", " undefined ", None]
CONTACT_FIELDS = ["cxoneContactId", "contactId", "data.contactId", "data.spawnedContactId"]
#: Ids that must never be moved: not CXone's, and several of them would leave a URL path.
HOSTILE_IDS = [
    ".",
    "..",
    "%2e%2e",
    "../admin",
    "a/b",
    "1?x=1",
    "1#frag",
    "٣٣",  # Arabic-Indic digits: \\d in Python, never a CXone id
    "１２３",  # fullwidth digits
    "1 2",
    "12345678901234567890123",  # 23 digits
    "-5",
    "1e3",
    "0x1F",
    "vg-1c2d3e4f",
]


def chat(**ids: object) -> dict:
    """A chat webhook with only the given ids (``data_contactId=…`` for ``data.contactId``)."""
    body: dict = {"channel": "webchat3", "intent": "sales_inquiry", "intentScore": 0.9}
    for name, value in ids.items():
        if name.startswith("data_"):
            body.setdefault("data", {})[name[5:]] = value
        else:
            body[name] = value
    return body


def voice(**ids: object) -> dict:
    """The same as a voice (voiceGateway2) webhook routed to Claims."""
    return {**chat(**ids), "channel": "voiceGateway2", "intent": "claims"}


def set_field(body: dict, path: str, value: object) -> dict:
    """``body`` with ``value`` at a dotted ``path``."""
    *parents, name = path.split(".")
    level = body
    for parent in parents:
        level = level.setdefault(parent, {})
    level[name] = value
    return body


# ------------------------------------------------------------------------ absent markers


def test_the_readme_body_with_an_undefined_spawned_id_moves_the_data_contact(post_json, sent):
    # The README's body renders "{{input.data.spawnedContactId}}" as "undefined" when Cognigy has
    # no spawned contact: a voice routing must move data.contactId, not a contact named "undefined".
    body = load_payload("cognigy-input-voice")
    body["data"]["spawnedContactId"] = "undefined"

    response = post_json(body)

    assert response.status_code == 202, response.get_json()
    assert (response.get_json()["contactId"], response.get_json()["mode"]) == ("700111222", "voice")
    assert response.get_json()["contactSource"] == "data.contactId"
    assert RoutingJob.from_message(sent.messages[0]).contact_id == "700111222"


@pytest.mark.parametrize("marker", ABSENT)
@pytest.mark.parametrize(
    ("absent_field", "falls_to", "expected"),
    [
        ("cxoneContactId", "contactId", "7000002"),
        ("contactId", "data.contactId", "7000003"),
        ("data.contactId", "data.spawnedContactId", "7000004"),
        ("data.spawnedContactId", "sessionId", "7000005"),
    ],
)
def test_an_absent_marker_falls_through_to_the_next_field(
    post_json, marker, absent_field, falls_to, expected
):
    ids = {
        "cxoneContactId": "7000001",
        "contactId": "7000002",
        "data.contactId": "7000003",
        "data.spawnedContactId": "7000004",
        "sessionId": "7000005",
    }
    order = [*CONTACT_FIELDS, "sessionId"]
    body = chat()
    for path in order[order.index(absent_field) + 1 :]:
        set_field(body, path, ids[path])
    set_field(body, absent_field, marker)

    response = post_json(body)

    assert response.status_code == 202, response.get_json()
    assert (response.get_json()["contactId"], response.get_json()["contactSource"]) == (expected, falls_to)


@pytest.mark.parametrize("marker", ABSENT)
def test_absent_markers_in_every_id_field_are_no_contact(post_json, sent, marker):
    body = chat(sessionId=marker, inputId=marker, userId=marker, cxoneContactId=marker, contactId=marker)
    body["data"] = {"contactId": marker, "spawnedContactId": marker}

    response = post_json(body)

    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["sessionId"]
    assert "undefined" in response.get_json()["fields"]["sessionId"][0]
    assert sent.messages == []


def test_an_undefined_input_id_is_no_dedupe_key(post_json, sent):
    first = post_json(chat(data_contactId="7000010", inputId="undefined"))
    second = post_json(chat(data_contactId="7000011", inputId="undefined"))

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.get_json()["routingId"] != second.get_json()["routingId"]
    assert len(sent.messages) == 2
    assert RoutingJob.from_message(sent.messages[0]).input_id is None


# ---------------------------------------------------------------------------- the pattern


@pytest.mark.parametrize("field", CONTACT_FIELDS)
@pytest.mark.parametrize("contact_id", HOSTILE_IDS)
def test_a_contact_field_that_is_not_a_cxone_contact_id_is_400_naming_it(
    post_json, sent, fake_redis, field, contact_id
):
    body = set_field(chat(sessionId="7000001"), field, contact_id)

    response = post_json(body)

    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["error"] == "invalid request"
    assert list(answer["fields"]) == [field]
    (message,) = answer["fields"][field]
    assert message.startswith("Not a CXone contact id: ")
    assert sent.messages == []
    assert fake_redis.keys("router:*") == []


def test_every_wrong_contact_field_is_named_at_once(post_json):
    response = post_json(chat(contactId="abc", data_contactId="..", data_spawnedContactId="7000001"))

    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"contactId", "data.contactId"}


def test_a_non_numeric_session_id_alone_is_400_saying_where_the_contact_id_goes(post_json, sent):
    response = post_json(chat(sessionId="vg-1c2d3e4f"))

    assert response.status_code == 400
    (message,) = response.get_json()["fields"]["sessionId"]
    assert "'vg-1c2d3e4f'" in message
    for field in CONTACT_FIELDS:
        assert field in message
    assert sent.messages == []


def test_a_numeric_session_id_alone_still_names_the_contact(post_json, sent):
    response = post_json(chat(sessionId=4815162342))

    assert response.status_code == 202
    assert (response.get_json()["contactId"], response.get_json()["contactSource"]) == (
        "4815162342",
        "sessionId",
    )


def test_a_session_id_is_not_checked_when_a_contact_field_names_the_contact(post_json):
    response = post_json(chat(sessionId="9a8b7c6d-0000-4000-8000-00000000abcd", data_contactId="728471935"))

    assert response.status_code == 202
    assert response.get_json()["contactSource"] == "data.contactId"


def test_integers_and_padded_ids_are_contact_ids(post_json):
    assert post_json(chat(contactId=7000001)).get_json()["contactId"] == "7000001"
    assert post_json(chat(contactId=" 7000002 ")).get_json()["contactId"] == "7000002"


@pytest.mark.parametrize(
    ("body", "source"),
    [
        (voice(data_contactId="7000001", data_spawnedContactId="7000002"), "data.spawnedContactId"),
        (chat(data_contactId="7000001", data_spawnedContactId="7000002"), "data.contactId"),
        (chat(data_spawnedContactId="7000002"), "data.spawnedContactId"),
        (voice(data_contactId="7000001", data_spawnedContactId="null"), "data.contactId"),
        (voice(contactId="7000003", data_spawnedContactId="7000002"), "contactId"),
    ],
)
def test_contact_source_names_the_field_for_each_mode(post_json, body, source):
    response = post_json(body)

    assert response.status_code == 202
    assert response.get_json()["contactSource"] == source


def test_the_pattern_is_a_setting(routing_table, fake_redis, sent):
    settings = Settings(webhook_api_keys=API_KEYS, contact_id_pattern=r"[0-9]{7}")
    client = create_app(
        settings, routing_table=routing_table, redis_client=fake_redis, send_task=sent
    ).test_client()
    headers = {"X-API-Key": API_KEYS[0]}

    assert client.post(WEBHOOK_URL, json=chat(contactId="7000001"), headers=headers).status_code == 202
    refused = client.post(WEBHOOK_URL, json=chat(contactId="70000010"), headers=headers)
    assert refused.status_code == 400
    assert "[0-9]{7}" in refused.get_json()["fields"]["contactId"][0]
