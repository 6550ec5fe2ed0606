"""The Celery worker app with settings the product does not expose as flags, to measure alternatives.

``celery --app bench.tuned_worker worker ...`` runs exactly ``worker.app`` after applying
the comma-separated ``BENCH_TWEAKS``:

- ``no-events``: no task events (``worker_send_task_events`` and ``task_send_sent_event`` off; the
  bench then also drops ``--events``). Flower shows no tasks without them; the cost measured is
  the PUBLISHes the consumer thread makes for every task.
- ``switch=SECONDS``: ``sys.setswitchinterval`` (CPython's default is 0.005).

Used only by the bench (``--worker-tweaks``); the product code is unchanged.
"""

from __future__ import annotations

import os
import sys

from worker.app import celery

TWEAKS = dict(
    part.partition("=")[::2] for part in os.environ.get("BENCH_TWEAKS", "").split(",") if part.strip()
)
if "no-events" in TWEAKS:
    celery.conf.worker_send_task_events = False
    celery.conf.task_send_sent_event = False
if TWEAKS.get("switch"):
    sys.setswitchinterval(float(TWEAKS["switch"]))

app = celery
