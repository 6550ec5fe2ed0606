"""The ingress with settings the product does not expose as flags, to measure alternatives.

``gunicorn bench.tuned_web:app`` serves exactly ``ingress.wsgi:app`` after applying the
comma-separated ``BENCH_TWEAKS``:

- ``no-sent-event``: Celery's ``task_send_sent_event`` off (the product turns it on for Flower), so a
  webhook publishes the task without a second PUBLISH of a "task-sent" event.
- ``switch=SECONDS``: ``sys.setswitchinterval`` (CPython's default is 0.005): how long a thread
  back from I/O may wait for the GIL while another thread computes.

Used only by the bench (``--web-tweaks``); the product code is unchanged.
"""

from __future__ import annotations

import os
import sys

import shared.task_queue as task_queue

TWEAKS = dict(
    part.partition("=")[::2] for part in os.environ.get("BENCH_TWEAKS", "").split(",") if part.strip()
)
_make_celery = task_queue.make_celery


def _tuned_celery(settings, **options):
    celery = _make_celery(settings, **options)
    if "no-sent-event" in TWEAKS:
        celery.conf.task_send_sent_event = False
    return celery


task_queue.make_celery = _tuned_celery  # before ingress.app binds the name
if TWEAKS.get("switch"):
    sys.setswitchinterval(float(TWEAKS["switch"]))

from ingress.wsgi import app  # noqa: E402

__all__ = ["app"]
