"""docs/openapi.yaml against the service: real answers match the documented schemas, every
documented answer is produced, and the example payloads agree with the request schema."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
import redis
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shared.routing.records import RoutingStatusStore
from shared.settings import Settings
from tests.support.ingress import PAYLOADS, ingress_on_fakes, load_payload

from .conftest import API_KEY, ROUTES_NO_FALLBACK_YAML, ROUTES_YAML, SECRETS, Edge

SPEC_PATH = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
SPEC_URI = "urn:cognigy-cxone-router:openapi"
REGISTRY = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validator_at(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=REGISTRY)


def response_validator(path: str, method: str, status: int) -> Draft202012Validator:
    """The JSON schema documented for ``status`` of ``method path`` (following a response $ref)."""
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, not documented"
    response = responses[str(status)]
    if "$ref" in response:
        pointer = response["$ref"].lstrip("#")
    else:
        pointer = _pointer("paths", path, method, "responses", str(status))
    return validator_at(pointer + _pointer("content", "application/json", "schema"))


REQUEST_SCHEMA = validator_at(_pointer("components", "schemas", "WebhookBody"))


def test_the_document_is_valid_openapi_3_1():
    import schemathesis

    schema = schemathesis.openapi.from_path(SPEC_PATH)
    operations = {
        (op.method.upper(), op.path) for op in (result.ok() for result in schema.get_all_operations())
    }
    assert operations == {
        ("POST", "/webhook/cognigy/route"),
        ("GET", "/routings/{routingId}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    for schema_part in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema_part)  # raises SchemaError, naming the problem


# ------------------------------------------------------------------------- real answers

WEBHOOK, ROUTING, HEALTHZ, READYZ = ("/webhook/cognigy/route", "/routings/{routingId}", "/healthz", "/readyz")
METHODS = {WEBHOOK: "post", ROUTING: "get", HEALTHZ: "get", READYZ: "get"}
KEY = {"X-API-Key": API_KEY}


def _dead_redis_edge(make_edge) -> Edge:
    """An ingress whose Redis refuses every command."""
    edge = make_edge()
    server = fakeredis.FakeServer()
    server.connected = False
    return Edge(
        **vars(ingress_on_fakes(edge.settings, ROUTES_YAML, redis_client=fakeredis.FakeRedis(server=server)))
    )


def _routing_status(make_edge):
    edge = make_edge()
    routing_id = edge.post(load_payload("cognigy-input-voice")).get_json()["routingId"]
    return edge.client.get(f"/routings/{routing_id}", headers=KEY)


def _publish_fails(make_edge):
    edge = make_edge()
    edge.sent.fail_with = redis.ConnectionError("broker gone")
    return edge.post(load_payload("seed-flat"))


def _duplicate(make_edge):
    edge = make_edge()
    edge.post(load_payload("cognigy-input-chat"))
    return edge.post(load_payload("cognigy-input-chat"))


def _duplicate_after(settle: Callable[[RoutingStatusStore, str], object]) -> Callable:
    """A resend answered after the first routing moved on (``settle(store, routing_id)``)."""

    def scenario(make_edge):
        edge = make_edge()
        routing_id = edge.post(load_payload("cognigy-input-chat")).get_json()["routingId"]
        settle(RoutingStatusStore(edge.redis, 3600), routing_id)
        return edge.post(load_payload("cognigy-input-chat"))

    return scenario


def _waited(settle: Callable[[RoutingStatusStore, dict], object] | None, url: str = "?wait=5", headers=None):
    """A webhook that waits (``url``'s query, ``headers``), answered after ``settle(store, task
    message)`` plays the worker (None: nobody does, and the time runs out)."""

    def scenario(make_edge):
        edge = make_edge()
        waiter = edge.app.extensions["ingress"].waiter
        out: list = []
        thread = threading.Thread(
            target=lambda: out.append(edge.post(load_payload("cognigy-input-chat"), headers=headers, url=url))
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not (edge.sent.messages and waiter.waiting_count()) and time.monotonic() < deadline:
            time.sleep(0.005)
        if settle is not None:
            settle(RoutingStatusStore(edge.redis, 3600), edge.sent.messages[0])
        thread.join(10)
        waiter.stop()
        return out[0]

    return scenario


def _superseded_status(make_edge):
    edge = make_edge()
    routing_id = edge.post(load_payload("cognigy-input-chat")).get_json()["routingId"]
    RoutingStatusStore(edge.redis, 3600).mark_superseded(routing_id, "a-newer-routing")
    return edge.client.get(f"/routings/{routing_id}", headers=KEY)


#: name -> (path, expected status, how to get the answer from a ``make_edge`` fixture)
SCENARIOS: dict[str, tuple[str, int, Callable]] = {
    "queued-chat": (WEBHOOK, 202, lambda make: make().post(load_payload("cognigy-input-chat"))),
    "queued-voice": (WEBHOOK, 202, lambda make: make().post(load_payload("cognigy-input-voice"))),
    "queued-fallback-no-intent": (WEBHOOK, 202, lambda make: make().post({"sessionId": "7000001"})),
    "duplicate": (WEBHOOK, 202, _duplicate),
    "duplicate-retrying": (
        WEBHOOK,
        202,
        _duplicate_after(lambda store, rid: store.mark_retrying(rid, "HTTP 503", time.time() + 2)),
    ),
    "duplicate-routed": (WEBHOOK, 202, _duplicate_after(lambda store, rid: store.mark_routed(rid, 1203344))),
    "duplicate-failed": (
        WEBHOOK,
        202,
        _duplicate_after(lambda store, rid: store.mark_failed(rid, "HTTP 404", {})),
    ),
    "duplicate-superseded": (
        WEBHOOK,
        202,
        _duplicate_after(lambda store, rid: store.mark_superseded(rid, "a-newer-routing")),
    ),
    "waited-routed": (
        WEBHOOK,
        200,
        _waited(lambda store, task: store.mark_routed(task["routing_id"], 1200001)),
    ),
    "waited-failed": (
        WEBHOOK,
        200,
        _waited(lambda store, task: store.mark_failed(task["routing_id"], "CXone answered 404", task)),
    ),
    "waited-prefer-routed": (
        WEBHOOK,
        200,
        _waited(
            lambda store, task: store.mark_routed(task["routing_id"], 1200001),
            url="",
            headers={"Prefer": "respond-async, wait=5"},
        ),
    ),
    "waited-time-up": (
        WEBHOOK,
        202,
        _waited(
            lambda store, task: store.mark_retrying(task["routing_id"], "CXone answered 503", time.time()),
            url="?wait=0.2",
        ),
    ),
    "waited-routed-by-read-back": (
        WEBHOOK,
        200,
        _waited(
            lambda store, task: store.mark_routed(
                task["routing_id"],
                1200001,
                confirmed_by="contact read-back",
                read_back={"status": "open", "routingQueueId": "rq-1", "assignee": "4242", "conclusion": "x"},
            )
        ),
    ),
    "duplicate-failed-by-read-back": (
        WEBHOOK,
        202,
        _duplicate_after(
            lambda store, rid: store.mark_failed(
                rid,
                "closed",
                {},
                confirmed_by="contact read-back",
                read_back={"found": False, "conclusion": "x"},
            )
        ),
    ),
    "bad-wait": (WEBHOOK, 400, lambda make: make().post({"sessionId": "1"}, url="?wait=soon")),
    "malformed-json": (WEBHOOK, 400, lambda make: make().post("{nope")),
    "too-deep": (WEBHOOK, 400, lambda make: make().post("[" * 40 + "]" * 40)),
    "string-too-long": (WEBHOOK, 400, lambda make: make().post({"sessionId": "1", "note": "x" * 8001})),
    "lone-surrogate": (WEBHOOK, 400, lambda make: make().post(b'{"sessionId": "\\ud800"}')),
    "invalid-fields": (WEBHOOK, 400, lambda make: make().post(load_payload("bad-confidence"))),
    "no-contact": (WEBHOOK, 400, lambda make: make().post(load_payload("bad-no-session"))),
    "not-a-contact-id": (
        WEBHOOK,
        400,
        lambda make: make().post({"sessionId": "7000001", "data": {"contactId": "../routing-queue"}}),
    ),
    "no-key": (WEBHOOK, 401, lambda make: make().post({}, headers={"X-API-Key": ""})),
    "bad-signature": (
        WEBHOOK,
        401,
        lambda make: make(webhook_signing_secrets=SECRETS).post(
            {"sessionId": "1"}, headers={"X-Signature-Timestamp": "1", "X-Signature": "v1=00"}
        ),
    ),
    "missing-signature": (
        WEBHOOK,
        401,
        lambda make: make(webhook_signing_secrets=SECRETS, webhook_signature_required=True).post(
            {"sessionId": "1"}
        ),
    ),
    "too-large": (WEBHOOK, 413, lambda make: make(max_body_bytes=1024).post({"pad": "x" * 2000})),
    "not-json": (WEBHOOK, 415, lambda make: make().post("sessionId=1", content_type="text/plain")),
    "unroutable": (
        WEBHOOK,
        422,
        lambda make: make(routes_yaml=ROUTES_NO_FALLBACK_YAML).post(
            {"sessionId": "1", "intent": "lost_luggage"}
        ),
    ),
    "redis-down": (WEBHOOK, 503, _publish_fails),
    "status-routed": (ROUTING, 200, _routing_status),
    "status-superseded": (ROUTING, 200, _superseded_status),
    "status-no-key": (ROUTING, 401, lambda make: make().client.get("/routings/abc")),
    "status-unknown": (ROUTING, 404, lambda make: make().client.get("/routings/abc", headers=KEY)),
    "status-redis-down": (
        ROUTING,
        503,
        lambda make: _dead_redis_edge(make).client.get("/routings/abc", headers=KEY),
    ),
    "healthz": (HEALTHZ, 200, lambda make: make().client.get("/healthz")),
    "readyz": (READYZ, 200, lambda make: make().client.get("/readyz")),
    "readyz-redis-down": (READYZ, 503, lambda make: _dead_redis_edge(make).client.get("/readyz")),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_real_answers_match_the_documented_schema(make_edge, name):
    path, expected_status, scenario = SCENARIOS[name]
    method = METHODS[path]

    response = scenario(make_edge)

    assert response.status_code == expected_status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    errors = sorted(response_validator(path, method, response.status_code).iter_errors(body), key=str)
    assert not errors, f"{body} does not match the schema: {[e.message for e in errors]}"
    headers = _resolve(SPEC["paths"][path][method]["responses"][str(expected_status)]).get("headers", {})
    if "Retry-After" in headers:
        assert response.headers["Retry-After"] == "1"
    if name in ("no-key", "status-no-key"):
        assert response.headers["WWW-Authenticate"] == "ApiKey"
    if name == "waited-prefer-routed":
        assert response.headers["Preference-Applied"] == "wait=5"


def _resolve(node: dict) -> dict:
    """Follow ``$ref`` (``#/components/responses/…``) within the document."""
    while "$ref" in node:
        target = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def test_every_documented_answer_is_produced_by_a_scenario():
    documented = {
        (path, method, int(status))
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }
    covered = {(path, METHODS[path], status) for path, status, _ in SCENARIOS.values()}

    assert documented == covered


# ------------------------------------------------------------------------- request schema


@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("*.json")))
def test_every_example_payload_agrees_with_the_request_schema(make_edge, name):
    payload = load_payload(name)
    errors = [e.message for e in REQUEST_SCHEMA.iter_errors(payload)]

    answer = make_edge().post(payload).status_code

    if name.startswith("bad-"):  # the documented negative examples
        assert errors, f"{name} should not match the request schema"
        assert answer == 400
    else:
        assert not errors, f"{name}: {errors}"
        assert answer == 202


