"""A digital contact is moved at most once per routing: the PUT marker, and the read-back that
settles a routing whose earlier attempt's outcome is unknown (worker.routing, shared.routing.read_back)."""

from __future__ import annotations

import json

import pytest
import redis

from shared import redis_keys
from shared.cxone.errors import Permanent, RateLimited, Throttled, Transient
from shared.routing.backlog import Parked
from shared.routing.records import FAILED, RETRYING, ROUTED, WAITING
from tests.support.cxone import SKILLS, routing_queue_of
from worker.routing import Failed, RetryLater, process

BILLING = SKILLS["Billing Disputes"]
SALES = SKILLS["Sales Support"]
CONTACT = "728471935"  # make_job's digital contact


class WorkerKilled(BaseException):
    """Stands in for SIGKILL/OOM: nothing in the worker catches it."""


def marker_set(ctx, job) -> bool:
    return bool(ctx.redis.exists(redis_keys.routing_put_started(job.routing_id)))


def puts(cxone) -> list[tuple]:
    return cxone.calls_to("route_digital")


def reads(cxone) -> list[tuple]:
    return cxone.calls_to("get_contact")


def timeout() -> Transient:
    return Transient("routing_queue: no answer within 10s", endpoint="routing_queue")


# ------------------------------------------------------------------------------- the marker


def test_the_put_is_marked_before_it_leaves_and_the_mark_goes_with_the_routed_record(ctx, cxone, make_job):
    job = make_job("digital")
    seen_in_the_call = []
    real_route = cxone.route_digital

    def route(contact_id, skill_id):
        seen_in_the_call.append(marker_set(ctx, job))
        real_route(contact_id, skill_id)

    cxone.route_digital = route

    assert process(job, ctx) is None

    assert seen_in_the_call == [True]
    assert not marker_set(ctx, job)  # settled routed: removed in the same transaction
    assert reads(cxone) == []  # a first attempt reads nothing back
    public = ctx.store.get(job.routing_id).to_public()
    assert "confirmedBy" not in public and "contactReadBack" not in public


def test_a_voice_routing_sets_no_put_marker(ctx, cxone, make_job):
    job = make_job("voice")

    assert process(job, ctx) is None

    assert not marker_set(ctx, job)
    assert reads(cxone) == []


# ------------------------------------------------------------------- the answer was lost


