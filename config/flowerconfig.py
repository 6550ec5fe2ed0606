"""Flower's configuration file: scripts/run-flower passes it with ``--conf``.

Only what cannot be a command-line flag is here: the task formatter, a Python function (Flower's
``format_task`` option, https://flower.readthedocs.io/en/latest/config.html). The other options are
on scripts/run-flower's command line, where they are easy to see and to override.

Flower runs this file with ``exec`` after Celery has loaded the app, when the working directory is
no longer on ``sys.path`` (Celery adds it only while it imports ``--app``): so it imports nothing
of the project, only the standard library.

Flower calls :func:`format_task` on a copy of each task (a ``celery.events.state.Task``) before it
shows the task list or a task page, so ``args`` reads ``contact 7000001 → Sales Support ·
sales_inquiry · digital · routing 3f0c…`` instead of the message dict. The search box and
``/api/tasks`` still see the message as sent, so ``args:7000001`` finds a contact's tasks. Only ids
and names of the routing decision are shown, as the task message holds nothing else (never the
customer's words, never a credential: see ``shared/routing/job.py``).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from typing import Any

#: Celery task states after which no attempt follows.
FINISHED = ("SUCCESS", "FAILURE", "REVOKED")


def format_task(task: Any) -> Any:
    """Flower's ``format_task`` hook: the routing in words in ``args``, the next attempt as a UTC
    clock time in ``eta``, and nothing stale on a finished task.

    Celery's events never clear a task's ``exception`` or ``eta``: a routing routed after a few
    retries would keep showing the last retry's reason beside SUCCESS, and a failed one a next
    attempt that will not come. A task that is not a routing (or whose arguments Celery cut
    short) keeps its ``args`` as they are.
    """
    job = _job_of(getattr(task, "args", None))
    if job is not None:
        task.args = describe_job(job)
    eta = getattr(task, "eta", None)
    if getattr(task, "state", None) in FINISHED:
        task.eta = None  # no next attempt: the ETA of the last retry would read as one
    elif isinstance(eta, str) and eta:
        task.eta = _clock_time(eta)
    if getattr(task, "state", None) == "SUCCESS":
        task.exception = None
        task.traceback = None
    return task


def describe_job(job: dict) -> str:
    """``contact 7000001 → Sales Support · sales_inquiry · digital · routing <id>``."""
    queue = job.get("queue_name") or f"skill {job.get('skill_id')}"
    return (
        f"contact {job.get('contact_id')} → {queue} · {job.get('intent')} · {job.get('mode')}"
        f" · routing {job.get('routing_id')}"
    )


def _job_of(args: object) -> dict | None:
    """The routing message in a task's ``args`` as Celery's events carry them (a ``repr`` string)."""
    if not isinstance(args, str):
        return None
    try:
        value = ast.literal_eval(args)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], dict):
        job = value[0]
        if "routing_id" in job and "contact_id" in job:
            return job
    return None


def _clock_time(eta: str) -> str:
    """An ISO 8601 ETA as ``17:41:07 UTC`` (unchanged if it is not one). The space does not
    break, so the narrow column keeps it on one line."""
    try:
        when = datetime.fromisoformat(eta)
    except ValueError:
        return eta
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%H:%M:%S\u00a0UTC")
