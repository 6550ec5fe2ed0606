"""An operator's revoke (Flower's "Revoke") fails the routing: recorded, dead-lettered, final.

Two halves: the Celery app's control writes every revoke it broadcasts to Redis (for workers that
were not running to hear it), and a worker that discards a revoked routing task fails its routing.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from celery import Celery

from shared import redis_keys
from shared.routing.records import FAILED, ROUTED
from worker import metrics
from worker.context import set_worker_context
from worker.orphan_sweeper import OrphanSweeper
from worker.revocations import REVOKED_REASON, RecordingControl, on_task_revoked
from worker.tasks import route_contact


@pytest.fixture
def installed(ctx):
    set_worker_context(ctx)
    yield ctx
    set_worker_context(None)


class FakeEvents:
    """Stands in for ``app.events``: records what the dispatcher sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    @contextmanager
    def default_dispatcher(self, hostname=None):
        events = self

        class Dispatcher:
            def send(self, type_, **fields):
                events.sent.append((type_, {"hostname": hostname, **fields}))

        yield Dispatcher()


class FakeTask:
    """The ``sender`` of ``task_revoked``: the task (its name and app)."""

    def __init__(self, name: str = route_contact.name) -> None:
        self.name = name
        self.app = type("App", (), {"events": FakeEvents()})()


class FakeRequest:
    """The ``request`` of ``task_revoked``: the revoked task's id, worker and arguments."""

    def __init__(self, message: dict, task_id: str = "5d1e-revoked") -> None:
        self.id = task_id
        self.hostname = "w1@host"
        self.args = [message]


def failed_revoked() -> float:
    return metrics.ROUTINGS.labels(outcome="failed", reason="revoked")._value.get()


def test_the_control_records_every_revoke_it_broadcasts(installed):
    app = Celery("test-revocations", broker="memory://", set_as_current=False, control=RecordingControl)
    try:
        app.control.revoke("7c1d-one")
        app.control.revoke(["7c1d-two", "7c1d-three"], terminate=True)
        app.control.broadcast("revoke", arguments={"task_id": "7c1d-cli"})  # `celery control revoke`
    finally:
        app.close()

    for task_id in ("7c1d-one", "7c1d-two", "7c1d-three", "7c1d-cli"):
        key = redis_keys.task_revoked(task_id)
        assert installed.redis.exists(key), task_id
        assert 0 < installed.redis.ttl(key) <= installed.settings.routing_status_ttl_seconds


def test_a_discarded_routing_task_fails_its_routing_and_tells_flower_why(installed, make_job, cxone):
    job = make_job("digital", contact_id="7000011")
    installed.store.mark_retrying(job.routing_id, "routing_queue: HTTP 503: down", time.time() + 9)
    sender, before = FakeTask(), failed_revoked()

    on_task_revoked(sender=sender, request=FakeRequest(job.to_message()), terminated=False, expired=False)

    record = installed.store.get(job.routing_id)
    assert (record.state, record.failed_reason) == (FAILED, REVOKED_REASON)
    letter = installed.store.dead_letter(job.routing_id)
    assert (letter["job"], letter["reason"]) == (job.to_message(), REVOKED_REASON)
    assert failed_revoked() == before + 1
    assert sender.app.events.sent == [
        (
            "task-failed",
            {
                "hostname": "w1@host",
                "uuid": "5d1e-revoked",
                "exception": "failed: revoked by an operator; dead-lettered",
                "traceback": None,
            },
        )
    ]
    assert cxone.calls == []


def test_a_revoked_routing_is_final_for_the_orphan_sweeper(installed, make_job):
    job = make_job("digital", contact_id="7000012")
    on_task_revoked(sender=FakeTask(), request=FakeRequest(job.to_message()))
    old = time.time() - 3600
    installed.redis.zadd(redis_keys.OPEN_ROUTINGS, {job.routing_id: old})  # even if still indexed
    installed.redis.hset(redis_keys.routing(job.routing_id), mapping={"updated_at": old})
    republished: list[dict] = []

    assert OrphanSweeper(installed, republished.append).sweep_once() == []
    assert republished == []


def test_a_revoke_after_the_routing_finished_changes_nothing(installed, make_job):
    job = make_job("digital", contact_id="7000013")
    installed.store.mark_routed(job.routing_id, 1203344)
    sender = FakeTask()

    on_task_revoked(sender=sender, request=FakeRequest(job.to_message()))

    assert installed.store.get(job.routing_id).state == ROUTED
    assert installed.store.dead_letter(job.routing_id) is None
    assert sender.app.events.sent == []


@pytest.mark.parametrize(
    ("sender", "request_", "expired"),
    [
        (FakeTask("some.other_task"), FakeRequest({"routing_id": "r"}), False),
        (FakeTask(), FakeRequest({"not": "a routing"}), False),
        (FakeTask(), FakeRequest({"routing_id": "r"}), True),  # expiry is no operator decision
    ],
)
def test_other_discards_are_left_alone(installed, sender, request_, expired):
    on_task_revoked(sender=sender, request=request_, expired=expired)

    assert installed.redis.hlen(redis_keys.DEAD_LETTERS) == 0
    assert sender.app.events.sent == []