def test_a_worker_killed_after_cxone_moved_the_contact_settles_by_reading_it_back(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.answer_lost_next("route_digital", WorkerKilled())

    with pytest.raises(WorkerKilled):
        process(job, ctx)  # CXone moved the contact; the worker died waiting for the answer
    assert ctx.store.get(job.routing_id).state == "queued" and marker_set(ctx, job)

    assert process(job, ctx, redelivered=True) is None

    assert puts(cxone) == [(CONTACT, BILLING)]  # exactly one PUT
    assert reads(cxone) == [(CONTACT,)]
    record = ctx.store.get(job.routing_id)
    assert (record.state, record.skill_id) == (ROUTED, BILLING)
    public = record.to_public()
    assert public["confirmedBy"] == "contact read-back"
    assert public["contactReadBack"] == {
        "status": "new",
        "routingQueueId": routing_queue_of(BILLING),
        "assignee": None,
        "conclusion": f"already in the routing queue of skill {BILLING}",
    }
    assert not marker_set(ctx, job)
    assert process(job, ctx, redelivered=True) is None  # a later copy: the state check ends it
    assert len(reads(cxone)) == 1


def test_redis_lost_before_the_routing_was_recorded_settles_by_reading_the_contact_back(
    ctx, cxone, make_job, monkeypatch
):
    job = make_job("digital")
    real_mark_routed = ctx.store.mark_routed
    lost = []

    def redis_gone_once(*args, **kwargs):
        if not lost:
            lost.append(True)
            raise redis.ConnectionError("Connection refused")
        return real_mark_routed(*args, **kwargs)

    monkeypatch.setattr(ctx.store, "mark_routed", redis_gone_once)

    with pytest.raises(redis.ConnectionError):  # the task turns it into a retry
        process(job, ctx)
    assert process(job, ctx, attempt=1) is None

    assert puts(cxone) == [(CONTACT, BILLING)]
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED and record.confirmed_by == "contact read-back"


def test_a_contact_an_agent_took_meanwhile_is_not_taken_from_them(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.answer_lost_next("route_digital", timeout())
    assert isinstance(process(job, ctx), RetryLater)
    # Before the retry runs, an agent accepts the chat and moves it to another queue.
    cxone.contact(CONTACT).update(
        status="open",
        routingQueueId=routing_queue_of(SALES),
        inboxAssigneeUser={"id": 4242, "isBotUser": False},
    )

    assert process(job, ctx, attempt=1) is None

    assert puts(cxone) == [(CONTACT, BILLING)]
    assert cxone.contact(CONTACT)["routingQueueId"] == routing_queue_of(SALES)  # left where the agent put it
    read = ctx.store.get(job.routing_id).to_public()["contactReadBack"]
    assert read["assignee"] == "4242" and read["conclusion"] == "an agent has it: assigned to agent 4242"


# --------------------------------------------------------- which failures keep the marker


@pytest.mark.parametrize(
    "refused",
    [
        Transient("routing_queue: HTTP 503", status=503, endpoint="routing_queue", not_delivered=True),
        Throttled("routing_queue: HTTP 429", status=429, endpoint="routing_queue"),
        Transient("routing_queue: connection failed", endpoint="routing_queue", not_delivered=True),
        Transient(
            "routing_queue: HTTP 401 (token rejected twice)",
            status=401,
            endpoint="routing_queue",
            not_delivered=True,
        ),
        RateLimited(2.0),
        Transient("CXone token response has no access_token", endpoint="token"),
    ],
    ids=["503", "429", "connection refused", "401", "our limiter", "no token"],
)
def test_a_put_cxone_certainly_did_not_act_on_clears_the_marker(ctx, cxone, make_job, refused):
    job = make_job("digital")
    cxone.fail_next("route_digital", refused)

    assert isinstance(process(job, ctx), RetryLater | Parked)
    assert not marker_set(ctx, job)
    assert process(job, ctx, attempt=1) is None

    assert reads(cxone) == []  # nothing to read back: the second PUT is the first that acted
    assert puts(cxone) == [(CONTACT, BILLING)] * 2
    assert ctx.store.get(job.routing_id).confirmed_by is None


@pytest.mark.parametrize(
    "unknown",
    [
        Transient("routing_queue: no answer within 10s", endpoint="routing_queue"),
        Transient("routing_queue: HTTP 500", status=500, endpoint="routing_queue"),
        Transient("routing_queue: HTTP 502", status=502, endpoint="routing_queue"),
        Transient("routing_queue: HTTP 504", status=504, endpoint="routing_queue"),
        Transient("routing_queue: connection failed", endpoint="routing_queue"),  # reset mid-answer
    ],
    ids=["read timeout", "500", "502", "504", "connection reset"],
)
def test_a_put_whose_outcome_is_unknown_keeps_the_marker_and_the_next_attempt_reads_back(
    ctx, cxone, make_job, unknown
):
    job = make_job("digital")
    cxone.fail_next("route_digital", unknown)  # this time CXone did not act on it

    assert isinstance(process(job, ctx), RetryLater)
    assert marker_set(ctx, job)
    assert process(job, ctx, attempt=1) is None

    assert reads(cxone) == [(CONTACT,)]
    # Read back in no queue: the first PUT did not move it, so the second one is sent.
    assert puts(cxone) == [(CONTACT, BILLING)] * 2
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED and record.confirmed_by is None


def test_a_refused_put_fails_and_clears_the_marker(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next(
        "route_digital", Permanent("routing_queue: HTTP 404", status=404, endpoint="routing_queue")
    )

    assert isinstance(process(job, ctx), Failed)

    assert not marker_set(ctx, job)


# ---------------------------------------------------------------- what the read-back finds


def lost_first_answer(ctx, cxone, make_job, **contact):
    """A routing whose first PUT reached CXone and lost its answer; then the contact is changed."""
    job = make_job("digital")
    cxone.answer_lost_next("route_digital", timeout())
    assert isinstance(process(job, ctx), RetryLater)
    cxone.contact(CONTACT).update(contact)
    return job


@pytest.mark.parametrize("status", ["pending", "escalated"])
def test_a_contact_past_the_queue_is_routed_without_a_second_put(ctx, cxone, make_job, status):
    job = lost_first_answer(ctx, cxone, make_job, status=status, routingQueueId=routing_queue_of(SALES))

    assert process(job, ctx, attempt=1) is None

    assert len(puts(cxone)) == 1
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED
    assert (
        record.read_back["conclusion"]
        == f"past the queue: the contact is {status} (an agent has worked on it)"
    )


@pytest.mark.parametrize("status", ["resolved", "closed", "trashed"])
def test_a_contact_whose_case_is_over_fails_without_a_second_put(ctx, cxone, make_job, status):
    job = lost_first_answer(ctx, cxone, make_job, status=status)

    outcome = process(job, ctx, attempt=1)

    assert isinstance(outcome, Failed)
    assert len(puts(cxone)) == 1
    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert record.failed_reason == (
        f"the contact is {status} in CXone (read back after an earlier attempt whose outcome is "
        "unknown); the contact was not moved again"
    )
    public = record.to_public()
    assert public["confirmedBy"] == "contact read-back" and public["contactReadBack"]["status"] == status
    letter = json.loads(ctx.redis.hget(redis_keys.DEAD_LETTERS, job.routing_id))
    assert letter["job"] == job.to_message()


def test_a_contact_cxone_no_longer_knows_fails_without_a_second_put(ctx, cxone, make_job):
    job = lost_first_answer(ctx, cxone, make_job)
    cxone.unknown_contacts.add(CONTACT)

    assert isinstance(process(job, ctx, attempt=1), Failed)

    assert len(puts(cxone)) == 1
    record = ctx.store.get(job.routing_id)
    assert "404 when read back" in record.failed_reason
    assert record.read_back == {
        "found": False,
        "conclusion": "CXone no longer knows the contact (404 when read back)",
    }


@pytest.mark.parametrize(
    "contact",
    [
        {"routingQueueId": None},
        {"status": "open", "routingQueueId": routing_queue_of(SALES)},
        {"routingQueueId": None, "inboxAssigneeUser": {"id": 9001, "isBotUser": True}},
    ],
    ids=["in no queue", "in another queue", "held by a bot user"],
)
def test_a_contact_still_elsewhere_is_moved(ctx, cxone, make_job, contact):
    # e.g. the first PUT timed out before CXone applied it, and someone put the contact back
    job = lost_first_answer(ctx, cxone, make_job, **contact)

    assert process(job, ctx, attempt=1) is None

    assert puts(cxone) == [(CONTACT, BILLING)] * 2
    assert len(reads(cxone)) == 1
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED and record.confirmed_by is None


@pytest.mark.parametrize(
    "failure",
    [
        Transient("contact: HTTP 503", status=503, endpoint="contact", not_delivered=True),
        Throttled("contact: HTTP 429", status=429, endpoint="contact"),
        Permanent("contact: HTTP 403: role lacks permission", status=403, endpoint="contact"),
        RateLimited(1.0),
    ],
    ids=["503", "429", "403", "our limiter"],
)
def test_a_read_that_fails_is_retried_and_never_guessed(ctx, cxone, make_job, failure):
    job = lost_first_answer(ctx, cxone, make_job)
    cxone.fail_next("get_contact", failure)

    outcome = process(job, ctx, attempt=1)

    assert isinstance(outcome, RetryLater | Parked)  # our limiter: waits in the backlog
    assert len(puts(cxone)) == 1
    assert ctx.store.get(job.routing_id).state in (RETRYING, WAITING)
    assert marker_set(ctx, job)  # still unknown: the next attempt reads again
    assert process(job, ctx, attempt=2) is None
    assert len(puts(cxone)) == 1 and len(reads(cxone)) == 2
    assert ctx.store.get(job.routing_id).confirmed_by == "contact read-back"


def test_a_routing_queue_list_refused_is_retried_too(ctx, cxone, make_job):
    job = lost_first_answer(ctx, cxone, make_job, status="open", routingQueueId=routing_queue_of(SALES))
    cxone.fail_next(
        "list_routing_queues", Permanent("routing_queues: HTTP 403", status=403, endpoint="routing_queues")
    )

    outcome = process(job, ctx, attempt=1)

    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "CXone answered 403 (forbidden) on routing_queues"
    assert len(puts(cxone)) == 1
    assert process(job, ctx, attempt=2) is None
    assert puts(cxone) == [(CONTACT, BILLING)] * 2  # in another queue: moved


def test_a_status_the_router_does_not_know_is_retried_naming_the_setting(ctx, cxone, make_job):
    job = lost_first_answer(ctx, cxone, make_job, status=None)

    outcome = process(job, ctx, attempt=1)

    assert isinstance(outcome, RetryLater)
    assert "CXONE_CONTACT_STATUS_FIELD" in outcome.reason
    assert len(puts(cxone)) == 1


def test_the_queue_is_compared_through_the_routing_queue_list_once(ctx, cxone, make_job):
    first = lost_first_answer(ctx, cxone, make_job)
    second = make_job("digital", contact_id="7000021")
    cxone.answer_lost_next("route_digital", timeout())
    assert isinstance(process(second, ctx), RetryLater)

    assert process(first, ctx, attempt=1) is None
    assert process(second, ctx, attempt=1) is None

    assert len(puts(cxone)) == 2
    assert len(cxone.calls_to("list_routing_queues")) == 1  # cached in Redis for every worker
    assert {ctx.store.get(j.routing_id).state for j in (first, second)} == {ROUTED}


def test_a_replayed_routing_whose_outcome_was_unknown_reads_the_contact_back(ctx, cxone, make_job):
    job = lost_first_answer(ctx, cxone, make_job)
    ctx.store.mark_failed(job.routing_id, "gave up after the retry window", job.to_message())
    assert marker_set(ctx, job)  # a failed routing keeps it
    assert ctx.store.claim_replay(job)

    assert process(job, ctx) is None

    assert len(puts(cxone)) == 1 and len(reads(cxone)) == 1
    assert ctx.store.get(job.routing_id).confirmed_by == "contact read-back"
