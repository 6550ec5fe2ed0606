"""The Celery task ``route_contact`` translates outcomes: a failed routing ends the task FAILURE.

Run as a worker runs it (a pushed request, the task's own ``run``), on the fake context: the
routing record and the dead letters stay the source of truth, and the task's exception is the
readable line Flower shows. Retries are covered in test_task_retry.py (they need a broker).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import redis_keys
from shared.cxone.errors import Permanent
from shared.routing.records import FAILED, ROUTED
from worker.context import set_worker_context
from worker.task_state import RoutingFailed
from worker.tasks import route_contact


@pytest.fixture
def run_task(ctx) -> Iterator:
    """Run ``route_contact`` on a message as delivery ``task_id`` (not a direct call)."""
    set_worker_context(ctx)

    def run(message: dict, task_id: str = "0f6a7d5e-task"):
        route_contact.push_request(
            id=task_id, retries=0, delivery_info={"redelivered": False}, called_directly=False
        )
        try:
            return route_contact.run(message)
        finally:
            route_contact.pop_request()

    yield run
    set_worker_context(None)


def test_a_failed_routing_ends_the_task_with_its_reason(ctx, cxone, make_job, run_task):
    job = make_job("digital", contact_id="7000001")
    cxone.fail_next(
        "route_digital",
        Permanent("routing_queue: HTTP 404: Contact 7000001 not found", status=404, endpoint="routing_queue"),
    )

    with pytest.raises(RoutingFailed) as raised:
        run_task(job.to_message())

    assert repr(raised.value) == "failed: CXone answered 404 (not found) on routing_queue; dead-lettered"
    assert ctx.store.get(job.routing_id).state == FAILED
    assert ctx.store.dead_letter(job.routing_id)["job"] == job.to_message()


def test_a_routed_contact_ends_the_task_normally(ctx, make_job, run_task):
    job = make_job("digital", contact_id="7000002")

    assert run_task(job.to_message()) is None
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_a_task_revoked_while_no_worker_ran_fails_its_routing_without_calling_cxone(
    ctx, cxone, make_job, run_task
):
    job = make_job("digital", contact_id="7000003")
    ctx.redis.set(redis_keys.task_revoked("0f6a7d5e-task"), "1")  # as RecordingControl writes it

    with pytest.raises(RoutingFailed) as raised:
        run_task(job.to_message())

    assert repr(raised.value) == "failed: revoked by an operator; dead-lettered"
    assert cxone.calls == []
    record = ctx.store.get(job.routing_id)
    assert (record.state, record.failed_reason) == (FAILED, "revoked by an operator")
    assert ctx.store.dead_letter(job.routing_id)["reason"] == "revoked by an operator"
    # Another task of the same routing (a replay has a new task id) is carried out as usual.
    ctx.store.claim_replay(job)
    assert run_task(job.to_message(), task_id="1b2c-replayed") is None
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_a_revoke_that_came_too_late_leaves_a_routed_routing_routed(ctx, cxone, make_job, run_task):
    job = make_job("digital", contact_id="7000004")
    run_task(job.to_message(), task_id="first")
    ctx.redis.set(redis_keys.task_revoked("second"), "1")

    assert run_task(job.to_message(), task_id="second") is None

    assert ctx.store.get(job.routing_id).state == ROUTED
    assert ctx.store.dead_letter(job.routing_id) is None
    assert len(cxone.calls_to("route_digital")) == 1


def test_the_task_acks_a_failed_routing_and_logs_it_as_expected():
    # The dead letter keeps the message for a replay; the broker must not redeliver it, and a
    # failure we recorded is no crash to print a traceback for.
    assert route_contact.acks_late and route_contact.acks_on_failure
    assert RoutingFailed in route_contact.throws
