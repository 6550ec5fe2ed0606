"""Optional HMAC signatures: v1=hex(hmac_sha256(secret, f"{timestamp}.{raw body}")), ±300 s."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from ingress.auth import (
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_SECONDS,
    TIMESTAMP_HEADER,
    check_signature,
    sign,
)
from shared.settings import Settings, SettingsError
from tests.support.ingress import load_payload

from .conftest import SECRETS

BODY = json.dumps(load_payload("cognigy-input-chat")).encode()


def headers_for(body: bytes, secret: str = SECRETS[0], at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(b"s3cret", b'1767225600.{"a":1}', hashlib.sha256).hexdigest()

    assert sign("s3cret", 1767225600, b'{"a":1}') == "v1=" + expected


@pytest.mark.parametrize("secret", SECRETS, ids=["current", "next"])
def test_a_body_signed_with_any_configured_secret_is_queued(signed_edge, secret):
    response = signed_edge.post(BODY, headers=headers_for(BODY, secret))

    assert response.status_code == 202, response.get_json()
    assert len(signed_edge.sent.messages) == 1


def test_unsigned_webhooks_pass_while_signatures_are_optional(signed_edge):
    assert signed_edge.post(BODY).status_code == 202


def test_unsigned_webhooks_are_401_when_signatures_are_required(strict_edge):
    response = strict_edge.post(BODY)

    assert response.status_code == 401
    assert "missing webhook signature" in response.get_json()["error"]
    assert strict_edge.sent.messages == []


def test_required_signature_accepts_a_good_one(strict_edge):
    assert strict_edge.post(BODY, headers=headers_for(BODY)).status_code == 202


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: ({**h, SIGNATURE_HEADER: "v1=" + "0" * 64}, b),
        lambda h, b: (h, b.replace(b"billing_dispute", b"sales_inquiry")),
        lambda h, b: ({**h, SIGNATURE_HEADER: sign("some-other-secret", h[TIMESTAMP_HEADER], b)}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: str(int(h[TIMESTAMP_HEADER]) + 1)}, b),
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].replace("v1=", "v0=")}, b),
        lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][:-2]}, b),
        lambda h, b: ({**h, SIGNATURE_HEADER: "v1=ünïcödé"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != TIMESTAMP_HEADER}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "yesterday"}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "1.7e9"}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "-5"}, b),
        lambda h, b: ({TIMESTAMP_HEADER: ""}, b),
        lambda h, b: ({SIGNATURE_HEADER: ""}, b),
    ],
    ids=[
        "zeros",
        "body-changed",
        "unknown-secret",
        "timestamp-changed",
        "wrong-version",
        "truncated",
        "non-ascii",
        "no-timestamp",
        "no-signature",
        "timestamp-words",
        "timestamp-float",
        "timestamp-negative",
        "empty-timestamp-only",
        "empty-signature-only",
    ],
)
def test_a_present_but_bad_signature_is_401_even_when_optional(signed_edge, tamper):
    headers, body = tamper(headers_for(BODY), BODY)

    response = signed_edge.post(body, headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"].startswith("invalid webhook signature")
    assert signed_edge.sent.messages == []
    assert signed_edge.redis.keys("router:*") == []


@pytest.mark.parametrize(
    "skew",
    [-SIGNATURE_TOLERANCE_SECONDS - 5, SIGNATURE_TOLERANCE_SECONDS + 5],
    ids=["too-old", "too-far-in-the-future"],
)
def test_timestamps_outside_the_tolerance_are_refused_both_ways(signed_edge, skew):
    response = signed_edge.post(BODY, headers=headers_for(BODY, at=time.time() + skew))

    assert response.status_code == 401
    assert "tolerance is 300s" in response.get_json()["error"]


@pytest.mark.parametrize("skew", [-SIGNATURE_TOLERANCE_SECONDS + 5, SIGNATURE_TOLERANCE_SECONDS - 5])
def test_timestamps_inside_the_tolerance_are_accepted_both_ways(signed_edge, skew, clock):
    # The clock stands still: 5 s from the edge of the tolerance stays 5 s however slow the run.
    assert signed_edge.post(BODY, headers=headers_for(BODY, at=time.time() + skew)).status_code == 202


@pytest.mark.parametrize("separator", [" ", ",", ", ", "  ,\t"])
def test_several_v1_values_are_accepted_when_one_matches(signed_edge, separator):
    headers = headers_for(BODY, secret="the-senders-old-secret")
    good = sign(SECRETS[1], headers[TIMESTAMP_HEADER], BODY)
    headers[SIGNATURE_HEADER] = separator.join(
        ["v0=abc", headers[SIGNATURE_HEADER], good.upper().replace("V1=", "v1=")]
    )

    assert signed_edge.post(BODY, headers=headers).status_code == 202


def test_too_many_candidate_signatures_are_refused(signed_edge):
    headers = headers_for(BODY)
    headers[SIGNATURE_HEADER] = " ".join(["v1=" + "ab" * 32] * 8 + [headers[SIGNATURE_HEADER]])

    response = signed_edge.post(BODY, headers=headers)

    assert response.status_code == 401
    assert "more than 8" in response.get_json()["error"]


def test_the_api_key_is_still_checked_first(signed_edge):
    response = signed_edge.client.post(
        "/webhook/cognigy/route", data=BODY, content_type="application/json", headers=headers_for(BODY)
    )

    assert response.status_code == 401
    assert "API key" in response.get_json()["error"]


def test_the_signature_is_checked_on_the_raw_bytes_before_parsing(signed_edge):
    garbage = b"{not json at all"

    assert signed_edge.post(garbage, headers=headers_for(BODY)).status_code == 401
    assert signed_edge.post(garbage, headers=headers_for(garbage)).status_code == 400


def test_without_secrets_signature_headers_are_ignored(edge):
    assert edge.post(BODY, headers={SIGNATURE_HEADER: "v1=nonsense"}).status_code == 202


def test_check_signature_reports_a_stable_reason():
    assert check_signature({}, b"", (), required=True) is None
    assert check_signature({}, b"", SECRETS, required=True).reason == "signature_missing"
    assert (
        check_signature({SIGNATURE_HEADER: "v1=00"}, b"", SECRETS, required=False).reason
        == "signature_invalid"
    )


def test_settings_read_signing_secrets_and_refuse_required_without_secrets():
    settings = Settings.from_env(
        {"WEBHOOK_SIGNING_SECRETS": " a-secret , b-secret ,", "WEBHOOK_SIGNATURE_REQUIRED": "true"}
    )

    assert settings.webhook_signing_secrets == ("a-secret", "b-secret")
    assert settings.webhook_signature_required is True
    assert "a-secret" not in repr(settings)
    with pytest.raises(SettingsError, match="WEBHOOK_SIGNATURE_REQUIRED=true needs WEBHOOK_SIGNING"):
        Settings.from_env({"WEBHOOK_SIGNATURE_REQUIRED": "true"})
    assert Settings.from_env({}).webhook_signature_required is False
