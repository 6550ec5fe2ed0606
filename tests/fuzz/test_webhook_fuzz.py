"""Thousands of random and malformed webhooks: never a 5xx, nothing enqueued unless the answer
is 202, and every refusal a JSON 4xx with its reason.

Requests mix: random bytes, random JSON, plausible Cognigy bodies with fields replaced by junk,
deep nesting, huge strings and keys, invalid UTF-8, wrong or missing content types, right, wrong
and missing API keys, and good, bad, stale and missing signatures, against ingresses with and
without signing secrets (optional and required) and with and without a fallback queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import fakeredis
import pytest
from flask import Flask, g
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingress.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from shared import redis_keys
from shared.settings import Settings
from tests.support.ingress import WEBHOOK_URL, ingress_on_fakes
from tests.support.send_recorder import SendRecorder
from tests.support.webhook_bodies import junk, mutated_body, plausible_body

from .conftest import FUZZ_EXAMPLES, LONG_RUN, outcome

API_KEY = "fuzz-key-0123456789abcdef"
SECRETS = ("whsec-fuzz-current-0123", "whsec-fuzz-next-4567")
MAX_BODY_BYTES = 16 * 1024
ROUTES = """
fallback: General Inquiry
routes:
  sales_inquiry: Sales Support
  claims: {queue: Claims, mode: voice}
  vip_callback: {skill_id: 1200042}
"""
ROUTES_NO_FALLBACK = """
min_score: 0.6
routes:
  sales_inquiry: Sales Support
  claims: Claims
