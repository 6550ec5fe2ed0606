"""What Celery's task state, and so Flower, says about a routing: one line, in our words.

Flower shows a task's exception as Celery's workers report it in their ``task-retried`` and
``task-failed`` events: the ``repr()`` of the exception (of the ``Retry`` itself under the threads
pool; of the exception it carries under prefork). A plain ``self.retry(countdown=…)`` therefore
reads ``Retry(Retry(...), None, 13.14…)``. The exceptions here have their text as their ``repr``,
so Flower's task list and task page read ``retry in 13 s: CXone answered 503 (outage) on skills``
or ``failed: CXone answered 404 (not found) on routing_queue; dead-lettered``. A routing refused a
call slot is not retried but parked in the backlog (:mod:`shared.routing.backlog`): its task ends
SUCCESS with the result ``waiting for a CXone call slot since 21:40:05 UTC, position 17 in the
backlog`` (:func:`waiting_text`), and the same task id runs again when a dispatcher hands it back.

The text is built by :func:`task_state_text` from reasons that never quote CXone's answers (see
``CXoneError.summary``): anyone with a Flower login sees it.
"""

from __future__ import annotations

import time

from celery.exceptions import Retry

#: Flower shows the text on one line of its task list; anything longer is cut.
MAX_TEXT = 200


def task_state_text(reason: str, *, retry_in: float | None = None) -> str:
    """The one line Flower shows for a routing's task: ``retry in 13 s: <reason>`` for a retry
    (``retry_in`` seconds from now), ``failed: <reason>; dead-lettered`` otherwise."""
    reason = " ".join(reason.split())  # one line, whatever the reason held
    if retry_in is None:
        text = f"failed: {reason}; dead-lettered"
    else:
        text = f"retry in {_seconds(retry_in)}: {reason}"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def waiting_text(since: float, position: int) -> str:
    """What the task of a routing parked in the backlog ends with (its result, which Flower shows
    beside SUCCESS): ``waiting for a CXone call slot since 21:40:05 UTC, position 17``. The
    routing is not done: a dispatcher publishes its task again when its turn comes."""
    clock = time.strftime("%H:%M:%S", time.gmtime(since))
    return f"waiting for a CXone call slot since {clock} UTC, position {position} in the backlog"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 9.95 else f"{value:.0f} s"


class ReadableError(Exception):
    """An exception whose ``repr`` is its text (what Celery puts in the events Flower shows)."""

    def __repr__(self) -> str:
        return str(self)


class RoutingFailed(ReadableError):
    """The routing ended ``failed`` (recorded and dead-lettered): the task ends FAILURE with this."""


class RoutingRetry(Retry):
    """Celery's :class:`~celery.exceptions.Retry` with a readable ``repr`` and ``str``.

    Made with the same arguments as ``Retry`` (``message``, ``exc``, ``when``, so it pickles the
    same way); :func:`readable_retry` builds one.
    """

    def __repr__(self) -> str:
        return str(self)  # Retry.__str__ is its message


def readable_retry(text: str, retry: Retry) -> RoutingRetry:
    """``retry`` (as ``Task.retry(throw=False)`` returned it, already published) saying ``text``.

    The text is both the message and the carried exception, so it shows whichever of the two the
    pool reports.
    """
    return RoutingRetry(message=text, exc=ReadableError(text), when=retry.when, sig=retry.sig)
