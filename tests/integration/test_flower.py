"""Flower, as operators run it (scripts/run-flower): behind basic auth, showing the routings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.integration.stack import REPO, chat_body, free_port, wait_until

FLOWER_AUTH = ("ops", "flower-test-password")


def test_flower_refuses_to_start_without_basic_auth(stack):
    env = stack.env(FLOWER_PORT=str(free_port()), PATH=f"{Path(sys.executable).parent}:{stack.env()['PATH']}")
    env.pop("FLOWER_BASIC_AUTH", None)
    result = subprocess.run(
        ["scripts/run-flower"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_flower_shows_routed_tasks_only_to_authenticated_operators(stack):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # scripts/run-flower runs `celery` from PATH: the one beside this interpreter.
    path = f"{Path(sys.executable).parent}:{stack.env()['PATH']}"
    stack.spawn(
        "flower",
        ["scripts/run-flower"],
        stack.env(FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=":".join(FLOWER_AUTH), PATH=path),
    )
    wait_until(lambda: _status(url + "/", None) == 401, 120, what="Flower to answer")
    stack.start_worker()
    routing_id = stack.post_webhook(chat_body("flower-contact")).json()["routingId"]
    wait_until(lambda: stack.routing(routing_id)["state"] == "routed", 120, what="routed")

    def routed_task_visible() -> bool:
        response = requests.get(url + "/api/tasks", auth=FLOWER_AUTH, timeout=5)
        return any(routing_id in str(task.get("args")) for task in response.json().values())

    wait_until(routed_task_visible, 120, what="Flower to show the task")
    tasks = requests.get(url + "/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
    (task,) = [t for t in tasks.values() if routing_id in str(t.get("args"))]
    assert task["name"] == "router.route_contact"
    assert task["state"] == "SUCCESS"
    # What Flower shows carries ids and the decision, never the customer's words or a secret.
    assert "customer words" not in str(task)
    assert "sandbox-client-secret" not in str(task)
    # Without credentials, nothing: not the UI, not the API.
    assert _status(url + "/api/tasks", None) == 401
    assert _status(url + "/api/tasks", ("ops", "wrong")) == 401


def _status(url: str, auth) -> int | None:
    try:
        return requests.get(url, auth=auth, timeout=3).status_code
    except requests.RequestException:
        return None
