"""Metrics, JSON logs and secret hygiene on the real stack: gunicorn, Celery workers, the sandbox.

The secret test runs the stack with distinctive credentials at DEBUG and then searches every log
file, every task message as it sits in Redis, and every Celery event (what Flower shows) for them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path

import pytest
import requests
from celery import Celery
from celery.events import EventReceiver
from prometheus_client.parser import text_string_to_metric_families

from shared import redis_keys
from shared.task_queue import ROUTING_QUEUE
from tests.integration.stack import API_KEY, chat_body, free_port, wait_ready, wait_until

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
FINISHED = ("routed", "failed")


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = requests.get(url, timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


#: What Celery prints on SIGTERM with print(), not logging: the only plain line allowed.
CELERY_SHUTDOWN_NOTICE = re.compile(r"worker: (Warm|Cold) shutdown \(MainProcess\)")


def json_lines(path: Path) -> list[dict]:
    """Every line of a log file, parsed; a line that is not one JSON object fails the test."""
    lines = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip() or CELERY_SHUTDOWN_NOTICE.fullmatch(line.strip()):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"{path.name}:{number} is not a JSON line: {line[:300]!r}")
        assert isinstance(entry, dict), f"{path.name}:{number}: {line[:300]!r}"
        lines.append(entry)
    return lines


def post_and_wait(stack, bodies: list[dict], key: str = API_KEY, timeout: float = 120) -> list[str]:
    ids = []
    for body in bodies:
        response = stack.post_webhook(body, key=key)
        assert response.status_code == 202, response.text
        ids.append(response.json()["routingId"])
    wait_until(
        lambda: all(stack.routing(rid)["state"] in FINISHED for rid in ids),
        timeout,
        what="the routings to finish",
    )
    return ids


# ---------------------------------------------------------------- metrics


def test_worker_and_ingress_metrics_after_routing_contacts(stack):
    port = free_port()
    stack.start_worker("w1", WORKER_METRICS_PORT=str(port))
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    wait_until(lambda: _answers(worker_metrics), 120, what="the worker's metrics port")
    stack.set_faults(closed_contacts=["7300099"])  # CXone answers 404: failed, permanent

    ids = post_and_wait(stack, [chat_body(f"730000{n}") for n in range(5)] + [chat_body("7300099")])
    assert stack.post_webhook(chat_body("7300000")).json()["duplicate"] is True
    assert stack.post_webhook(chat_body("7300098"), key="wrong-key").status_code == 401

    # A routing's state is written just before it is counted: wait for the counts to catch up.
    wait_until(
        lambda: (
            value(scrape(worker_metrics), "router_routings_total", outcome="routed", reason="none") == 5
            and value(scrape(worker_metrics), "router_routings_total", outcome="failed", reason="permanent")
            == 1
        ),
        60,
        what="the counts",
    )
    worker = scrape(worker_metrics)
    assert value(worker, "router_cxone_token_refreshes_total") == 1
    assert value(worker, "router_cxone_request_duration_seconds_count", endpoint="token", status="200") == 1
    routed_calls = sum(
        v
        for (name, labels), v in worker.items()
        if name == "router_cxone_request_duration_seconds_count" and ("endpoint", "routing_queue") in labels
    )
    assert routed_calls == 6
    assert (
        value(worker, "router_cxone_request_duration_seconds_count", endpoint="routing_queue", status="404")
        == 1
    )
    assert value(worker, "router_routing_queue_depth") == 0
    assert value(worker, "router_open_routings") == 0
    assert value(worker, "router_oldest_open_routing_age_seconds") == 0
    assert value(worker, "router_redis_up") == 1
    assert value(worker, "process_resident_memory_bytes") > 0

    # The ingress runs two gunicorn processes: whichever answers the scrape, /metrics sums both.
    for _ in range(4):
        web = scrape(stack.web_url + "/metrics")  # a new connection each time
        assert value(web, "router_webhooks_total", outcome="accepted", reason="none") == len(ids)
    assert value(web, "router_webhooks_total", outcome="duplicate", reason="none") == 1
    assert value(web, "router_webhooks_total", outcome="rejected", reason="unauthorized") == 1
    assert value(web, "router_webhook_duration_seconds_count", outcome="accepted") == len(ids)
    assert not any(name.startswith("router_routings") for name, _ in web)


def test_queued_and_open_routings_are_reported_while_no_worker_takes_them(stack):
    stack.post_webhook(chat_body("7310001"))
    stack.post_webhook(chat_body("7310002"))
    port = free_port()
    # The gauges come from Redis, so any worker reports them: here one that consumes another
    # queue, so the two routings stay queued (as when every routing worker is down).
    worker = stack.start_worker(
        "w-idle", concurrency=2, queues="not-the-routing-queue", WORKER_METRICS_PORT=str(port)
    )
    assert worker.popen.poll() is None
    url = f"http://127.0.0.1:{port}/metrics"
    wait_until(lambda: _answers(url), 120, what="the idle worker's metrics port")
    wait_until(
        lambda: value(scrape(url), "router_oldest_open_routing_age_seconds") >= 1,
        60,
        what="the oldest open routing to age",
    )
    samples = scrape(url)
    assert value(samples, "router_routing_queue_depth") == 2
    assert value(samples, "router_open_routings") == 2


def test_a_second_worker_on_a_taken_metrics_port_warns_and_still_routes(stack):
    port = free_port()
    first = stack.start_worker("w1", WORKER_METRICS_PORT=str(port))
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/metrics"), 120, what="w1's metrics port")
    second = stack.start_worker("w2", WORKER_METRICS_PORT=str(port))
    wait_ready(second)
    warnings = [
        line
        for line in json_lines(second.log_path)
        if line["message"].startswith("worker metrics not served")
    ]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    first.stop()

    ids = post_and_wait(stack, [chat_body(f"732000{n}") for n in range(3)])

    assert all(stack.routing(rid)["state"] == "routed" for rid in ids)


# ---------------------------------------------------------------- JSON logs


def test_every_log_line_of_one_routing_carries_its_ids(stack):
    wait_ready(stack.start_worker("w1"))
    # A CXone outage that lasts until the routing was retried (its token request refused with
    # 503), then ends: the routing is retried at least once before it is routed.
    stack.set_faults(outage_seconds=600)
    response = stack.post_webhook(chat_body("7330001", intent="billing_dispute"))
    assert response.status_code == 202, response.text
    routing_id = response.json()["routingId"]
    wait_until(lambda: stack.routing(routing_id)["state"] == "retrying", 120, what="a retry")
    stack.set_faults(outage_seconds=0)
    wait_until(lambda: stack.routing(routing_id)["state"] in FINISHED, 120, what="the routing to finish")
    assert stack.routing(routing_id)["state"] == "routed"

    web = json_lines(stack.workdir / "web.log")
    worker = json_lines(stack.workdir / "w1.log")
    # gunicorn's access lines are the HTTP requests (this test's own GET /routings/<id> polls among
    # them), not the routing's lines: they name the path, and carry no routing fields.
    about = [
        line
        for line in web + worker
        if line.get("logger") != "gunicorn.access"
        and (line.get("routing_id") == routing_id or routing_id in line["message"])
    ]
    for line in about:
        assert (line.get("routing_id"), line.get("contact_id"), line.get("intent")) == (
            routing_id,
            "7330001",
            "billing_dispute",
        ), line
    messages = [line["message"] for line in about]
    assert "routing queued" in messages  # the webhook (web)
    assert any(m.startswith("retrying in") for m in messages)  # each retry (worker)
    assert "requesting a CXone token" in messages  # the CXone client
    assert any(m.startswith("contact routed to skill") for m in messages)  # the outcome
    assert any("succeeded" in m for m in messages)  # Celery's own line
    assert {line.get("service") for line in about} == {"web", "worker"}
    for line in web + worker:
        assert {"ts", "level", "logger", "message"} <= set(line)


# ---------------------------------------------------------------- secrets


CLIENT_ID, CLIENT_SECRET = "obs-client-7731", "cs-OBSERVABILITY-5e1f9a27"
ACCESS_KEY_ID, ACCESS_KEY_SECRET = "OBSKEYID4410", "aks/OBSERVE+secret=8c2d"
WEBHOOK_KEY = "whk-OBSERVABILITY-3b9e60d1"
CUSTOMER_TEXT = "CUSTOMER-TEXT my card ends 4242 please call 555-0199"
SECRET_ENV = {
    "LOG_LEVEL": "DEBUG",
    "WEBHOOK_API_KEYS": f"{WEBHOOK_KEY},{API_KEY}",
    "CXONE_CLIENT_ID": CLIENT_ID,
    "CXONE_CLIENT_SECRET": CLIENT_SECRET,
    "CXONE_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "CXONE_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
    # The sandbox must accept exactly these credentials.
    "SANDBOX_CLIENT_ID": CLIENT_ID,
    "SANDBOX_CLIENT_SECRET": CLIENT_SECRET,
    "SANDBOX_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "SANDBOX_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
}
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}")


class CeleryEvents:
    """Receives the Celery events Flower would show (task-sent from the ingress, task-received,
    -retried, -succeeded, -failed from workers), in a thread."""

    def __init__(self, broker_url: str):
        self.app = Celery("observability-test", broker=broker_url, set_as_current=False)
        self.events: list[dict] = []
        self.receiver: EventReceiver | None = None  # set by the thread once it is connected
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.app.connection() as connection:
            receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.receiver = receiver
            receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self, redis_client) -> None:
        patterns_before = redis_client.pubsub_numpat()
        self.thread.start()
        wait_until(
            lambda: redis_client.pubsub_numpat() > patterns_before, 60, what="the event receiver to subscribe"
        )

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.thread.join(10)


def _decode_task_messages(raw_messages: list[str]) -> list[str]:
    """Each queued kombu message as text to search: headers (``argsrepr`` is what Flower shows),
    properties and the body, decoded from base64 (whose own text could hide or fake anything)."""
    texts = []
    for raw in raw_messages:
        envelope = json.loads(raw)
        body = base64.b64decode(envelope["body"]).decode("utf-8")
        args, _kwargs, _embed = json.loads(body)
        assert set(args[0]) >= {"routing_id", "contact_id", "intent"}  # really the task message
        assert "argsrepr" in envelope["headers"]
        texts.append(json.dumps({**envelope, "body": body}))
    return texts


@pytest.mark.parametrize("stack", [SECRET_ENV], indirect=True)
def test_no_secret_token_or_customer_text_in_logs_task_messages_or_events(stack):
    client = stack.redis()
    events = CeleryEvents(stack.redis_url)
    events.start(client)
    try:
        chat = {**chat_body("7340001"), "text": CUSTOMER_TEXT}
        input_object = json.loads((PAYLOADS / "cognigy-input-chat.json").read_text())
        input_object.update({"text": CUSTOMER_TEXT, "userInput": {"text": CUSTOMER_TEXT}})
        voice = json.loads((PAYLOADS / "cognigy-input-voice.json").read_text())
        voice["text"] = CUSTOMER_TEXT
        bodies = [chat, input_object, voice, {**chat_body("7340099"), "text": CUSTOMER_TEXT}]
        ids = []
        for n, body in enumerate(bodies):  # the key in either header Cognigy can send
            header = {"X-API-Key": WEBHOOK_KEY} if n % 2 else {"Authorization": f"ApiKey {WEBHOOK_KEY}"}
            response = requests.post(
                stack.web_url + "/webhook/cognigy/route", json=body, headers=header, timeout=10
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["routingId"])
        # Rejections log too: a wrong key, and a body that is not JSON but holds customer words.
        assert stack.post_webhook(chat, key="not-the-key").status_code == 401
        assert (
            requests.post(
                stack.web_url + "/webhook/cognigy/route",
                timeout=10,
                data=f'{{"text": "{CUSTOMER_TEXT}"',
                headers={"X-API-Key": WEBHOOK_KEY, "Content-Type": "application/json"},
            ).status_code
            == 400
        )

        # The task messages as they wait in Redis (what a worker, and Flower, will see).
        queued = _decode_task_messages(client.lrange(ROUTING_QUEUE, 0, -1))
        assert len(queued) == len(ids)

        stack.set_faults(closed_contacts=["7340099"])  # one routing fails (404), logged
        stack.start_worker("w1")
        wait_until(
            lambda: all(stack.routing(rid)["state"] in FINISHED for rid in ids),
            120,
            what="the first routings to finish",
        )
        token = json.loads(client.get(redis_keys.CXONE_TOKEN))["access_token"]
        # A revoked token: a 401, a refresh and a second token, all at DEBUG.
        stack.set_faults(revoke_tokens=True)
        ids.append(
            post_and_wait(stack, [{**chat_body("7340002"), "text": CUSTOMER_TEXT}], key=WEBHOOK_KEY)[0]
        )
        second_token = json.loads(client.get(redis_keys.CXONE_TOKEN))["access_token"]
        assert second_token != token
        wait_until(
            lambda: any(e.get("type") == "task-succeeded" for e in events.events), 60, what="task events"
        )
    finally:
        events.stop()

    states = [stack.routing(rid)["state"] for rid in ids]
    assert states.count("routed") == len(ids) - 1 and states.count("failed") == 1

    logs = {path.name: path.read_text(errors="replace") for path in stack.workdir.glob("*.log")}
    assert {"web.log", "w1.log", "sandbox.log"} <= set(logs)
    assert any('"level": "DEBUG"' in line for line in logs["w1.log"].splitlines())
    event_texts = [json.dumps(event, default=str) for event in events.events]
    assert {"task-sent", "task-received", "task-succeeded"} <= {e["type"] for e in events.events}

    forbidden = {
        "webhook key": WEBHOOK_KEY,
        "test webhook key": API_KEY,
        "client secret": CLIENT_SECRET,
        "access key secret": ACCESS_KEY_SECRET,
        "access token": token,
        "second access token": second_token,
        "customer text": CUSTOMER_TEXT,
        "customer words": "4242 please call",
    }
    places = {
        **{f"log {name}": text for name, text in logs.items()},
        **{f"queued task message {n}": text for n, text in enumerate(queued)},
        **{f"celery event {n}": text for n, text in enumerate(event_texts)},
    }
    for place, text in places.items():
        for what, secret in forbidden.items():
            assert secret not in text, f"{what} found in {place}"
        assert "Bearer " not in text, f"an Authorization header in {place}"
        assert not JWT_LIKE.search(text), f"a JWT-looking string in {place}"


# ---------------------------------------------------------------- helpers


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False