"""


@dataclass
class Target:
    """One ingress configuration under fuzz, with what it has enqueued and the last refusal."""

    name: str
    app: Flask
    sent: SendRecorder
    redis: fakeredis.FakeRedis
    secrets: tuple[str, ...]
    required: bool
    reasons: list

    @classmethod
    def build(
        cls, name: str, routes: str = ROUTES, secrets: tuple[str, ...] = (), required: bool = False
    ) -> Target:
        ingress = ingress_on_fakes(
            Settings(
                webhook_api_keys=(API_KEY,),
                max_body_bytes=MAX_BODY_BYTES,
                webhook_signing_secrets=secrets,
                webhook_signature_required=required,
                routing_status_ttl_seconds=3600,
            ),
            routes,
        )
        app = ingress.app
        reasons: list = []

        @app.after_request
        def keep_reason(response):  # the rejection reason the view recorded, for the counts
            reasons.append(g.get("rejection_reason"))
            return response

        return cls(name, app, ingress.sent, ingress.redis, secrets, required, reasons)


TARGETS = [
    Target.build("plain"),
    Target.build("no-fallback", routes=ROUTES_NO_FALLBACK),
    Target.build("signed-optional", secrets=SECRETS),
    Target.build("signed-required", secrets=SECRETS, required=True),
]
CLIENTS = {t.name: t.app.test_client() for t in TARGETS}

# ------------------------------------------------------------------------------ bodies

plausible = plausible_body
mutated = mutated_body(max_changes=3)


def _nest(depth: int, opener: str, closer: str, leaf: str) -> str:
    return opener * depth + leaf + closer * depth


deep = st.tuples(
    st.integers(1, 6000),
    st.sampled_from([("[", "]", "1"), ('{"a":', "}", "1"), ("[", "", ""), ('{"x":[', "]}", '"y"')]),
).map(lambda t: _nest(t[0], *t[1]))
huge_string = st.builds(
    lambda body, field, n, char: json.dumps({**body, field: char * n}),
    plausible,
    st.sampled_from(["text", "note", "sessionId", "intent"]),
    st.sampled_from([7999, 8000, 8001, 9000, 15000, 20000]),
    st.sampled_from(["x", "é", "😀"]),
)
huge_key = st.builds(
    lambda body, n: json.dumps({**body, "k" * n: 1}), plausible, st.sampled_from([8000, 8001, 12000])
)
raw_texts = st.sampled_from(
    [
        "",
        "null",
        "[]",
        "{}",
        '"str"',
        "1",
        "true",
        "{",
        '{"sessionId": "1",}',
        "{'a': 1}",
        '{"sessionId": NaN}',
        '{"sessionId": "1", "sessionId": 2}',
        '{"a":' + "9" * 5000 + "}",
        '{"sessionId": "\\ud800"}',
        "\ufeff{}",
        '{"sessionId": "1"}\x00',
    ]
)

bodies = st.one_of(
    plausible.map(json.dumps),
    plausible.map(json.dumps),
    plausible.map(json.dumps),
    mutated.map(json.dumps),
    mutated.map(json.dumps),
    junk.map(json.dumps),
    st.binary(max_size=300),
    st.text(max_size=200),
    deep,
    huge_string,
    huge_key,
    raw_texts,
    st.binary(min_size=1, max_size=64).map(lambda b: b'{"sessionId": "' + b + b'"}'),
).map(lambda b: b if isinstance(b, bytes) else b.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------------ headers


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of ``choices``, each picked in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


printable = st.characters(min_codepoint=32, max_codepoint=255)
# Mostly right, so that most requests get past the edge to the schema and the routing.
keys = weighted(
    (6, st.just({"X-API-Key": API_KEY})),
    (2, st.just({"Authorization": f"ApiKey {API_KEY}"})),
    (
        2,
        st.sampled_from(
            [
                {},
                {"X-API-Key": "wrong"},
                {"X-API-Key": API_KEY[:-1]},
                {"X-API-Key": ""},
                {"Authorization": f"Bearer {API_KEY}"},
                {"X-API-Key": API_KEY + " "},
            ]
        ),
    ),
    (1, st.text(alphabet=printable, max_size=40).map(lambda k: {"X-API-Key": k})),
)
content_types = weighted(
    (
        8,
        st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "application/vnd.cognigy+json"]
        ),
    ),
    (
        1,
        st.sampled_from(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/xml",
                "multipart/form-data; boundary=x",
                "",
                "application/jsonx",
                "json",
            ]
        ),
    ),
    (1, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)),
)
SIGNATURE_KINDS = [
    "none",
    "good",
    "good-next-secret",
    "good-among-several",
    "wrong-secret",
    "stale",
    "future",
    "garbage",
    "timestamp-only",
    "signature-only",
    "empty",
]
signature_kinds = weighted(
    (4, st.just("none")),
    (4, st.sampled_from(SIGNATURE_KINDS[1:4])),
    (3, st.sampled_from(SIGNATURE_KINDS[4:])),
)


def signature_headers(kind: str, body: bytes, garbage: str) -> dict[str, str]:
    now = int(time.time())
    at = {"stale": now - 400, "future": now + 400}.get(kind, now)
    secret = {"good-next-secret": SECRETS[1], "wrong-secret": "not-a-configured-secret"}.get(kind, SECRETS[0])
    signature = sign(secret, at, body)
    if kind == "none":
        return {}
    if kind == "good-among-several":
        signature = f"v1={'0' * 64}, v0=abc {signature}"
    if kind == "garbage":
        return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: garbage}
    if kind == "timestamp-only":
        return {TIMESTAMP_HEADER: str(at)}
    if kind == "signature-only":
        return {SIGNATURE_HEADER: signature}
    if kind == "empty":
        return {TIMESTAMP_HEADER: "", SIGNATURE_HEADER: ""}
    return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: signature}


def _good_signature(kind: str) -> bool:
    return kind in ("good", "good-next-secret", "good-among-several")


# ------------------------------------------------------------------------------ the property


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG_RUN,
    suppress_health_check=list(HealthCheck),
)
@given(
    target=st.sampled_from(TARGETS),
    body=bodies,
    key=keys,
    content_type=content_types,
    signature=signature_kinds,
    garbage=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
)
def test_webhook_fuzz(target, body, key, content_type, signature, garbage):
    headers = {**key, **signature_headers(signature, body, garbage)}
    sent_before = len(target.sent.messages)
    open_before = target.redis.zcard(redis_keys.OPEN_ROUTINGS)

    response = CLIENTS[target.name].post(WEBHOOK_URL, data=body, headers=headers, content_type=content_type)

    status = response.status_code
    reason = target.reasons[-1]
    outcome("webhook fuzz", status, reason)
    assert status < 500, (status, response.get_data(as_text=True)[:300])
    answer = response.get_json(silent=True)
    assert isinstance(answer, dict), response.get_data()[:200]
    new_messages = len(target.sent.messages) - sent_before
    new_records = target.redis.zcard(redis_keys.OPEN_ROUTINGS) - open_before
    if status == 202:
        assert reason is None
        assert answer["status"] == "queued" and answer["routingId"]
        expected = 0 if answer.get("duplicate") else 1
        assert (new_messages, new_records) == (expected, expected)
        assert key.get("X-API-Key", "").strip() == API_KEY or key.get("Authorization") == f"ApiKey {API_KEY}"
        if target.secrets and (signature != "none" or target.required):
            assert _good_signature(signature), signature
    else:
        assert 400 <= status < 500
        assert (new_messages, new_records) == (0, 0), answer
        assert isinstance(answer.get("error"), str) and answer["error"]
        assert reason is not None, (status, answer)


def test_fuzz_reached_every_kind_of_answer():
    """Guards the generators: the run above must have produced each answer at least once."""
    from .conftest import OUTCOMES

    counts = OUTCOMES.get("webhook fuzz")
    if counts is None:
        pytest.skip("run with test_webhook_fuzz")
    for status in ("202", "400", "401", "413", "415", "422"):
        assert counts[status] > 0, dict(counts)
    for reason in (
        "json_too_deep",
        "string_too_long",
        "malformed_json",
        "invalid_request",
        "signature_invalid",
        "signature_missing",
        "unauthorized",
    ):
        assert any(k.endswith(" " + reason) for k in counts), (reason, dict(counts))
