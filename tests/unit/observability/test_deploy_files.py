"""The example alert rules and Grafana dashboard parse, and use only metrics, labels and label values
that the metrics modules define (ingress/metrics.py, worker/metrics.py, shared/cxone/metrics.py): a
renamed metric must not leave a silently empty panel or an alert that can never fire."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from ingress import metrics as ingress_metrics
from shared.cxone import metrics as cxone_metrics
from worker import metrics as worker_metrics

REPO = Path(__file__).resolve().parents[3]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "router-dashboard.json"

METRIC_MODULES = (ingress_metrics, worker_metrics, cxone_metrics)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
#: Label values the code emits, for the labels whose values are a closed set.
LABEL_VALUES = {
    ("router_webhooks", "outcome"): set(ingress_metrics.WEBHOOK_OUTCOMES),
    ("router_webhooks", "reason"): {ingress_metrics.NO_REASON, *ingress_metrics.WEBHOOK_REJECTION_REASONS},
    ("router_webhook_duration_seconds", "outcome"): set(ingress_metrics.WEBHOOK_OUTCOMES),
    ("router_routings", "outcome"): set(worker_metrics.ROUTING_OUTCOMES),
    ("router_routings", "reason"): {
        worker_metrics.NO_REASON,
        *worker_metrics.ROUTING_RETRY_CAUSES,
        *worker_metrics.ROUTING_FAILURE_REASONS,
    },
    ("router_cxone_request_duration_seconds", "endpoint"): set(cxone_metrics.CXONE_ENDPOINTS),
    ("router_cxone_credentials_rejected", "error"): set(cxone_metrics.CREDENTIALS_ERRORS),
}

SELECTOR = re.compile(r"\b(router_[a-z0-9_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def defined_series() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every series name the metrics modules can expose → (metric family, label names)."""
    series: dict[str, tuple[str, tuple[str, ...]]] = {}
    attributes = [value for module in METRIC_MODULES for value in vars(module).values()]
    for attribute in attributes:
        if isinstance(attribute, MetricWrapperBase):
            family = attribute._name  # noqa: SLF001 - prometheus_client keeps it private
            labels = tuple(attribute._labelnames)  # noqa: SLF001
            kind = attribute._type  # noqa: SLF001
            assert kind is not None, f"{family} has no metric type"  # every concrete metric class sets one
            for suffix in SUFFIXES[kind]:
                series[family + suffix] = (family, labels + (("le",) if suffix == "_bucket" else ()))
    for collector in (
        worker_metrics.RoutingStateCollector(client=None),
        cxone_metrics.CXonePausesCollector(client=None),
    ):
        for family in collector.describe():
            series[family.name] = (family.name, ())
    return series


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def all_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_exprs()


def test_the_alert_rules_parse_and_each_has_what_an_operator_needs():
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "RouterRoutingsStuck",
        "RouterFailureRatioHigh",
        "RouterCXoneThrottling",
        "RouterWorkerDown",
        "RouterQueueGrowing",
        "RouterCXoneCredentialsRejected",
    } <= names
    for rule in rules:
        assert rule["expr"].strip() and rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_stuck_alert_fires_after_five_minutes_of_the_oldest_open_routing():
    (stuck,) = [rule for rule in alert_rules() if rule["alert"] == "RouterRoutingsStuck"]
    assert re.fullmatch(r"max\(router_oldest_open_routing_age_seconds\) > 300", stuck["expr"].strip())


def test_the_worker_down_alert_uses_the_worker_scrape_job():
    scrape = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in scrape["scrape_configs"]}
    (down,) = [rule for rule in alert_rules() if rule["alert"] == "RouterWorkerDown"]
    job = re.search(r'up\{job="([^"]+)"\}', down["expr"]).group(1)
    assert job in jobs
    assert scrape["rule_files"] == [ALERTS.name]


def test_the_dashboard_parses_and_every_panel_queries_something():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
    assert {
        "router_webhooks_total",
        "router_routings_total",
        "router_cxone_request_duration_seconds_bucket",
        "router_routing_queue_depth",
        "router_oldest_open_routing_age_seconds",
    } <= {match.group(1) for expr in dashboard_exprs() for match in SELECTOR.finditer(expr)}


@pytest.mark.parametrize("expr", all_exprs())
def test_every_metric_label_and_label_value_used_is_defined(expr):
    series = defined_series()
    used_labels: set[str] = set()
    for match in SELECTOR.finditer(expr):
        name, selector = match.group(1), match.group(2) or ""
        assert name in series, f"{name} is not defined in any metrics module"
        family, labels = series[name]
        used_labels.update(labels)
        for label, _operator, value in MATCHER.findall(selector):
            assert label in labels, f"{name} has no label {label!r}"
            allowed = LABEL_VALUES.get((family, label))
            if allowed is not None:
                for alternative in value.split("|"):
                    assert alternative in allowed, f"{name}{{{label}}} is never {alternative!r}"
    for grouping in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in grouping.split(","))):
            assert label in used_labels, f"grouping by {label!r}, which no metric here has"
