"""A Redis Sentinel failover in the middle of a batch: every webhook answered 2xx is routed, once.

Real processes, no Docker: a primary, its replica and three sentinels (redis-server), gunicorn,
two Celery workers and the CXone sandbox, all finding Redis through the sentinels, with
``REDIS_MIN_REPLICAS_ACK=1``. Senders post webhooks as Cognigy does (a 503 or no answer is retried
with the same body, so the same ``inputId``); the primary is SIGKILLed once a third is accepted, and
restarted once the sentinels promoted its replica, as a supervisor restarts a crashed server: the
sentinels make it the new primary's replica, and with it the ingress can have its 202s confirmed
again (with one replica, the promoted one has none until then; two replicas avoid that wait).
Counted: webhooks answered 2xx, lost (2xx but never routed), contacts routed more than once, calls
above CXone's limit in any 60 s, seconds from the kill until the sentinels named the new primary
and until the ingress answered 202 again. ``make soak`` (SOAK=1) runs it with 1,000 webhooks and
adds the row to its table, and runs it once more with a second replica: the failover itself makes
that one the new primary's replica, so 202s come back before the old primary is restarted.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import pytest
import redis
import requests

from shared import redis_keys
from shared.task_queue import ROUTING_QUEUE
from tests.integration.stack import (
    GUARANTEE_RESULTS,
    ReplicatedRedis,
    Stack,
    chat_body,
    wait_ready,
    wait_until,
)

SOAK = os.environ.get("SOAK") == "1"
WEBHOOKS = 1000 if SOAK else 200
#: CXone's limit (the sandbox enforces it) and the router's: the failover must not break it.
LIMIT_PER_MINUTE = 600
SENDERS = 4
#: Replicas of the first primary: one in `make test`; `make soak` adds the two-replica topology.
REPLICA_COUNTS = [1, 2] if SOAK else [1]
#: How long a sender keeps retrying one webhook (Cognigy's retries, generously).
GIVE_UP_AFTER_SECONDS = 120


@dataclass
class Traffic:
    """What the senders saw, shared between their threads."""

    accepted: dict[str, float] = field(default_factory=dict)  # contact -> when its 2xx came
    refused: int = 0  # answers that were not 2xx (each retried)
    no_answer: int = 0  # connection errors and timeouts (each retried)
    gave_up: list[str] = field(default_factory=list)
    #: 202s to requests sent after the kill: (sent at, answered at)
    after_kill: list[tuple[float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_like_cognigy(
    stack: Stack, contact: str, traffic: Traffic, killed_at: list[float], stop: threading.Event
) -> None:
    """Post one webhook until it is answered 2xx (a 503 is retried after Retry-After, as Cognigy's
    retry policy does; a timeout too)."""
    body = chat_body(contact, input_id=f"input-{contact}")
    session = requests.Session()
    deadline = time.monotonic() + GIVE_UP_AFTER_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        sent_at = time.monotonic()
        try:
            response = stack.post_webhook(body, session=session)
        except requests.RequestException:
            with traffic.lock:
                traffic.no_answer += 1
            time.sleep(0.5)
            continue
        answered_at = time.monotonic()
        if 200 <= response.status_code < 300:
            with traffic.lock:
                traffic.accepted[contact] = answered_at
                if killed_at and sent_at > killed_at[0]:
                    traffic.after_kill.append((sent_at, answered_at))
            return
        assert response.status_code == 503, response.text  # anything else is a bug, not the failover
        with traffic.lock:
            traffic.refused += 1
        time.sleep(min(2.0, float(response.headers.get("Retry-After") or 1)) / 2)
    with traffic.lock:
        traffic.gave_up.append(contact)


def routing_idle(client: redis.Redis) -> bool:
    """No routing message queued, unacked or being carried out (on the current primary)."""
    try:
        return (
            client.llen(ROUTING_QUEUE) == 0
            and client.hlen("unacked") == 0
            and not list(client.scan_iter(match=redis_keys.PREFIX + "contact:*:lease", count=1000))
        )
    except redis.RedisError:
        return False


def rejoined_once(topology: ReplicatedRedis) -> bool:
    """The restarted old primary replicates the promoted one, and nothing failed over since."""
    assert not topology.failed_back(), "the sentinels failed over a second time (logs below)"
    return topology.old_primary_replicates()


@pytest.fixture(params=REPLICA_COUNTS, ids=lambda count: f"{count} replica(s)")
def topology(tmp_path, request):
    replicated = ReplicatedRedis(tmp_path / "redis", second_replica=request.param == 2)
    replicated.start()
    yield replicated
    replicated.kill()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(replicated.logs())


def test_a_failover_mid_batch_loses_and_doubles_no_accepted_webhook(stack, topology):
    stack.env_overrides.update(
        {
            **topology.env(),
            "REDIS_MIN_REPLICAS_ACK": "1",
            # generous: the replica shares a busy 2-core machine with everything else
            "REDIS_REPLICA_ACK_TIMEOUT_SECONDS": "2",
            "CXONE_RATE_LIMIT_PER_MINUTE": str(LIMIT_PER_MINUTE),
        }
    )
    stack.redis_url = topology.primary.url
    stack.close()  # the ingress and sandbox again, on the replicated Redis
    stack.processes.clear()
    stack.start_sandbox()
    stack.set_faults(rate_limit_per_minute=LIMIT_PER_MINUTE, retry_after=False)
    stack.start_web()
    workers = [stack.start_worker(name, concurrency=8) for name in ("w1", "w2")]
    for worker in workers:
        wait_ready(worker)

    traffic = Traffic()
    killed_at: list[float] = []
    contacts = [f"760{i:05d}" for i in range(WEBHOOKS)]
    batches = [contacts[i::SENDERS] for i in range(SENDERS)]
    resume_after_kill = threading.Event()
    stop = threading.Event()  # the test failed: senders stop instead of retrying for minutes

    def sender(batch: list[str]) -> None:
        for i, contact in enumerate(batch):
            if i == 2 * len(batch) // 3:
                # the last third goes after the kill however the threads are scheduled
                resume_after_kill.wait(180)
            if stop.is_set():
                return
            send_like_cognigy(stack, contact, traffic, killed_at, stop)
            time.sleep(SENDERS / 25)  # ~25 webhooks/s in all, a steady stream

    threads = [threading.Thread(target=sender, args=(batch,), daemon=True) for batch in batches]
    for thread in threads:
        thread.start()
    try:
        wait_until(
            lambda: len(traffic.accepted) >= WEBHOOKS // 3, 180, what="a third of the webhooks accepted"
        )

        topology.primary.kill()  # SIGKILL: no goodbye to the replica, the sentinels or the clients
        killed_at.append(time.monotonic())
        resume_after_kill.set()
        wait_until(topology.promoted, 60, interval=0.1, what="the sentinels to promote the replica")
        switched_after = time.monotonic() - killed_at[0]
        if topology.spare:
            # The failover made the spare the promoted replica's replica: WAIT is answered again,
            # so 202s come back with the old primary still down. Only then is it restarted.
            wait_until(
                lambda: topology.replicates(topology.spare, topology.replica),
                120,
                what="the spare to replicate the promoted replica",
            )
            wait_until(lambda: bool(traffic.after_kill), 120, what="a 202 with the old primary down")
        # restarted with its append-only file, as a supervisor restarts a crashed server; the
        # sentinels turn it into the new primary's replica
        topology.primary.start()
        wait_until(lambda: rejoined_once(topology), 120, what="the old primary to replicate the new one")
        rejoined_after = time.monotonic() - killed_at[0]

        for thread in threads:
            thread.join(GIVE_UP_AFTER_SECONDS * 3)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        stop.set()
        resume_after_kill.set()
    assert traffic.gave_up == [], f"never answered 2xx: {traffic.gave_up[:10]}"
    assert traffic.after_kill, "no webhook was answered after the kill"
    back_after = min(answered for _, answered in traffic.after_kill) - killed_at[0]

    new_primary = redis.Redis(port=topology.replica.port, socket_timeout=10, decode_responses=True)
    accepted = sorted(traffic.accepted)
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= len(accepted),
        600,  # the limiter waits a whole minute after the switch, then 600 calls a minute
        interval=2,
        what=f"{len(accepted)} contacts routed",
    )
    # Count doubles only once nothing is left to run, seen twice a second apart.
    wait_until(lambda: routing_idle(new_primary), 300, interval=1, what="no routing message left")
    wait_until(lambda: routing_idle(new_primary), 300, interval=1, what="no routing message left")
    stats = stack.sandbox_stats()

    routed = set(stats["routings"])
    lost = set(accepted) - routed
    calls_above_limit = max(0, stats["max_calls_in_any_60s"] - LIMIT_PER_MINUTE)
    GUARANTEE_RESULTS.append(
        {
            "scenario": "Sentinel failover (primary SIGKILL)" + (", two replicas" if topology.spare else ""),
            "webhooks_2xx": len(accepted),
            "lost": len(lost),
            "contacts_routed": stats["contacts_routed"],
            "routed_more_than_once": stats["contacts_routed_more_than_once"],
            "repeated_routing_calls": sum(len(history) - 1 for history in stats["routings"].values()),
            "calls_above_limit": calls_above_limit,
            "answered_429": stats["answered_429"],
            "token_requests": stats["token_requests"],
            "refused_503": traffic.refused,
            "no_answer": traffic.no_answer,
            "switch_s": round(switched_after, 1),
            "replica_back_s": round(rejoined_after, 1),
            "202_again_s": round(back_after, 1),
        }
    )
    assert len(accepted) == WEBHOOKS
    assert not lost, f"lost: {sorted(lost)[:10]}"
    assert stats["contacts_routed_more_than_once"] == 0
    assert calls_above_limit == 0
    # Back within 15 s of the sentinels' failover (the issue's target), on a busy machine too;
    # with one replica the ingress must also wait for the old primary to return as its replica.
    if topology.spare:
        assert back_after <= switched_after + 15
    else:
        assert back_after <= rejoined_after + 15
