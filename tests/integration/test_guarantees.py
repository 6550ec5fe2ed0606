"""No routing lost, none doubled: each guarantee of the README proved under its fault.

Every test drives real processes (gunicorn, Celery workers, the CXone sandbox, Redis) and asserts
counts: webhooks answered 2xx, contacts routed, contacts routed more than once, calls above the
limit, token requests. ``make soak`` runs the same scenarios with larger numbers (SOAK=1); every run
prints the table collected in ``GUARANTEE_RESULTS`` at the end (see conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from shared import redis_keys
from shared.task_queue import ROUTING_QUEUE
from tests.integration.stack import (
    GUARANTEE_RESULTS,
    REPO,
    PrivateRedis,
    Stack,
    chat_body,
    wait_ready,
    wait_until,
)

SOAK = os.environ.get("SOAK") == "1"
#: kombu's hash of messages delivered to a worker and not acked yet (restored after the visibility timeout).
UNACKED = "unacked"


def scale(ci: int, soak: int) -> int:
    return soak if SOAK else ci


def post_all(stack: Stack, bodies: list[dict], threads: int = 16) -> list[requests.Response]:
    session = requests.Session()
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda body: stack.post_webhook(body, session=session), bodies))


def wait_routed(stack: Stack, count: int, timeout: float) -> dict:
    """The sandbox's stats once ``count`` contacts are routed and the router has nothing left to do."""
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= count,
        timeout,
        interval=1,
        what=f"{count} contacts routed",
    )
    # A duplicate would come from a message still queued, delivered but unacked (a retry's
    # countdown, a dead worker's message waiting for the visibility timeout) or being carried out.
    # Count only once none is left, seen twice a second apart (a worker thread may hold a message
    # for a moment between popping it and recording it as unacked).
    wait_until(lambda: idle(stack), timeout, interval=1, what="no routing message left in Redis")
    wait_until(lambda: idle(stack), timeout, interval=1, what="no routing message left in Redis")
    return stack.sandbox_stats()


def idle(stack: Stack) -> bool:
    """No routing message queued, unacked or being carried out, and none waiting in the backlog."""
    client = stack.redis()
    try:
        return (
            client.llen(ROUTING_QUEUE) == 0
            and client.hlen(UNACKED) == 0
            and not in_flight_routings(client)
            and client.zcard(redis_keys.BACKLOG) == 0
            and client.hlen(redis_keys.BACKLOG_DISPATCHING) == 0
        )
    finally:
        client.close()


def in_flight_routings(client: redis.Redis) -> list[str]:
    """Contact leases of routings a worker is carrying out right now (left behind if it was killed)."""
    return list(client.scan_iter(match=redis_keys.PREFIX + "contact:*:lease", count=1000))


class BacklogWatch:
    """Samples the backlog (routings waiting in Redis for a call slot) while a scenario runs: the
    proof that routings really waited there, not in a worker's memory."""

    def __init__(self, stack: Stack, interval: float = 0.2):
        self.client = stack.redis()
        self.interval = interval
        self.most = 0
        self.ever_waiting: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BacklogWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                waiting = self.client.zrange(redis_keys.BACKLOG, 0, -1)
            except redis.RedisError:
                continue  # the Redis-restart scenario: sample again when it is back
            self.most = max(self.most, len(waiting))
            self.ever_waiting.update(waiting)


def record(
    scenario: str, answered_2xx: int, stats: dict, accepted: list[str], limit: int | None = None, **extra
) -> None:
    """One row of the soak table; ``accepted`` are the contacts whose webhook got a 2xx."""
    calls_above = max(0, stats["max_calls_in_any_60s"] - limit) if limit else 0
    lost = set(accepted) - set(stats["routings"]) - set(stats.get("signals", {}))
    # Each scenario routes each contact once, so a contact's calls beyond its first are repeats.
    calls = [*stats["routings"].values(), *stats.get("signals", {}).values()]
    GUARANTEE_RESULTS.append(
        {
            "scenario": scenario,
            "webhooks_2xx": answered_2xx,
            "lost": len(lost),
            "contacts_routed": stats["contacts_routed"] + stats.get("contacts_signalled", 0),
            "routed_more_than_once": stats["contacts_routed_more_than_once"]
            + stats.get("contacts_signalled_more_than_once", 0),
            "repeated_routing_calls": sum(len(history) - 1 for history in calls),
            "calls_above_limit": calls_above,
            "answered_429": stats["answered_429"],
            "token_requests": stats["token_requests"],
            **extra,
        }
    )


