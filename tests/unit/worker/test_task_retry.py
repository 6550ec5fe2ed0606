"""The task's retry publishing: a retry that cannot be published must not drop the routing."""

from __future__ import annotations

import pytest
from celery.exceptions import Reject, Retry

from worker import tasks
from worker.routing import RetryLater


class FakeTask:
    """Stands in for the bound Celery task: ``retry()`` fails to publish ``failures`` times."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[float] = []

    def retry(self, countdown: float, exc=None, throw: bool = True):
        self.calls.append(countdown)
        if len(self.calls) <= self.failures:
            # What Celery raises when S.apply_async() cannot reach the broker.
            raise Reject(ConnectionError("Redis down"), requeue=False)
        return Retry(when=countdown)


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(tasks, "RETRY_PUBLISH_PAUSES", (0.0,) * 5)


def test_a_published_retry_is_raised_for_celery():
    task = FakeTask(failures=0)
    with pytest.raises(Retry):
        tasks._publish_retry(task, RetryLater(7.5, "HTTP 503"))
    assert task.calls == [7.5]


def test_a_retry_publish_that_fails_briefly_is_tried_again():
    task = FakeTask(failures=3)
    with pytest.raises(Retry):
        tasks._publish_retry(task, RetryLater(2.0, "HTTP 503"))
    assert len(task.calls) == 4


def test_when_redis_stays_away_the_message_is_requeued_not_dropped():
    task = FakeTask(failures=100)
    with pytest.raises(Reject) as raised:
        tasks._publish_retry(task, RetryLater(2.0, "HTTP 503"))
    # Celery's own behaviour would be Reject(requeue=False): the message deleted, routing lost.
    assert raised.value.requeue is True
    assert len(task.calls) == len(tasks.RETRY_PUBLISH_PAUSES)
