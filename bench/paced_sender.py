"""An open-loop, rate-paced webhook sender for the end-to-end and limit sections of the bench.

Request ``i`` is due at ``start + i / rate`` whatever happened to earlier ones (open loop: a slow
answer does not slow the offered rate, as long as a sender thread is free). Each of ``--threads``
threads has its own ``requests.Session`` and takes the next due request. Every contact id gets a
row ``[contact_id, due, sent, answered, status]`` (epoch seconds; status 0 = no answer), so the bench
can report the rate actually achieved and match each send time to the sandbox's ``at`` of the
CXone call. With ``--query wait=N`` (a webhook that waits for its outcome) each row also gets the
answer's ``status``, ``routedAt``, ``receivedAt`` (epoch seconds, or None) and ``waitedMs``, so the bench can
tell how soon after its routing finished each waiting webhook was answered. A numeric ``--prefix``
gives numeric contact ids (``<prefix><n:06d>``), as CXone's are. Run in its own process so its CPU
and GIL are its own::

    python -m bench.paced_sender --url http://127.0.0.1:PORT/webhook/cognigy/route \
        --key KEY --rate 200 --duration 10 --prefix run1 --out sent.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import requests

from tests.integration.stack import chat_body

INTENTS = ("sales_inquiry", "support_ticket", "billing_dispute", "cancel_subscription")


def send_paced(
    url: str,
    key: str,
    rate: float,
    duration: float,
    prefix: str,
    threads: int = 32,
    timeout: float = 10.0,
    query: str = "",
) -> dict:
    """Send ``rate * duration`` webhooks at ``rate`` per second; return the rows and a summary."""
    total = max(1, int(round(rate * duration)))
    if not prefix.isdigit():
        raise ValueError(f"prefix {prefix!r}: CXone contact ids are digits, so the prefix must be too")
    contacts = [f"{prefix}{n:06d}" for n in range(total)]
    if query:
        url = f"{url}?{query}"
    waits = "wait=" in query
    bodies = [
        json.dumps(chat_body(contact, INTENTS[n % len(INTENTS)])).encode()
        for n, contact in enumerate(contacts)
    ]
    rows: list[list | None] = [None] * total
    next_index = itertools.count()  # next() on a count is atomic under the GIL
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    ready = threading.Barrier(threads + 1)
    start_box: list[float] = []

    def run() -> None:
        session = requests.Session()
        ready.wait()
        start = start_box[0]
        while True:
            index = next(next_index)
            if index >= total:
                break
            due = start + index / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            sent = time.time()
            outcome: list = []
            try:
                response = session.post(url, data=bodies[index], headers=headers, timeout=timeout)
                status = response.status_code
                if waits:
                    outcome = _outcome(response)
            except requests.RequestException:
                status = 0
            rows[index] = [contacts[index], due, sent, time.time(), status, *outcome]
        session.close()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    cpu_before = time.process_time()
    start_box.append(time.time() + 0.05)
    ready.wait()
    for worker in workers:
        worker.join()
    done = [row for row in rows if row is not None]
    return {
        "url": url,
        "offered_rate": rate,
        "duration": duration,
        "threads": threads,
        "count": total,
        "cpu_seconds": time.process_time() - cpu_before,
        "rows": done,
    }


def _outcome(response: requests.Response) -> list:
    """``[status, routedAt, receivedAt, waitedMs]`` of a waited answer (times as epoch seconds, or None)."""
    try:
        body = response.json()
    except ValueError:
        return [None, None, None, None]
    return [
        body.get("status"),
        _epoch(body.get("routedAt")),
        _epoch(body.get("receivedAt")),
        body.get("waitedMs"),
    ]


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def main(argv: Sequence[str] | None = None) -> int:
    """Send at the given rate for the given time and write the result JSON to ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.paced_sender", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--rate", type=float, required=True, help="webhooks per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument(
        "--prefix", required=True, help="digits; contact ids are PREFIX000000, PREFIX000001, ..."
    )
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--query", default="", help="query string for every webhook, e.g. wait=5")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    result = send_paced(
        args.url, args.key, args.rate, args.duration, args.prefix, args.threads, args.timeout, args.query
    )
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