# 1 ---------------------------------------------------------------------------------------------


def test_resent_webhooks_produce_one_routing_and_the_first_routing_id(stack):
    stack.start_worker()
    n = scale(30, 500)
    with_input_id = [chat_body(f"710{i:05d}", input_id=f"input-{i}") for i in range(n)]
    without_input_id = [chat_body(f"711{i:05d}", "support_ticket") for i in range(n)]
    first = post_all(stack, with_input_id + without_input_id)
    assert all(r.status_code == 202 for r in first)
    # Cognigy's retry attempts resend the same bodies, here three times and concurrently.
    resends = post_all(stack, (with_input_id + without_input_id) * 3)
    assert all(r.status_code == 202 for r in resends), {r.status_code for r in resends}
    first_ids = [r.json()["routingId"] for r in first]
    resend_ids = [r.json()["routingId"] for r in resends]
    assert resend_ids == first_ids * 3
    stats = wait_routed(stack, 2 * n, 120)
    assert stats["contacts_routed"] == 2 * n
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["api_calls_by_endpoint"]["routing_put"] == 2 * n
    record(
        "duplicates x3",
        len(first) + len(resends),
        stats,
        [b["data"]["contactId"] for b in with_input_id + without_input_id],
    )


def test_concurrent_copies_of_one_webhook_get_one_routing(stack):
    stack.start_worker()
    body = chat_body("7120001", input_id="same-input")
    answers = post_all(stack, [body] * 20, threads=20)
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["routingId"] for r in answers}) == 1
    stats = wait_routed(stack, 1, 120)
    assert stats["routings"]["7120001"] and len(stats["routings"]["7120001"]) == 1


def test_concurrent_copies_of_a_body_without_input_id_get_one_routing(stack):
    """No inputId: the pending claim on the contact's latest routing keeps copies to one routing."""
    stack.start_worker()
    body = chat_body("7100010", "support_ticket")
    answers = post_all(stack, [body] * 20, threads=20)
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["routingId"] for r in answers}) == 1
    assert sum(1 for r in answers if not r.json().get("duplicate")) == 1
    stats = wait_routed(stack, 1, 120)
    assert len(stats["routings"]["7100010"]) == 1


@pytest.mark.parametrize("input_ids", [True, False], ids=["inputIds", "no-inputId"])
def test_a_customer_changing_their_mind_back_gets_every_routing_and_the_queue_asked_last(stack, input_ids):
    """billing -> sales -> billing for one contact: three routings, the contact ends in Billing;
    the third sent twice is one routing, answered with its current state."""
    stack.start_worker()
    contact = "7100011" if input_ids else "7100012"
    bodies = [
        chat_body(contact, intent, input_id=f"{contact}-input-{n}" if input_ids else None)
        for n, intent in enumerate(["billing_dispute", "sales_inquiry", "billing_dispute"])
    ]
    routing_ids = []
    for body in bodies:
        answer = stack.post_webhook(body)
        assert answer.status_code == 202 and "duplicate" not in answer.json(), answer.text
        routing_ids.append(answer.json()["routingId"])
        # The customer speaks again once transferred (Cognigy waits for the answer and the bot's turn).
        wait_until(lambda: stack.routing(routing_ids[-1])["state"] == "routed", 120, what="routed")

    resend = stack.post_webhook(bodies[2])

    assert len(set(routing_ids)) == 3
    assert skills_put_for(stack, contact) == [BILLING_DISPUTES, SALES_SUPPORT, BILLING_DISPUTES]
    assert resend.status_code == 202
    again = resend.json()
    assert (again["routingId"], again["status"], again["duplicate"]) == (routing_ids[2], "routed", True)
    assert again["skillId"] == BILLING_DISPUTES
    assert len(skills_put_for(stack, contact)) == 3  # the resend queued nothing


