"""ops stuck / dead-letters: superseded routings have ended (never stuck, never replayable), and a
dead letter whose contact has a newer routing is flagged before anyone replays it."""

from __future__ import annotations

import argparse
import io
import time

import fakeredis
import pytest

from ops import routings
from shared.routing.backlog import Backlog
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.records import RoutingStatusStore
from shared.settings import Settings


@pytest.fixture
def store(monkeypatch) -> RoutingStatusStore:
    fake = RoutingStatusStore(fakeredis.FakeRedis(server=fakeredis.FakeServer()), 3600)
    monkeypatch.setattr(routings, "_store", lambda settings: fake)
    return fake


def job(seq: int, intent: str = "billing_dispute", received_at: float | None = None) -> RoutingJob:
    return RoutingJob(
        routing_id=new_routing_id(),
        contact_id="7000201",
        intent=intent,
        mode="digital",
        queue_name="Billing Disputes",
        received_at=time.time() - 3600 if received_at is None else received_at,
        contact_seq=seq,
    )


def run(command, **args) -> tuple[int, str]:
    out = io.StringIO()
    status = command(argparse.Namespace(**args), Settings(routing_status_ttl_seconds=3600), out)
    return status, out.getvalue()


def test_a_superseded_routing_is_not_stuck(store):
    older, newer = job(1), job(2, "sales_inquiry")
    store.create(older)
    store.create(newer)
    store.mark_superseded(older.routing_id, newer.routing_id)

    status, text = run(routings.stuck_command, minutes=5, json=False)

    assert newer.routing_id in text  # still open after an hour: stuck
    assert older.routing_id not in text
    assert status == 1


def test_a_dead_letter_whose_contact_has_a_newer_routing_is_flagged(store):
    failed, newer = job(1), job(2, "sales_inquiry")
    store.create(failed)
    store.mark_failed(failed.routing_id, "CXone answered 404", failed.to_message())
    alone = RoutingJob(**{**job(1).to_message(), "contact_id": "7000202"})
    store.create(alone)
    store.mark_failed(alone.routing_id, "CXone answered 404", alone.to_message())

    _, before = run(routings.list_command)
    store.create(newer)  # the customer asked for sales since
    _, after = run(routings.list_command)

    assert "newer routing" not in before
    (flagged,) = [line for line in after.splitlines() if failed.routing_id in line]
    assert f"newer routing {newer.routing_id} (sales_inquiry)" in flagged
    (unflagged,) = [line for line in after.splitlines() if alone.routing_id in line]
    assert "newer routing" not in unflagged


def test_routings_waiting_in_the_backlog_are_listed_and_counted(store):
    waiting = job(1)
    store.create(waiting)
    Backlog(store.redis, 3600).park(
        waiting, "waiting for a CXone call slot (CXONE_RATE_LIMIT_PER_MINUTE)", "t"
    )

    status, text = run(routings.stuck_command, minutes=5, json=False)

    line = next(line for line in text.splitlines() if waiting.routing_id in line)
    assert " waiting " in line and " slot " in line and "CXONE_RATE_LIMIT_PER_MINUTE" in line
    assert "1 routing(s) waiting in the backlog for a CXone call slot, the oldest accepted 60m ago" in text
    assert status == 1
