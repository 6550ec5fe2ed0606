"""What a routing's task says in Celery's task state (and so in Flower): one readable line.

Celery's workers put ``safe_repr`` of an exception in their ``task-retried`` and ``task-failed``
events, which is what Flower shows: of the ``Retry`` itself under the threads pool (the Procfile's),
of the exception it carries under prefork. Both must read as the text.
"""

from __future__ import annotations

import pickle

import pytest
from celery.exceptions import Retry
from kombu.utils.encoding import safe_repr

from worker.task_state import MAX_TEXT, RoutingFailed, RoutingRetry, readable_retry, task_state_text


@pytest.mark.parametrize(
    ("retry_in", "text"),
    [
        (13.14, "retry in 13 s: CXone answered 503 (outage) on skills"),
        (0.42, "retry in 0.4 s: CXone answered 503 (outage) on skills"),
        (9.96, "retry in 10 s: CXone answered 503 (outage) on skills"),
    ],
)
def test_a_retry_says_when_and_why(retry_in, text):
    assert task_state_text("CXone answered 503 (outage) on skills", retry_in=retry_in) == text


def test_a_failure_says_why_and_where_it_went():
    assert task_state_text("revoked by an operator") == "failed: revoked by an operator; dead-lettered"


def test_the_text_is_one_bounded_line():
    text = task_state_text("line one\nline two\r\n\tthree " + "x" * 500)

    assert "\n" not in text and "\t" not in text
    assert text.startswith("failed: line one line two three x")
    assert len(text) == MAX_TEXT and text.endswith("…")


def test_celery_and_flower_read_a_retry_as_its_text():
    published = Retry(exc=None, when=13.14)  # as Task.retry(throw=False) returns it
    retry = readable_retry("retry in 13 s: CXone answered 503 (outage) on skills", published)

    assert isinstance(retry, Retry) and retry.when == 13.14
    assert safe_repr(retry) == "retry in 13 s: CXone answered 503 (outage) on skills"  # threads pool
    assert safe_repr(retry.exc) == "retry in 13 s: CXone answered 503 (outage) on skills"  # prefork
    assert str(retry) == "retry in 13 s: CXone answered 503 (outage) on skills"  # the worker's log
    # A plain retry, for comparison, is what the issue saw in Flower.
    assert safe_repr(published).startswith("Retry(Retry(...), None, 13.14")


def test_the_readable_exceptions_survive_pickling():
    # Celery pickles exceptions on their way out of a prefork child; these are our own bytes.
    retry = pickle.loads(pickle.dumps(RoutingRetry(message="retry in 2.0 s: x", when=2.0)))  # noqa: S301
    failed = pickle.loads(pickle.dumps(RoutingFailed("failed: x; dead-lettered")))  # noqa: S301

    assert repr(retry) == "retry in 2.0 s: x" and retry.when == 2.0
    assert repr(failed) == "failed: x; dead-lettered"