# 2 ---------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_batch_loses_nothing(stack):
    # Slow CXone answers keep routings in flight inside the worker when it is killed. The latency
    # is real time, not CPU: once a quarter is routed, the rest needs at least 3n/4 x 0.4 s / 8
    # threads (15 s for n = 200) however busy the machine is, so the kill lands mid-batch.
    stack.set_faults(latency_ms=400)
    n = scale(200, 1000)
    victim = stack.start_worker("victim", concurrency=8)
    answers = post_all(stack, [chat_body(f"713{i:05d}") for i in range(n)])
    assert all(r.status_code == 202 for r in answers)
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["contacts_routed"] >= n // 4,
        120,
        what="a quarter of the batch routed",
    )
    victim.kill_hard()
    killed_at = time.monotonic()
    # Prove the kill landed mid-batch, or this test would pass without testing anything: the
    # victim died holding routings it had taken (unacked) and was carrying out (leases left).
    routed_at_kill = stack.sandbox_stats(summary=True)["contacts_routed"]
    client = stack.redis()
    unacked_at_kill = client.hlen(UNACKED)
    in_flight_at_kill = len(in_flight_routings(client))
    client.close()
    assert routed_at_kill < n, "the victim had routed the whole batch before it was killed"
    assert unacked_at_kill > 0 and in_flight_at_kill > 0, (unacked_at_kill, in_flight_at_kill)

    stack.start_worker("survivor", concurrency=8)
    # Recovered once every message the victim held was handed out again and finished: its PUTs
    # in flight may have reached CXone anyway, so the routed count alone can look complete first.
    stats = wait_routed(stack, n, 300)
    recovered_after = time.monotonic() - killed_at
    assert stats["contacts_routed"] == n
    # A PUT in flight at the kill may have reached CXone before its worker died: the redelivered
    # routing reads the contact back and finds it in its queue, so no contact is moved twice.
    repeated = {c: len(r) for c, r in stats["routings"].items() if len(r) > 1}
    assert repeated == {}
    assert stats["contacts_routed_more_than_once"] == 0
    confirmed = confirmed_by_read_back(stack, [r.json()["routingId"] for r in answers])
    # Redelivery within two minutes (visibility timeout 60 s + restore sweep).
    assert recovered_after < 180
    record(
        "worker SIGKILL",
        len(answers),
        stats,
        [f"713{i:05d}" for i in range(n)],
        routed_at_kill=routed_at_kill,
        in_flight_at_kill=in_flight_at_kill,
        contacts_read_back=stats["api_calls_by_endpoint"]["contact_get"],
        confirmed_by_read_back=confirmed,
        recovered_s=round(recovered_after),
    )


def confirmed_by_read_back(stack: Stack, routing_ids: list[str]) -> int:
    """How many of these routings were settled by reading their contact back (no second PUT)."""
    client = stack.redis()
    try:
        pipe = client.pipeline(transaction=False)
        for routing_id in routing_ids:
            pipe.hget(redis_keys.routing(routing_id), "confirmed_by")
        return sum(1 for value in pipe.execute() if value)
    finally:
        client.close()


# 2b: a contact is moved at most once per routing -------------------------------------------------

#: Redelivery within ~25 s (visibility timeout 20 s + the 5 s restore sweep) rather than 60 s, with
#: countdowns at most half of it; a held answer must not time out in the worker meanwhile.
READ_BACK_ENV = {
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "20",
    "ROUTING_MAX_COUNTDOWN_SECONDS": "10",
    "CXONE_READ_TIMEOUT_SECONDS": "90",
}


def sandbox_contact(stack: Stack, contact: str, **update) -> dict:
    """The contact as CXone would return it; with ``update``, changed first (control API)."""
    url = f"{stack.sandbox_url}/sandbox/contacts/{contact}"
    response = requests.post(url, json=update, timeout=5) if update else requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


def hold_the_answer_of_the_put(stack: Stack, contact: str) -> str:
    """Send a webhook for ``contact`` and return its routing id once CXone (the sandbox) has moved
    the contact and holds the answer: the PUT took effect, the worker does not know it yet."""
    stack.set_faults(hold_answers=1)
    routing_id = stack.post_webhook(chat_body(contact)).json()["routingId"]
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["held_answers"] == 1, 120, what="the PUT's answer held"
    )
    assert skills_put_for(stack, contact) == [SALES_SUPPORT]  # applied before the answer
    assert stack.routing(routing_id)["state"] == "queued"
    return routing_id


