"""Fixtures for the observability tests: an ingress app on fakes, and reading metric samples."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import Settings
from tests.support.ingress import ROUTES_YAML, ingress_on_fakes, ingress_settings


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
    return ingress_settings()


@pytest.fixture
def make_app(settings, sent):
    """``make_app(routes_yaml=…, **settings_overrides)``: an ingress on fake Redis and ``sent``."""

    def make(routes_yaml: str = ROUTES_YAML, **overrides):
        return ingress_on_fakes(dataclasses.replace(settings, **overrides), routes_yaml, sent=sent).app

    return make
