"""The task's retry publishing: a retry that cannot be published must not drop the routing.

The retry is published by Celery's own ``Task.retry`` with a publish retry policy (kombu retries the
publish while Redis is away); only a publish that still failed is ours to handle. The tests run a
real bound Celery task: on an in-memory broker for a retry that is published, and on a broker
address where nothing listens for Redis staying away.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.exceptions import Reject, Retry

from worker import tasks
from worker.routing import RetryLater

MESSAGE = {"routing_id": "r-1", "contact_id": "728471935", "intent": "billing_dispute"}


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bound_task(broker_url: str):
    """A bound task of a fresh app, with a request as a worker would push it (not a direct call)."""
    app = Celery("test-task-retry", broker=broker_url, set_as_current=False)
    app.conf.task_default_queue = "routing"

    @app.task(bind=True, name="test.route", max_retries=None, shared=False)
    def route(self, message: dict) -> None:  # never run: only its request and retry() are used
        pass

    route.push_request(
        id="task-1",
        args=[MESSAGE],
        kwargs={},
        retries=2,
        called_directly=False,
        delivery_info={"exchange": "", "routing_key": "routing"},
    )
    return app, route


@pytest.fixture
def memory_task() -> Iterator:
    app, task = bound_task("memory://")
    yield app, task
    task.pop_request()
    app.close()


@pytest.fixture
def unreachable_task(monkeypatch) -> Iterator:
    # The real policy waits ~15 s for Redis; two quick tries show the same path.
    monkeypatch.setattr(
        tasks,
        "RETRY_PUBLISH_POLICY",
        {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0},
    )
    app, task = bound_task(f"redis://127.0.0.1:{closed_port()}/0")
    yield task
    task.pop_request()
    app.close()


def test_a_published_retry_is_raised_for_celery_with_its_countdown(memory_task):
    app, task = memory_task
    with pytest.raises(Retry) as raised:
        tasks._publish_retry(task, RetryLater(7.5, "CXone answered 503 (outage) on skills"))

    assert raised.value.when == 7.5
    # What the worker's log line and Flower's task list show (see test_task_state.py):
    assert str(raised.value) == "retry in 7.5 s: CXone answered 503 (outage) on skills"
    with app.connection_for_read() as connection:
        published = connection.SimpleQueue("routing").get(timeout=5)
    assert published.headers["retries"] == 3
    assert published.headers["eta"]  # the countdown, as an absolute time
    assert published.payload[0] == [MESSAGE]
    published.ack()


def test_the_retry_is_published_with_our_retry_policy(memory_task, monkeypatch):
    _app, task = memory_task
    sent: list[dict] = []
    original = task.app.amqp.send_task_message
    monkeypatch.setattr(
        task.app.amqp,
        "send_task_message",
        lambda *args, **kwargs: sent.append(kwargs) or original(*args, **kwargs),
    )

    with pytest.raises(Retry):
        tasks._publish_retry(task, RetryLater(2.0, "HTTP 503"))

    assert [(options["retry"], options["retry_policy"]) for options in sent] == [
        (True, tasks.RETRY_PUBLISH_POLICY)
    ]


def test_the_policy_rides_out_a_redis_restart():
    policy = tasks.RETRY_PUBLISH_POLICY
    pauses = [
        min(policy["interval_max"], policy["interval_start"] + i * policy["interval_step"])
        for i in range(policy["max_retries"])
    ]
    assert 10 <= sum(pauses) <= 30  # a restart takes seconds; a task must not hang for minutes


def test_when_redis_stays_away_the_message_is_requeued_not_dropped(unreachable_task):
    with pytest.raises(Reject) as raised:
        tasks._publish_retry(unreachable_task, RetryLater(2.0, "HTTP 503"))

    # Celery's own behaviour would be Reject(requeue=False): the message deleted, routing lost.
    assert raised.value.requeue is True
    assert "refused" in str(raised.value.reason).lower()
