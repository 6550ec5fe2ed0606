"""Schemathesis over docs/openapi.yaml against the app in-process: requests generated from the
document, valid and invalid, each answer checked against the document (no 5xx, documented
status, body matching its schema, JSON content type; valid requests accepted, invalid rejected)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from flask import g
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from shared.settings import Settings
from tests.support.ingress import ingress_on_fakes

from .conftest import FUZZ_EXAMPLES, LONG_RUN, outcome
from .test_webhook_fuzz import API_KEY, ROUTES, SECRETS

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
EXAMPLES = max(50, FUZZ_EXAMPLES // 15)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


#: An invalid request may be refused with any of the router's refusals, 413 (too large) included.
SCHEMATHESIS_CONFIG_DICT = {
    "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 413, 415, 422]}}
}
SCHEMATHESIS_CONFIG = SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG_DICT)


def _app(secrets: tuple[str, ...] = ()):
    ingress = ingress_on_fakes(
        Settings(
            webhook_api_keys=(API_KEY,),
            webhook_signing_secrets=secrets,
            routing_status_ttl_seconds=3600,
            # Generated requests may ask to wait; nothing routes here, so keep each wait short.
            webhook_max_wait_seconds=0.01,
        ),
        ROUTES,
    )
    app, sent = ingress.app, ingress.sent
    reasons: list = []

    @app.after_request
    def keep_reason(response):
        reasons.append(g.get("rejection_reason"))
        return response

    return app, sent, reasons


def _fuzz(operation, mode, app, sent, reasons):
    """One hypothesis test: ``mode`` requests for ``operation``, each answer checked."""
    checks = [
        *CHECKS,
        schemathesis.checks.positive_data_acceptance
        if mode == GenerationMode.POSITIVE
        else schemathesis.checks.negative_data_rejection,
    ]
    examples = EXAMPLES if operation.method == "post" else max(10, EXAMPLES // 5)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not LONG_RUN,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        before = len(sent.messages)
        response = case.call(app=app, headers={"X-API-Key": API_KEY})
        case.validate_response(response, checks=checks)
        outcome("schemathesis", response.status_code, reasons[-1])
        if response.status_code != 202:
            assert len(sent.messages) == before

    return run


def test_schemathesis_run_over_the_document():
    schema = schemathesis.openapi.from_path(SPEC_PATH, config=SCHEMATHESIS_CONFIG)
    # Valid requests go to an ingress without signing secrets, where the (made-up) signature
    # headers are ignored, so their bodies are what gets tested; invalid ones go to one with
    # secrets, where a signature header that breaks the document is refused as it must be.
    apps = {GenerationMode.POSITIVE: _app(), GenerationMode.NEGATIVE: _app(SECRETS)}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.method == "post":  # the other operations have no input to make invalid
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            _fuzz(operation, mode, *apps[mode])()
