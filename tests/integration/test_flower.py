"""Flower, as operators run it (scripts/run-flower): behind basic auth, showing why routings are stuck.

Real processes throughout: the stack's gunicorn, Celery workers and CXone sandbox, and Flower started
by scripts/run-flower. What an operator sees is read from Flower's own API: ``/api/tasks`` (raw
task state) and ``/tasks/datatable`` (the rows of its task list, after our formatter).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from shared.settings import load_settings
from shared.task_queue import make_celery
from tests.integration.stack import REPO, SANDBOX_CREDENTIALS, Stack, chat_body, free_port, wait_until

FLOWER_AUTH = ("ops", "flower-test-password")
#: Nothing of this may reach Flower: the customer's words (chat_body sends them), credentials,
#: the webhook key, and CXone's own error messages (the sandbox's outage and not-found texts).
NEVER_IN_FLOWER = (
    "customer words",
    *SANDBOX_CREDENTIALS.values(),
    "integration-test-key",
    "Bearer",
    "sandbox outage",
    "was not found",
)


class Flower:
    """A Flower started by scripts/run-flower for ``stack``, and what an operator asks it."""

    def __init__(self, stack: Stack):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        # scripts/run-flower runs `celery` from PATH: the one beside this interpreter.
        path = f"{Path(sys.executable).parent}:{stack.env()['PATH']}"
        stack.spawn(
            "flower",
            ["scripts/run-flower"],
            stack.env(FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=":".join(FLOWER_AUTH), PATH=path),
        )
        wait_until(lambda: _status(self.url + "/", None) == 401, 60, what="Flower to answer")
        self._wait_for_its_event_receiver(stack)

    def _wait_for_its_event_receiver(self, stack: Stack) -> None:
        """Flower answers HTTP before its event receiver has subscribed, and an event sent before
        that is never seen (Redis pub/sub keeps nothing). So send a probe event until Flower shows
        it: from then on it hears the stack's task-sent events."""
        probe = f"flower-probe-{uuid.uuid4()}"
        celery = make_celery(load_settings({"REDIS_URL": stack.env()["REDIS_URL"]}))
        with celery.connection_for_write() as connection:
            dispatcher = celery.events.Dispatcher(connection)

            def sees_probe() -> bool:
                dispatcher.send("task-sent", uuid=probe, name="flower-probe")
                info = requests.get(f"{self.url}/api/task/info/{probe}", auth=FLOWER_AUTH, timeout=5)
                return info.status_code == 200

            wait_until(sees_probe, 60, what="Flower's event receiver to hear events")
            dispatcher.close()

    def tasks(self, **params: str) -> dict[str, dict]:
        """``GET /api/tasks``: every task Flower knows, by task id."""
        response = requests.get(self.url + "/api/tasks", params=params, auth=FLOWER_AUTH, timeout=5)
        response.raise_for_status()
        return response.json()

    def task_of(self, routing_id: str) -> tuple[str, dict]:
        """The task id and state of ``routing_id``'s task, found as an operator would (by search)."""
        found = self.tasks(search=f"args:{routing_id}")
        assert len(found) == 1, found
        return next(iter(found.items()))

    def shows(self, routing_id: str, predicate) -> bool:
        """Whether Flower knows ``routing_id``'s task and ``predicate(task)`` holds."""
        found = self.tasks(search=f"args:{routing_id}")
        return len(found) == 1 and bool(predicate(next(iter(found.values()))))

    def rows(self, search: str = "") -> list[dict]:
        """The rows of Flower's task list, as its page asks for them (newest first)."""
        form = {
            "draw": "1",
            "start": "0",
            "length": "100",
            "search[value]": search,
            "order[0][column]": "0",
            "order[0][dir]": "desc",
            "columns[0][data]": "received",
        }
        response = requests.post(self.url + "/tasks/datatable", data=form, auth=FLOWER_AUTH, timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def revoke(self, task_id: str, terminate: bool = False) -> None:
        """Flower's "Revoke" button (``terminate``: its "Terminate" button)."""
        response = requests.post(
            f"{self.url}/api/task/revoke/{task_id}",
            data={"terminate": "true" if terminate else "false"},
            auth=FLOWER_AUTH,
            timeout=10,
        )
        response.raise_for_status()


def test_flower_refuses_to_start_without_basic_auth(stack):
    env = stack.env(FLOWER_PORT=str(free_port()), PATH=f"{Path(sys.executable).parent}:{stack.env()['PATH']}")
    env.pop("FLOWER_BASIC_AUTH", None)
    result = subprocess.run(
        ["scripts/run-flower"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_flower_shows_routed_tasks_only_to_authenticated_operators(stack):
    flower = Flower(stack)
    stack.start_worker()
    routing_id = stack.post_webhook(chat_body("7420001")).json()["routingId"]
    wait_until(lambda: stack.routing(routing_id)["state"] == "routed", 120, what="routed")

    wait_until(lambda: flower.shows(routing_id, lambda t: t["state"] == "SUCCESS"), 120, what="SUCCESS")
    _, task = flower.task_of(routing_id)
    assert task["name"] == "router.route_contact"
    assert not [text for text in NEVER_IN_FLOWER if text in json.dumps(task)]
    # Without credentials, nothing: not the UI, not the API.
    assert _status(flower.url + "/api/tasks", None) == 401
    assert _status(flower.url + "/api/tasks", ("ops", "wrong")) == 401


def test_flower_says_why_a_routing_retries_and_why_one_failed(stack):
    flower = Flower(stack)
    stack.start_worker()
    stack.set_faults(outage_seconds=300, closed_contacts=["7000202"])
    retrying = stack.post_webhook(chat_body("7000201")).json()["routingId"]

    def retry_reason_shown(task: dict) -> bool:
        return str(task.get("exception")).startswith("retry in ") and task["retries"] >= 1

    wait_until(lambda: flower.shows(retrying, retry_reason_shown), 60, what="a retry with its reason")
    _, task = flower.task_of(retrying)
    # e.g. "retry in 2.0 s: CXone answered 503 (outage) on token": when, and why, in words.
    assert " s: CXone answered 503 (outage) on " in task["exception"], task["exception"]
    assert task["eta"]  # the next attempt
    # The operator's searches: one contact, and everything still retrying.
    assert list(flower.tasks(search="args:7000201")) == [flower.task_of(retrying)[0]]
    in_retry = flower.tasks(search="state:RETRY OR state:RECEIVED")
    assert flower.task_of(retrying)[0] in in_retry
    # The task list's row: the routing in words, and the same reason.
    (row,) = flower.rows(search="args:7000201")
    assert row["args"].startswith("contact 7000201 → Sales Support · sales_inquiry · digital · routing ")
    assert row["exception"].startswith("retry in ")

    stack.set_faults(outage_seconds=0)
    failing = stack.post_webhook(chat_body("7000202")).json()["routingId"]
    wait_until(lambda: stack.routing(failing)["state"] == "failed", 60, what="the closed contact to fail")
    wait_until(lambda: flower.shows(failing, lambda t: t["state"] == "FAILURE"), 30, what="FAILURE")
    _, task = flower.task_of(failing)
    assert task["exception"] == "failed: CXone answered 404 (not found) on routing_queue; dead-lettered"
    wait_until(lambda: flower.shows(retrying, lambda t: t["state"] == "SUCCESS"), 60, what="routed after all")

    shown = json.dumps([flower.tasks(), flower.rows()])
    assert not [text for text in NEVER_IN_FLOWER if text in shown]


def test_a_revoke_in_flower_fails_the_routing_for_good(stack):
    flower = Flower(stack)
    stack.start_worker(ROUTING_MAX_COUNTDOWN_SECONDS="5")
    stack.set_faults(outage_seconds=300)
    revoked = {
        stack.post_webhook(chat_body(contact)).json()["routingId"]: terminate
        for contact, terminate in (("7000301", False), ("7000302", True))
    }
    for routing_id, terminate in revoked.items():
        wait_until(lambda rid=routing_id: flower.shows(rid, lambda t: t["retries"] >= 1), 60, what="a retry")
        flower.revoke(flower.task_of(routing_id)[0], terminate=terminate)

    for routing_id in revoked:
        # The worker discards the task when its countdown is due, and fails the routing.
        wait_until(lambda rid=routing_id: stack.routing(rid)["state"] == "failed", 60, what="failed")
        assert stack.routing(routing_id)["reason"] == "revoked by an operator"
        wait_until(
            lambda rid=routing_id: flower.shows(
                rid, lambda t: t["exception"] == "failed: revoked by an operator; dead-lettered"
            ),
            30,
            what="Flower to say why",
        )
        assert flower.task_of(routing_id)[1]["state"] == "FAILURE"
        # Final: not among the open routings the orphan sweeper looks at.
        assert stack.redis().zscore("router:routings:open", routing_id) is None
    listing = _ops(stack, "dead-letters", "list").stdout
    assert all(routing_id in listing for routing_id in revoked)

    # CXone is back: another routing goes through, the revoked ones stay failed, never moved.
    stack.set_faults(outage_seconds=0)
    other = stack.post_webhook(chat_body("7000303")).json()["routingId"]
    wait_until(lambda: stack.routing(other)["state"] == "routed", 60, what="another routing")
    assert set(stack.sandbox_stats()["routings"]) == {"7000303"}
    assert all(stack.routing(routing_id)["state"] == "failed" for routing_id in revoked)

    # An operator changes their mind: the replay goes through like any dead letter's.
    first = next(iter(revoked))
    replayed = _ops(stack, "dead-letters", "replay", first)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    wait_until(lambda: stack.routing(first)["state"] == "routed", 60, what="the replay to route")
    assert set(stack.sandbox_stats()["routings"]) == {"7000303", "7000301"}


def test_a_revoke_sent_while_no_worker_runs_still_holds(stack):
    flower = Flower(stack)
    routing_id = stack.post_webhook(chat_body("7000401")).json()["routingId"]
    # Flower knows the task from its task-sent event; no worker runs to hear the revoke.
    wait_until(lambda: flower.shows(routing_id, lambda t: True), 30, what="Flower to see the task")
    flower.revoke(flower.task_of(routing_id)[0])

    stack.start_worker()
    wait_until(lambda: stack.routing(routing_id)["state"] == "failed", 60, what="revoked → failed")
    assert stack.routing(routing_id)["reason"] == "revoked by an operator"
    other = stack.post_webhook(chat_body("7000402")).json()["routingId"]
    wait_until(lambda: stack.routing(other)["state"] == "routed", 60, what="another routing")
    stats = stack.sandbox_stats()
    assert set(stats["routings"]) == {"7000402"}
    assert stats["api_calls_by_endpoint"]["routing_put"] == 1  # none for the revoked contact
    wait_until(
        lambda: flower.shows(routing_id, lambda t: t["state"] == "FAILURE"), 30, what="FAILURE in Flower"
    )
    assert flower.task_of(routing_id)[1]["exception"] == "failed: revoked by an operator; dead-lettered"


def _ops(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """``python -m ops …`` with the stack's settings."""
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _status(url: str, auth) -> int | None:
    try:
        return requests.get(url, auth=auth, timeout=3).status_code
    except requests.RequestException:
        return None


def test_flower_shows_a_routing_waiting_for_a_call_slot_not_a_retry_storm(stack):
    flower = Flower(stack)
    # Two calls a minute: the first routing spends both (the skill lookup, then its PUT).
    stack.start_worker(CXONE_RATE_LIMIT_PER_MINUTE="2")
    first = stack.post_webhook(chat_body("7430001")).json()["routingId"]
    wait_until(lambda: stack.routing(first)["state"] == "routed", 120, what="the first routed")

    waiting = stack.post_webhook(chat_body("7430002")).json()["routingId"]

    # Its task ended (acked: nothing held in the worker) saying why and since when, once.
    wait_until(lambda: flower.shows(waiting, lambda t: t["state"] == "SUCCESS"), 120, what="parked")
    _, task = flower.task_of(waiting)
    assert "waiting for a CXone call slot since" in task["result"], task
    assert "position 1 in the backlog" in task["result"], task
    assert task["retries"] == 0
    status = stack.routing(waiting)
    assert status["state"] == "waiting" and status["waitingSince"], status
    client = stack.redis()
    try:
        assert client.zscore("router:backlog", waiting) is not None
    finally:
        client.close()