def settled_without_a_second_put(stack: Stack, contact: str, routing_id: str) -> dict:
    """Wait until the routing is settled and nothing of it is left in Redis; check that CXone got
    exactly one PUT for the contact, and that reading the contact back settled it."""
    wait_until(lambda: stack.routing(routing_id)["state"] != "queued", 240, what="the routing settled")
    wait_until(lambda: idle(stack), 120, interval=1, what="no routing message left in Redis")
    routing = stack.routing(routing_id)
    stats = stack.sandbox_stats()
    assert skills_put_for(stack, contact) == [SALES_SUPPORT], stats["routings"]
    assert stats["api_calls_by_endpoint"]["routing_put"] == 1
    assert stats["api_calls_by_endpoint"]["contact_get"] >= 1
    assert routing["state"] == "routed", routing
    assert routing["confirmedBy"] == "contact read-back", routing
    return routing


@pytest.mark.parametrize("stack", [READ_BACK_ENV], indirect=True)
def test_a_worker_killed_after_cxone_moved_the_contact_never_moves_it_again(stack):
    contact = "7300001"
    victim = stack.start_worker("victim", concurrency=2)
    routing_id = hold_the_answer_of_the_put(stack, contact)

    victim.kill_hard()  # dies waiting for CXone's answer: the routing is not recorded as routed
    stack.set_faults(release_held=True)
    stack.start_worker("survivor", concurrency=2)

    routing = settled_without_a_second_put(stack, contact, routing_id)
    in_cxone = sandbox_contact(stack, contact)
    assert routing["contactReadBack"]["status"] == in_cxone["status"] == "new"
    assert routing["contactReadBack"]["routingQueueId"] == in_cxone["routingQueueId"] is not None
    assert routing["skillId"] == SALES_SUPPORT


@pytest.mark.parametrize("stack", [READ_BACK_ENV], indirect=True)
def test_redis_lost_after_cxone_moved_the_contact_never_moves_it_again(stack, tmp_path):
    private = PrivateRedis(tmp_path / "redis")  # append-only, fsync always: the marker survives
    private.start()
    try:
        stack.redis_url = private.url  # the processes and the test's own checks (idle, leases)
        stack.close()  # the ingress on the private Redis, so it can go away under the worker
        stack.processes.clear()
        stack.start_sandbox()
        stack.start_web()
        worker = stack.start_worker(concurrency=2)
        contact = "7300002"
        routing_id = hold_the_answer_of_the_put(stack, contact)

        private.kill()
        stack.set_faults(release_held=True)  # the answer arrives; recording the routing fails
        wait_until(
            lambda: "Redis unavailable while carrying out the routing" in worker.log_path.read_text(),
            120,
            what="the worker to fail to record the routing",
        )
        private.start()

        routing = settled_without_a_second_put(stack, contact, routing_id)
        assert (
            routing["contactReadBack"]["routingQueueId"] == sandbox_contact(stack, contact)["routingQueueId"]
        )
    finally:
        private.kill()


@pytest.mark.parametrize("stack", [READ_BACK_ENV], indirect=True)
def test_a_contact_an_agent_took_before_the_redelivery_is_not_taken_from_them(stack):
    contact = "7300003"
    victim = stack.start_worker("victim", concurrency=2)
    routing_id = hold_the_answer_of_the_put(stack, contact)
    # An agent accepts the chat and moves it to Billing while the routing's outcome is unknown.
    sandbox_contact(stack, contact, assignee=4242, skillId=BILLING_DISPUTES)

    victim.kill_hard()
    stack.set_faults(release_held=True)
    stack.start_worker("survivor", concurrency=2)

    routing = settled_without_a_second_put(stack, contact, routing_id)
    assert routing["contactReadBack"]["assignee"] == "4242"
    assert routing["contactReadBack"]["conclusion"] == "an agent has it: assigned to agent 4242"
    in_cxone = sandbox_contact(stack, contact)
    assert (in_cxone["inboxAssigneeUser"]["id"], in_cxone["status"]) == (4242, "open")
    assert (
        in_cxone["routingQueueId"]
        == sandbox_contact(stack, "7300004", skillId=BILLING_DISPUTES)["routingQueueId"]
    )  # still where the agent put it


