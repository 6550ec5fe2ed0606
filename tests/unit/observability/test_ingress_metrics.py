"""GET /metrics on the ingress: every webhook answer is counted under its outcome and reason, and timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from prometheus_client.multiprocess import MultiProcessCollector

from ingress import metrics
from ingress.observability import REASON_CLASSES, webhook_outcome
from tests.support.ingress import API_KEYS, MAX_BODY_BYTES, ROUTES_NO_FALLBACK_YAML, WEBHOOK_URL, load_payload
from tests.unit.observability.conftest import parse_samples, sample

GOOD_KEY = {"X-API-Key": API_KEYS[0]}
REPO = Path(__file__).resolve().parents[3]


def _post(client, body, headers=GOOD_KEY, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(WEBHOOK_URL, data=data, content_type=content_type, headers=headers)


def _scrape(client) -> dict:
    response = client.get("/metrics")  # no API key: Prometheus sends none
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse_samples(response.get_data(as_text=True))


def test_metrics_count_an_accepted_a_duplicate_and_every_rejection_reason(make_app, sent):
    app = make_app()
    client = app.test_client()
    unroutable_client = make_app(routes_yaml=ROUTES_NO_FALLBACK_YAML).test_client()
    before = _scrape(client)

    body = load_payload("cognigy-input-chat")
    assert _post(client, body).status_code == 202  # accepted
    assert _post(client, body).json["duplicate"] is True  # duplicate (same inputId)
    assert _post(client, body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert _post(client, body, content_type="text/plain").status_code == 415
    assert _post(client, "x" * (MAX_BODY_BYTES + 1)).status_code == 413
    assert _post(client, "{not json").status_code == 400  # malformed_json
    assert _post(client, load_payload("bad-no-session")).status_code == 400  # invalid
    unknown_intent = {**load_payload("seed-flat"), "intentName": "no_such_intent"}
    assert _post(unroutable_client, unknown_intent).status_code == 422  # unroutable
    sent.fail_with = redis.ConnectionError("Redis down")
    fresh = {**body, "inputId": "another-input", "contactId": "7000002"}
    assert _post(client, fresh).status_code == 503  # unavailable

    after = _scrape(client)

    def delta(**labels: str) -> float:
        return sample(after, "router_webhooks_total", **labels) - sample(
            before, "router_webhooks_total", **labels
        )

    assert delta(outcome="accepted", reason="none") == 1
    assert delta(outcome="duplicate", reason="none") == 1
    for reason in (
        "unauthorized",
        "unsupported_media_type",
        "too_large",
        "malformed_json",
        "invalid",
        "unroutable",
        "unavailable",
    ):
        assert delta(outcome="rejected", reason=reason) == 1, reason
    assert delta(outcome="rejected", reason="error") == 0

    def timed(outcome: str) -> float:
        name = "router_webhook_duration_seconds_count"
        return sample(after, name, outcome=outcome) - sample(before, name, outcome=outcome)

    assert (timed("accepted"), timed("duplicate"), timed("rejected")) == (1, 1, 7)
    assert sample(after, "router_webhook_duration_seconds_bucket", outcome="accepted", le="+Inf") >= 1


def test_metrics_are_off_when_disabled(make_app):
    client = make_app(metrics_enabled=False).test_client()
    assert client.get("/metrics").status_code == 404
    before = (
        metrics.INGRESS_REGISTRY.get_sample_value(
            "router_webhooks_total", {"outcome": "accepted", "reason": "none"}
        )
        or 0
    )
    assert _post(client, load_payload("cognigy-input-chat")).status_code == 202
    after = (
        metrics.INGRESS_REGISTRY.get_sample_value(
            "router_webhooks_total", {"outcome": "accepted", "reason": "none"}
        )
        or 0
    )
    assert after == before


def test_other_endpoints_are_not_counted_as_webhooks(make_app):
    client = make_app().test_client()
    before = _scrape(client)
    client.get("/healthz")
    client.get("/routings/unknown", headers=GOOD_KEY)
    after = _scrape(client)
    webhook_series = [key for key in after if key[0] == "router_webhooks_total"]
    assert all(after[key] == before.get(key, 0) for key in webhook_series)


def test_metrics_show_no_ids_or_customer_data(make_app):
    client = make_app().test_client()
    body = load_payload("cognigy-input-chat")
    _post(client, body)
    text = client.get("/metrics").get_data(as_text=True)
    assert body["data"]["contactId"] not in text
    assert body["sessionId"] not in text


@pytest.mark.parametrize(
    ("status", "view_reason", "body", "expected"),
    [
        (202, None, {"status": "queued"}, ("accepted", "none")),
        (202, None, {"status": "queued", "duplicate": True}, ("duplicate", "none")),
        (401, "signature_invalid", None, ("rejected", "unauthorized")),
        (400, "json_too_deep", None, ("rejected", "malformed_json")),
        (400, "string_too_long", None, ("rejected", "invalid")),
        (503, "duplicate_in_flight", None, ("rejected", "unavailable")),
        # A reason the views may add later falls back on the status; a crash is an "error".
        (413, "some_new_reason", None, ("rejected", "too_large")),
        (500, None, None, ("rejected", "error")),
    ],
)
def test_webhook_outcome_maps_view_reasons_to_metric_reasons(status, view_reason, body, expected):
    assert webhook_outcome(status, view_reason, body) == expected


def test_every_mapped_reason_is_a_declared_label_value():
    assert set(REASON_CLASSES.values()) <= set(metrics.WEBHOOK_REJECTION_REASONS)


#: An ingress process in prometheus_client's multiprocess mode (decided when prometheus_client is
#: imported, hence a process of its own): it answers one webhook and one scrape.
INGRESS_PROCESS = textwrap.dedent(
    """
    import json, sys
    import fakeredis
    from ingress import create_app
    from shared.routing.table import RoutingTable
    from shared.settings import Settings
    from tests.support.ingress import API_KEYS, ROUTES_YAML, load_payload
    from tests.support.send_recorder import SendRecorder

    app = create_app(
        Settings(webhook_api_keys=API_KEYS, prometheus_multiproc_dir=sys.argv[1]),
        routing_table=RoutingTable.parse(ROUTES_YAML, source="test"),
        redis_client=fakeredis.FakeRedis(),
        send_task=SendRecorder(),
    )
    client = app.test_client()
    answer = client.post(
        "/webhook/cognigy/route", json=load_payload("cognigy-input-chat"), headers={"X-API-Key": API_KEYS[0]}
    )
    print(json.dumps({"status": answer.status_code, "scrape": client.get("/metrics").get_data(as_text=True)}))
    """
)


def test_the_ingress_process_creates_only_the_ingress_metrics(tmp_path):
    # Under gunicorn every metric an ingress process creates is written to PROMETHEUS_MULTIPROC_DIR
    # and summed into /metrics: the worker's and the CXone client's metrics must not be created there.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", INGRESS_PROCESS, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    assert answers["status"] == 202
    served = parse_samples(answers["scrape"])
    assert sample(served, "router_webhooks_total", outcome="accepted", reason="none") == 1

    in_directory = {family.name for family in MultiProcessCollector(None, path=str(tmp_path)).collect()}
    assert in_directory == {"router_webhooks", "router_webhook_duration_seconds"}
