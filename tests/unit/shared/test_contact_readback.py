"""Reading a digital contact back (GET /dfo/3.0/contacts/{id}) through the one adapter, the
routing queue list that links a skill to its routing queue, and contact ids that would leave the
path of a CXone call."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import fakeredis
import pytest
import requests
import responses

from shared import redis_keys
from shared.cxone import metrics
from shared.cxone.client import CONTACT_PATH, ROUTING_QUEUES_PATH, CXoneClient
from shared.cxone.contact import ContactFields, contact_state, dropped_fields, without_customer_data
from shared.cxone.errors import Permanent, RateLimited, Transient
from shared.cxone.queue_directory import NEGATIVE_TTL_SECONDS, QueueDirectory
from tests.support.cxone import API_URL, FakeCXoneAuth, make_settings

CONTACT_URL = API_URL + CONTACT_PATH.format(contact_id="7000001")
ROUTING_QUEUES_URL = API_URL + ROUTING_QUEUES_PATH
SALES_QUEUE = "6a1c2d3e-0000-4000-8000-000000000001"

#: A contact as NICE's Digital Engagement API describes it, customer and agent included.
CONTACT: dict[str, Any] = {
    "id": "7000001",
    "contactId": "7000001",
    "interactionId": "b5e3c2a1-1111-4222-8333-444455556666",
    "threadId": "c6f4d3b2-2222-4333-8444-555566667777",
    "threadIdOnExternalPlatform": "+15551230000",
    "channelId": "chat_7d4e5f60-3333-4444-8555-666677778888",
    "direction": "inbound",
    "routingQueueId": SALES_QUEUE,
    "routingQueuePriority": 2,
    "status": "open",
    "createdAt": "2026-01-31T09:15:02.123Z",
    "statusUpdatedAt": "2026-01-31T09:16:40.000Z",
    "inboxAssigneeUser": {
        "id": 4242,
        "incontactId": "11ee-agent-4242",
        "emailAddress": "jane.doe@tenant.example",
        "loginUsername": "jane.doe@tenant.example",
        "firstName": "Jane",
        "surname": "Doe",
        "isBotUser": False,
    },
    "endUser": {
        "id": "customer-uuid-1",
        "firstName": "Pat",
        "surname": "Customer",
        "customFields": [{"ident": "iban", "value": "DE89370400440532013000"}],
    },
    "authorEndUserIdentity": {"idOnExternalPlatform": "pat@example.com", "firstName": "Pat"},
    "recipients": [{"idOnExternalPlatform": "pat@example.com", "name": "Pat Customer"}],
    "userFingerprint": {"ip": "203.0.113.7", "location": "Springfield"},
    "abandon": {"type": "expired", "abandonedAt": "2026-01-31T10:00:00.000Z"},
}
CUSTOMER_AND_AGENT_TEXT = (
    "Pat",
    "Customer",
    "DE89370400440532013000",
    "pat@example.com",
    "203.0.113.7",
    "Springfield",
    "+15551230000",
    "Jane",
    "jane.doe@tenant.example",
)


@pytest.fixture
def client(cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis) -> CXoneClient:
    return CXoneClient(make_settings(), fake_redis)


def duration_count(endpoint: str, status: str) -> float:
    for metric in metrics.CXONE_REQUEST_DURATION.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"endpoint": endpoint, "status": status}:
                return sample.value
    return 0.0


# ------------------------------------------------------------------------------ the adapter


def test_a_contact_reads_back_as_its_state(http: responses.RequestsMock, client: CXoneClient) -> None:
    http.add(responses.GET, CONTACT_URL, json=CONTACT)
    before = duration_count("contact", "200")

    state = client.get_contact("7000001")

    assert (state.contact_id, state.exists, state.status) == ("7000001", True, "open")
    assert state.routing_queue_id == SALES_QUEUE
    assert state.assignee == "4242"  # inboxAssigneeUser.id
    assert state.skill_id is None  # not in NICE's schema
    assert state.raw == CONTACT
    assert not state.waiting_in_queue and not state.finished
    (request,) = [call.request for call in http.calls if call.request.url == CONTACT_URL]
    assert request.method == "GET" and request.headers["Authorization"].startswith("Bearer ")
    assert duration_count("contact", "200") == before + 1


def test_a_404_is_a_contact_that_does_not_exist(http: responses.RequestsMock, client: CXoneClient) -> None:
    error = {"errors": [{"message": "Contact not found", "errorCode": "ContactNotFound"}], "uid": "u"}
    http.add(responses.GET, CONTACT_URL, json=error, status=404)

    state = client.get_contact("7000001")

    assert (state.exists, state.status, state.routing_queue_id, state.assignee) == (False, None, None, None)
    assert not state.waiting_in_queue and not state.finished


@pytest.mark.parametrize(
    ("status", "error"), [(403, Permanent), (500, Transient), (503, Transient), (429, Transient)]
)
def test_other_failures_are_errors_never_a_guess(
    http: responses.RequestsMock, client: CXoneClient, status: int, error: type
) -> None:
    http.add(responses.GET, CONTACT_URL, json={"errors": [{"message": "no"}]}, status=status)

    with pytest.raises(error):
        client.get_contact("7000001")


def test_the_read_takes_a_slot_of_the_shared_rate_limiter(
    http: responses.RequestsMock, cxone_auth: FakeCXoneAuth, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, CONTACT_URL, json=CONTACT)
    client = CXoneClient(make_settings(cxone_rate_limit_per_minute=1), fake_redis)
    client.get_contact("7000001")

    with pytest.raises(RateLimited):
        client.get_contact("7000001")
    assert len([c for c in http.calls if c.request.url == CONTACT_URL]) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "NEW", "routingQueueId": None, "inboxAssigneeUser": None}, ("new", None, None)),
        ({"status": "open", "inboxAssigneeUser": {"incontactId": "11ee-a"}}, ("open", None, "11ee-a")),
        ({"status": "pending", "inboxAssigneeUser": 4242}, ("pending", None, "4242")),
        ({"status": "closed", "routingQueueId": "q-1"}, ("closed", "q-1", None)),
        ({"status": ["odd"], "routingQueueId": {"id": "q"}, "inboxAssigneeUser": True}, (None, None, None)),
        ({}, (None, None, None)),
    ],
)
def test_the_adapter_reads_what_cxone_may_send(body: dict, expected: tuple) -> None:
    state = contact_state("7000001", body, ContactFields())

    assert (state.status, state.routing_queue_id, state.assignee) == expected


def test_field_names_come_from_the_settings_and_may_be_dotted_paths() -> None:
    fields = ContactFields.from_settings(
        make_settings(
            cxone_contact_queue_field="routingQueue.id",
            cxone_contact_status_field="state",
            cxone_contact_assignee_field="inboxAssignee",
        )
    )
    body = {"routingQueue": {"id": SALES_QUEUE}, "state": "escalated", "inboxAssignee": 77, "status": "new"}

    state = contact_state("7000001", body, fields)

    assert (state.status, state.routing_queue_id, state.assignee) == ("escalated", SALES_QUEUE, "77")


def test_a_new_unassigned_contact_is_waiting_in_its_queue() -> None:
    state = contact_state("7000001", {"status": "new", "routingQueueId": SALES_QUEUE}, ContactFields())
    assert state.waiting_in_queue
    closed = contact_state("7000001", {"status": "trashed"}, ContactFields())
    assert closed.finished and not closed.waiting_in_queue


def test_showing_a_contact_keeps_ids_status_queue_and_times_but_no_customer_or_agent_data() -> None:
    shown = without_customer_data(CONTACT)

    text = repr(shown)
    for value in CUSTOMER_AND_AGENT_TEXT:
        assert value not in text, value
    assert shown["id"] == shown["contactId"] == "7000001"
    assert (shown["status"], shown["routingQueueId"], shown["routingQueuePriority"]) == (
        "open",
        SALES_QUEUE,
        2,
    )
    assert (shown["createdAt"], shown["statusUpdatedAt"]) == (
        CONTACT["createdAt"],
        CONTACT["statusUpdatedAt"],
    )
    assert shown["inboxAssigneeUser"] == {"id": 4242, "incontactId": "11ee-agent-4242", "isBotUser": False}
    assert shown["abandon"] == {"abandonedAt": "2026-01-31T10:00:00.000Z"}
    dropped = dropped_fields(CONTACT)
    assert {"endUser.firstName", "recipients", "userFingerprint.ip", "inboxAssigneeUser.emailAddress"} <= set(
        dropped
    )
    assert not any(value in " ".join(dropped) for value in CUSTOMER_AND_AGENT_TEXT)


# -------------------------------------------------------------------- skill -> routing queue


def routing_queues(*queues: dict[str, Any], hits: int | None = None) -> dict[str, Any]:
    return {"hits": len(queues) if hits is None else hits, "data": list(queues)}


def queue(queue_id: str, skill_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": queue_id,
        "name": f"Queue {skill_id}",
        "skillId": skill_id,
        "isSubqueue": False,
        "isDeleted": False,
        **extra,
    }


def test_a_skill_resolves_to_its_routing_queue_once_for_every_worker(
    http: responses.RequestsMock, client: CXoneClient, redis_server: fakeredis.FakeServer
) -> None:
    http.add(
        responses.GET,
        ROUTING_QUEUES_URL,
        json=routing_queues(
            queue("q-deleted", 1200001, isDeleted=True), queue(SALES_QUEUE, 1200001), queue("q-2", 1200002)
        ),
    )
    one = QueueDirectory(client, fakeredis.FakeRedis(server=redis_server), ttl_seconds=900)
    other = QueueDirectory(client, fakeredis.FakeRedis(server=redis_server), ttl_seconds=900)

    assert one.routing_queue_id(1200001) == SALES_QUEUE
    assert other.routing_queue_id(1200001) == SALES_QUEUE
    found = other.routing_queue(1200001)
    assert (found.name, found.problem) == ("Queue 1200001", None)

    listings = [
        str(c.request.url) for c in http.calls if str(c.request.url).split("?")[0] == ROUTING_QUEUES_URL
    ]
    assert len(listings) == 1
    assert urlsplit(listings[0]).query == "size=500"  # NICE's SDK: the default page holds 50
    key = redis_keys.cxone_routing_queue_of_skill(API_URL, 1200001)
    assert 890 < fakeredis.FakeRedis(server=redis_server).ttl(key) <= 900


def test_a_skill_without_a_routing_queue_is_remembered_briefly(
    http: responses.RequestsMock, client: CXoneClient, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, ROUTING_QUEUES_URL, json=routing_queues(queue("q-2", 1200002), hits=700))
    directory = QueueDirectory(client, fake_redis, ttl_seconds=900)

    found = directory.routing_queue(1200007)

    assert found.routing_queue_id is None
    assert (
        found.problem
        == "missing: no routing queue has skill 1200007 (CXone has 700; the first 1 were searched)"
    )
    key = redis_keys.cxone_routing_queue_of_skill(API_URL, 1200007)
    assert 0 < fake_redis.ttl(key) <= NEGATIVE_TTL_SECONDS


def test_two_routing_queues_of_one_skill_are_ambiguous(
    http: responses.RequestsMock, client: CXoneClient, fake_redis: fakeredis.FakeRedis
) -> None:
    http.add(responses.GET, ROUTING_QUEUES_URL, json=routing_queues(queue("q-a", 5), queue("q-b", 5)))

    found = QueueDirectory(client, fake_redis, ttl_seconds=900).routing_queue(5)

    assert (
        found.routing_queue_id is None and found.problem == "ambiguous: routing queues q-a, q-b have skill 5"
    )


# ------------------------------------------------------------------------- hostile contact ids

#: Ids that would leave their path segment if pasted into a URL, or that are no contact at all.
HOSTILE_IDS = [
    "",
    ".",
    "..",
    "...",
    "%2e",
    "%2E%2E",
    "../admin",
    "..%2F..",
    "a/b",
    "/",
    "?",
    "#",
    "x?y=1",
    "x#y",
    "٣",
    " 1 ",
    "\t",
    "1\n2",
    "\\..\\",
    ";",
    "9" * 300,
]

#: Every call the client makes with a contact id in its path: how to make it, what its path is.
CONTACT_CALLS: dict[str, tuple[str, Callable[[CXoneClient, str], Any], str, str]] = {
    "routing-queue PUT": (
        "PUT",
        lambda c, i: c.route_digital(i, 1200001),
        "/dfo/3.0/contacts/",
        "/routing-queue",
    ),
    "signal": (
        "POST",
        lambda c, i: c.signal(i, ["1200001"]),
        "/inContactAPI/services/v30.0/interactions/",
        "/signal",
    ),
    "contact read": ("GET", lambda c, i: c.get_contact(i), "/dfo/3.0/contacts/", ""),
}


@pytest.mark.parametrize("call", CONTACT_CALLS)
@pytest.mark.parametrize("contact_id", HOSTILE_IDS)
def test_no_contact_id_makes_a_cxone_call_leave_its_path(
    http: responses.RequestsMock, client: CXoneClient, call: str, contact_id: str
) -> None:
    # The ingress and the worker refuse all of these (CONTACT_ID_PATTERN); this is the client's own
    # guard: each id either stays inside one path segment or is refused before anything is sent.
    method, make, prefix, suffix = CONTACT_CALLS[call]
    http.add(method, re.compile(re.escape(API_URL) + "/.*"), json={}, status=200)
    before = len(http.calls)

    try:
        make(client, contact_id)
    except Permanent:
        assert contact_id.strip(".") == "", "only dot segments (and nothing) are refused"
        assert [c for c in http.calls[before:] if str(c.request.url).startswith(API_URL)] == []
        return

    sent = [str(c.request.url) for c in http.calls[before:] if str(c.request.url).startswith(API_URL)]
    assert len(sent) == 1
    path = urlsplit(sent[0]).path
    assert path.startswith(prefix) and path.endswith(suffix), path
    segment = path[len(prefix) : len(path) - len(suffix)]
    assert "/" not in segment and segment not in (".", "..")
    assert unquote(segment) == contact_id  # the same id, not a different resource
    assert urlsplit(sent[0]).fragment == ""
    if call != "signal":
        assert urlsplit(sent[0]).query == ""


def test_the_hostile_url_test_sees_what_requests_really_sends(http: responses.RequestsMock) -> None:
    # The reason the client refuses dot segments: requests (urllib3) resolves them before sending.
    http.add(responses.PUT, re.compile(".*"), status=200)
    requests.put(API_URL + "/dfo/3.0/contacts/../routing-queue", timeout=1)

    assert urlsplit(http.calls[-1].request.url).path == "/dfo/3.0/routing-queue"