@pytest.mark.parametrize("name", ["cognigyInputObject", "intentsList", "flatIntentName"])
def test_the_documents_own_examples_are_valid_and_queued(make_edge, name):
    example = SPEC["paths"]["/webhook/cognigy/route"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ][name]["value"]

    assert not list(REQUEST_SCHEMA.iter_errors(example))
    assert make_edge().post(example).status_code == 202


# ------------------------------------------------------------------------- schemathesis


def _schemathesis_app(secrets: tuple[str, ...] = ()):
    settings = Settings(
        webhook_api_keys=(API_KEY,),
        webhook_signing_secrets=secrets,
        routing_status_ttl_seconds=3600,
        # Generated requests may ask to wait; nothing routes here, so keep each wait short.
        webhook_max_wait_seconds=0.01,
    )
    return ingress_on_fakes(settings, ROUTES_YAML).app


SCHEMATHESIS_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


#: An invalid request may be refused with any of the router's refusals, 413 (too large) included.
SCHEMATHESIS_CONFIG_DICT = {
    "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 413, 415, 422]}}
}


def _schemathesis_test(operation, mode, app, seen: dict[str, int]):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    checks = [getattr(schemathesis.checks, name) for name in SCHEMATHESIS_CHECKS]
    checks.append(
        schemathesis.checks.positive_data_acceptance
        if mode.name == "POSITIVE"
        else schemathesis.checks.negative_data_rejection
    )

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(app=app, headers={"X-API-Key": API_KEY})
        case.validate_response(response, checks=checks)
        key = f"{mode.name.lower()} {operation.method.upper()} {operation.path} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1

    return run


def test_schemathesis_finds_no_server_error_or_undocumented_answer():
    """Schemathesis generates requests from the document (valid and invalid ones) and checks
    every answer: no 5xx, status documented, body matching its schema, JSON content type,
    and schema-valid requests accepted."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    config = SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG_DICT)
    schema = schemathesis.openapi.from_path(SPEC_PATH, config=config)
    # Valid requests go to an ingress without signing secrets (the made-up signature headers are
    # ignored, so the bodies are tested); invalid ones to one with secrets, where a signature
    # header that breaks the document must be refused.
    apps = {GenerationMode.POSITIVE: _schemathesis_app(), GenerationMode.NEGATIVE: _schemathesis_app(SECRETS)}
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # Only the webhook has input that can be made invalid: the health endpoints take none,
        # and the one way to break the routing id (an empty string) cannot be put in a path.
        negative = operation.method == "post"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[: 2 if negative else 1]:
            _schemathesis_test(operation, mode, apps[mode], seen)()
    print("\nschemathesis answers:", json.dumps(seen, indent=1, sort_keys=True))
    assert any(key.endswith(" 202") for key in seen)
