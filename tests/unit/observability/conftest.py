"""Fixtures for the observability tests: an ingress app on fakes, and reading metric samples."""

from __future__ import annotations

import dataclasses

import fakeredis
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingress import create_app
from shared.routing.table import RoutingTable
from shared.settings import Settings
from tests.unit.ingress.conftest import API_KEYS, MAX_BODY_BYTES, ROUTES_YAML, SendRecorder


def parse_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format → ``{(sample name, frozenset(labels.items())): value}``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """One value from :func:`parse_samples`, 0 when absent."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def settings() -> Settings:
    return Settings(webhook_api_keys=API_KEYS, max_body_bytes=MAX_BODY_BYTES, routing_status_ttl_seconds=3600)


@pytest.fixture
def sent() -> SendRecorder:
    return SendRecorder()


@pytest.fixture
def make_app(settings, sent):
    """``make_app(routes_yaml=…, **settings_overrides)``: an ingress on fake Redis and a recorder."""

    def make(routes_yaml: str = ROUTES_YAML, **overrides):
        return create_app(
            dataclasses.replace(settings, **overrides),
            routing_table=RoutingTable.parse(routes_yaml, source="test"),
            redis_client=fakeredis.FakeRedis(server=fakeredis.FakeServer()),
            send_task=sent,
        )

    return make