# 3 ---------------------------------------------------------------------------------------------


def test_redis_restarted_mid_batch_loses_no_accepted_webhook(stack, tmp_path):
    private = PrivateRedis(tmp_path)
    private.start()
    try:
        stack.redis_url = private.url  # the processes and the test's own checks (idle, leases)
        stack.close()  # restart web against the private Redis
        stack.processes.clear()
        stack.start_sandbox()
        stack.start_web()
        stack.start_worker(concurrency=8)
        n = scale(200, 1000)
        accepted: list[str] = []
        refused = 0
        lock = threading.Lock()
        restarted = threading.Event()

        def sender():
            nonlocal refused
            session = requests.Session()
            for i in range(n):
                if i == 2 * n // 3:
                    # The last third goes after the restart however the threads are scheduled, so
                    # the batch always spans it.
                    restarted.wait(120)
                try:
                    response = stack.post_webhook(chat_body(f"714{i:05d}"), session=session)
                except requests.RequestException:
                    response = None
                with lock:
                    if response is not None and response.status_code == 202:
                        accepted.append(f"714{i:05d}")
                    else:
                        refused += 1
                time.sleep(0.04)  # a steady stream of ~25 webhooks/s, as Cognigy sends them

        thread = threading.Thread(target=sender)
        thread.start()
        wait_until(lambda: len(accepted) >= n // 3, 120, what="a third of the webhooks accepted")
        private.kill()
        with lock:
            accepted_before_kill = len(accepted)
        time.sleep(2)  # Redis stays down a while: webhooks arriving now must get 503, not a 202
        private.start()
        restarted.set()
        thread.join(180)
        assert not thread.is_alive()
        # The kill landed mid-batch: webhooks were accepted before it and after the restart.
        assert n // 3 <= accepted_before_kill < len(accepted)
        stats = wait_routed(stack, len(accepted), 240)
        routed = set(stats["routings"])
        assert set(accepted) <= routed, f"lost: {sorted(set(accepted) - routed)[:10]}"
        assert stats["contacts_routed_more_than_once"] == 0
        record(
            "Redis SIGKILL+restart",
            len(accepted),
            stats,
            accepted,
            accepted_before_kill=accepted_before_kill,
            refused_503=refused,
            contacts_read_back=stats["api_calls_by_endpoint"]["contact_get"],
        )
    finally:
        private.kill()


# 4 ---------------------------------------------------------------------------------------------


def test_cxone_down_for_a_minute_then_every_routing_completes(stack):
    stack.start_worker(concurrency=8)
    stack.set_faults(outage_seconds=60)
    started = time.monotonic()
    n = scale(50, 1000)
    answers = post_all(stack, [chat_body(f"715{i:05d}") for i in range(n)])
    assert all(r.status_code == 202 for r in answers)
    stats = wait_routed(stack, n, 60 + 120)
    assert stats["contacts_routed"] == n
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["answered_5xx"] > 0
    record(
        "CXone outage 60 s",
        n,
        stats,
        [f"715{i:05d}" for i in range(n)],
        done_after_s=round(time.monotonic() - started),
    )


# 5 ---------------------------------------------------------------------------------------------


def test_the_shared_limiter_paces_all_workers_under_the_limit(stack):
    limit = scale(60, 600)
    # CXone enforces the same limit (and would answer 429); the router's limiter must get there first.
    stack.set_faults(rate_limit_per_minute=limit, retry_after=False)
    stack.start_worker("w1", concurrency=8, CXONE_RATE_LIMIT_PER_MINUTE=str(limit))
    stack.start_worker("w2", concurrency=8, CXONE_RATE_LIMIT_PER_MINUTE=str(limit))
    n = limit + limit // 2  # more than one minute's worth
    with BacklogWatch(stack) as backlog:
        answers = post_all(stack, [chat_body(f"716{i:05d}") for i in range(n)])
        assert all(r.status_code == 202 for r in answers)
        stats = wait_routed(stack, n, 200)
    total_calls = sum(stats["api_calls_by_endpoint"].values())
    assert stats["contacts_routed"] == n
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["max_calls_in_any_60s"] <= limit
    assert stats["answered_429"] <= 0.01 * total_calls
    # The routings beyond the first minute's worth waited in Redis (the backlog), not in a
    # worker's memory as Celery countdowns...
    assert backlog.most >= n - limit - 5, backlog.most
    # ...and left it in arrival order: the webhooks accepted first were routed first.
    routing_ids = [r.json()["routingId"] for r in answers]
    client = stack.redis()
    try:
        accepted = {rid: float(client.hget(redis_keys.routing(rid), "received_at")) for rid in routing_ids}
    finally:
        client.close()
    routed_at = {rid: stats["routings"][f"716{i:05d}"][0]["at"] for i, rid in enumerate(routing_ids)}
    waited = sorted((rid for rid in routing_ids if rid in backlog.ever_waiting), key=accepted.__getitem__)
    assert len(waited) >= n - limit - 5
    inversions = max_inversion(waited, routed_at)
    assert inversions <= 2.0, f"an earlier routing was routed {inversions:.1f} s after a newer one"
    record(
        f"limit {limit}/min, 2 workers",
        n,
        stats,
        [f"716{i:05d}" for i in range(n)],
        limit=limit,
        waited_in_backlog=len(waited),
        max_order_inversion_s=round(inversions, 2),
    )


def max_inversion(in_arrival_order: list[str], routed_at: dict[str, float]) -> float:
    """How much later than the routings accepted after it the worst routing was routed (0: in order)."""
    worst, latest = 0.0, float("-inf")
    for routing_id in in_arrival_order:
        latest = max(latest, routed_at[routing_id])
        worst = max(worst, latest - routed_at[routing_id])
    return worst


def test_429_without_retry_after_backs_off_and_completes(stack):
    stack.set_faults(rate_limit_per_minute=10, retry_after=False)
    stack.start_worker(concurrency=4)
    n = 15
    answers = post_all(stack, [chat_body(f"717{i:05d}") for i in range(n)])
    assert all(r.status_code == 202 for r in answers)
    stats = wait_routed(stack, n, 150)
    assert stats["answered_429"] > 0
    assert stats["contacts_routed"] == n
    assert stats["contacts_routed_more_than_once"] == 0
    record("429 without Retry-After", n, stats, [f"717{i:05d}" for i in range(n)])


def test_retry_after_pauses_every_worker_until_it_has_passed(stack):
    # CXone answers one 429 with Retry-After: nothing may reach it from any worker before that time
    # has passed, although each task's countdown is capped far below it. (90 s, as the issue
    # asks, in make soak; 20 s in make test, still four times the countdown cap set here.)
    retry_after = scale(20, 90)
    stack.set_faults(throttle_next=1, retry_after_seconds=retry_after)
    for name in ("w1", "w2"):
        stack.start_worker(name, concurrency=4, ROUTING_MAX_COUNTDOWN_SECONDS="5", WORKER_METRICS_PORT="0")
    n = scale(20, 200)
    contacts = [f"74{i:05d}" for i in range(n)]
    with BacklogWatch(stack) as backlog:
        answers = post_all(stack, [chat_body(contact) for contact in contacts])
        assert all(r.status_code == 202 for r in answers)
        stats = wait_routed(stack, n, retry_after + 90)
    # During CXone's pause the routings waited in Redis, not in Celery countdowns.
    assert backlog.most >= n - 4, backlog.most

    calls = requests.get(stack.sandbox_url + "/sandbox/calls", timeout=10).json()["calls"]
    api_calls = [c for c in calls if c["endpoint"] != "issue_token"]
    (throttled,) = [c for c in api_calls if c["status"] == 429]
    paused_until = throttled["at"] + retry_after
    during = [c for c in api_calls if throttled["at"] < c["at"] < paused_until]
    assert during == [], f"{len(during)} CXone calls inside the {retry_after}s Retry-After"
    puts = [c for c in api_calls if c["endpoint"] == "change_routing_queue"]
    assert len(puts) == n and min(c["at"] for c in puts) >= paused_until
    assert stats["contacts_routed"] == n
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["answered_429"] == 1
    record(
        f"429 Retry-After {retry_after} s",
        n,
        stats,
        contacts,
        calls_during_pause=len(during),
        first_call_after_s=round(
            min(c["at"] for c in api_calls if c["at"] > throttled["at"]) - throttled["at"], 1
        ),
    )


# 6 ---------------------------------------------------------------------------------------------


def test_a_revoked_token_is_refreshed_once_for_all_workers(stack):
    stack.set_faults(latency_ms=20)
    stack.start_worker("w1", concurrency=8)
    stack.start_worker("w2", concurrency=8)
    n = scale(100, 1000)
    first_half = [chat_body(f"718{i:05d}") for i in range(n // 2)]
    second_half = [chat_body(f"718{i:05d}") for i in range(n // 2, n)]
    # Revoke between the two halves: every worker holds the first token by then, and the second
    # half can only be routed after CXone has refused it at least once.
    answers = post_all(stack, first_half)
    wait_routed(stack, len(first_half), 120)
    stack.set_faults(revoke_tokens=True)
    answers += post_all(stack, second_half)
    assert all(r.status_code == 202 for r in answers)
    stats = wait_routed(stack, n, 120)
    assert stats["contacts_routed"] == n
    assert stats["contacts_routed_more_than_once"] == 0
    assert stats["answered_401"] > 0
    assert stats["token_requests"] == 2  # the first token, and one refresh after the revocation
    record("token revoked mid-run", n, stats, [f"718{i:05d}" for i in range(n)])


# 8 ---------------------------------------------------------------------------------------------


def test_failed_routings_are_dead_lettered_and_replayed_through_the_cli(stack):
    stack.start_worker()
    n = scale(5, 50)
    closed = [f"719{i:05d}" for i in range(n)]
    stack.set_faults(closed_contacts=closed)  # CXone answers 404 for these contacts
    answers = post_all(stack, [chat_body(contact) for contact in closed])
    ids = [r.json()["routingId"] for r in answers]
    wait_until(
        lambda: all(stack.routing(rid)["state"] == "failed" for rid in ids), 120, what="404 routings to fail"
    )
    assert "ContactNotFound" in stack.routing(ids[0])["reason"] or "404" in stack.routing(ids[0])["reason"]

    listing = ops(stack, "dead-letters", "list")
    assert all(rid in listing.stdout for rid in ids)
    shown = ops(stack, "dead-letters", "show", ids[0])
    assert f'"contact_id": "{closed[0]}"' in shown.stdout and "404" in shown.stdout

    # The contacts reopen (the sandbox stops answering 404 for them): replay all of them.
    stack.set_faults(closed_contacts=[])
    replayed = ops(stack, "dead-letters", "replay", "--all")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.count("replayed ") == n
    stats = wait_routed(stack, n, 120)
    assert sorted(stats["routings"]) == sorted(closed)
    assert stats["contacts_routed_more_than_once"] == 0
    assert all(stack.routing(rid)["state"] == "routed" for rid in ids)
    assert "empty" in ops(stack, "dead-letters", "list").stdout
    # Replaying again does nothing: the routings are no longer failed (same guard as webhooks).
    again = ops(stack, "dead-letters", "replay", *ids)
    assert again.stdout.count("not replayed") == n


def test_a_routing_that_keeps_failing_stops_after_the_retry_window(stack):
    stack.set_faults(error_rate=1.0)
    # Ready before the webhook: a worker still starting when the 6 s window ends would give up
    # after its first attempt, and this test is about the retries inside the window.
    wait_ready(stack.start_worker(ROUTING_RETRY_WINDOW_SECONDS="6"))
    answer = stack.post_webhook(chat_body("7200001"))
    routing_id = answer.json()["routingId"]
    wait_until(lambda: stack.routing(routing_id)["state"] == "failed", 120, what="give up")
    status = stack.routing(routing_id)
    assert "retry window" in status["reason"] and status["attempts"] >= 2
    listing = ops(stack, "dead-letters", "list")
    assert routing_id in listing.stdout
    purged = ops(stack, "dead-letters", "purge", routing_id)
    assert "purged 1" in purged.stdout
    assert routing_id not in ops(stack, "dead-letters", "list").stdout


def test_stuck_routings_are_listed_with_their_last_error(stack):
    stack.set_faults(error_rate=1.0)
    stack.start_worker()
    routing_id = stack.post_webhook(chat_body("7200002")).json()["routingId"]
    wait_until(lambda: stack.routing(routing_id)["state"] == "retrying", 120, what="retrying")
    listing = ops(stack, "stuck", "--minutes", "0")
    assert routing_id in listing.stdout and "HTTP 5" in listing.stdout
    assert listing.returncode == 1  # something is stuck: scripts can alert on it


# 9 ---------------------------------------------------------------------------------------------

SALES_SUPPORT, BILLING_DISPUTES = 1200001, 1200006  # the sandbox's skill ids for these queues


def skills_put_for(stack: Stack, contact: str) -> list[int]:
    """The skill ids CXone (the sandbox) received for ``contact``, in the order it applied them."""
    return [put["skillId"] for put in stack.sandbox_stats()["routings"].get(contact, [])]


# A held call must not time out in the client while the test drives the order.
@pytest.mark.parametrize("stack", [{"CXONE_READ_TIMEOUT_SECONDS": "90"}], indirect=True)
def test_a_routing_running_when_the_customer_changes_their_mind_finishes_first(stack):
    """Billing's CXone call is slow (held in the sandbox) when sales arrives for the same contact:
    billing finishes, then sales runs; the contact ends in Sales, never the older queue last."""
    contact = "7100001"
    for name in ("w1", "w2", "w3"):
        stack.start_worker(name, concurrency=4)
    stack.set_faults(hold_calls=1)
    billing = stack.post_webhook(chat_body(contact, "billing_dispute", input_id="7100001-billing"))
    billing_id = billing.json()["routingId"]
    wait_until(
        lambda: stack.sandbox_stats(summary=True)["held_calls"] == 1, 60, what="billing's call in CXone"
    )

    sales = stack.post_webhook(chat_body(contact, "sales_inquiry", input_id="7100001-sales"))
    sales_id = sales.json()["routingId"]
    # Another worker takes the sales routing while billing's call is still in CXone: it waits for
    # the contact (without the per-contact rule it would be routed now, and billing land after it).
    wait_until(
        lambda: stack.routing(sales_id)["state"] in ("retrying", "routed"), 60, what="sales to be tried"
    )
    waiting = stack.routing(sales_id)
    stack.set_faults(release_held=True)
    wait_until(
        lambda: {stack.routing(rid)["state"] for rid in (billing_id, sales_id)} == {"routed"},
        60,
        what="both routed",
    )

    assert (billing.status_code, sales.status_code) == (202, 202)
    assert skills_put_for(stack, contact) == [BILLING_DISPUTES, SALES_SUPPORT]  # Sales last
    assert waiting["state"] == "retrying" and billing_id in waiting["lastError"], waiting
    assert waiting["attempts"] == 0  # waiting for the contact is no failed attempt


def test_an_older_routing_not_yet_run_is_superseded_by_the_newer_one(stack):
    """Both webhooks are accepted before any worker runs: the older one is superseded (no call, not
    failed, not stuck, nothing to replay), and a resend of it says so."""
    contact = "7100002"
    billing_body = chat_body(contact, "billing_dispute", input_id="7100002-billing")
    billing_id = stack.post_webhook(billing_body).json()["routingId"]
    sales_id = stack.post_webhook(chat_body(contact, "sales_inquiry", input_id="7100002-sales")).json()[
        "routingId"
    ]
    for name in ("w1", "w2", "w3"):
        stack.start_worker(name, concurrency=4)

    wait_until(lambda: stack.routing(sales_id)["state"] == "routed", 60, what="sales routed")
    wait_until(
        lambda: stack.routing(billing_id)["state"] in ("routed", "failed", "superseded"),
        60,
        what="billing ended",
    )

    older = stack.routing(billing_id)
    assert (older["state"], older["supersededBy"]) == ("superseded", sales_id)
    assert skills_put_for(stack, contact) == [SALES_SUPPORT]
    assert stack.sandbox_stats(summary=True)["api_calls_by_endpoint"]["routing_put"] == 1
    resend = stack.post_webhook(billing_body).json()
    assert (resend["status"], resend["routingId"], resend["supersededBy"]) == (
        "failed",
        billing_id,
        sales_id,
    )
    assert ops(stack, "stuck", "--minutes", "0").returncode == 0
    assert "empty" in ops(stack, "dead-letters", "list").stdout


def ops(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
