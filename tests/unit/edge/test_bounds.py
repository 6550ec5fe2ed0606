"""Bounds on the body: size (413), media type (415), nesting depth and string lengths (400)."""

from __future__ import annotations

import io
import json

import pytest

from ingress.edge import MAX_JSON_DEPTH, MAX_STRING_LENGTH, check_bounds
from tests.support.ingress import WEBHOOK_URL, load_payload

from .conftest import API_KEY, MAX_BODY_BYTES


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_fine_and_one_more_is_400(edge):
    body = load_payload("cognigy-input-chat")
    body["extra"] = nested(MAX_JSON_DEPTH - 1)  # the body object itself is the first level
    assert edge.post(body).status_code == 202

    body["extra"] = nested(MAX_JSON_DEPTH)
    response = edge.post(body)

    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "JSON nested too deeply"
    assert answer["maxDepth"] == MAX_JSON_DEPTH
    assert answer["field"].startswith("extra.0.0")
    assert len(edge.sent.messages) == 1  # only the first one


def test_nesting_deeper_than_the_decoder_goes_is_400_too_deep(edge):
    response = edge.post("[" * 5000 + "]" * 5000)

    assert response.status_code == 400
    assert response.get_json()["error"] == "JSON nested too deeply"


@pytest.mark.parametrize(
    "where,field",
    [
        (lambda b, s: b.update(text=s), "text"),
        (lambda b, s: b.update(ignoredField=s), "ignoredField"),
        (lambda b, s: b["data"].update(note=s), "data.note"),
        (lambda b, s: b.update(list=[1, {"deep": s}]), "list.1.deep"),
    ],
)
def test_an_overlong_string_anywhere_is_400_naming_its_field(edge, where, field):
    body = load_payload("cognigy-input-chat")
    where(body, "x" * (MAX_STRING_LENGTH + 1))

    response = edge.post(body)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": f"string longer than {MAX_STRING_LENGTH} characters",
        "field": field,
        "maxLength": MAX_STRING_LENGTH,
    }
    assert edge.sent.messages == []


def test_a_string_of_exactly_the_limit_passes_the_edge(edge):
    body = load_payload("cognigy-input-chat")
    body["ignoredField"] = "x" * MAX_STRING_LENGTH

    assert edge.post(body).status_code == 202


def test_an_overlong_key_is_400_with_the_key_cut_short(edge):
    body = load_payload("cognigy-input-chat")
    body["data"]["k" * (MAX_STRING_LENGTH + 1)] = 1

    response = edge.post(body)

    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == f"key longer than {MAX_STRING_LENGTH} characters"
    assert answer["field"] == "data." + "k" * 64 + "…"


def test_length_counts_characters_not_bytes(edge):
    body = load_payload("cognigy-input-chat")
    body["ignoredField"] = "é" * MAX_STRING_LENGTH  # 2 bytes each in UTF-8, 16,000 bytes

    assert edge.post(body).status_code == 202


@pytest.mark.parametrize(
    "raw,field",
    [
        (b'{"sessionId": "1", "text": "\\ud800"}', "text"),
        (b'{"sessionId": "\\udc00abc"}', "sessionId"),
        (b'{"sessionId": "1", "data": {"\\ud83d": 1}}', "data.\ud83d"),
    ],
    ids=["value", "id", "key"],
)
def test_an_unpaired_surrogate_escape_is_400_not_a_crash(edge, raw, field):
    response = edge.post(raw)

    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed JSON"
    assert response.get_json()["field"] == field
    assert edge.sent.messages == []


def test_a_paired_surrogate_escape_is_an_ordinary_character(edge):
    body = b'{"sessionId": "1", "text": "\\ud83d\\ude00", "intent": "sales_inquiry"}'

    assert edge.post(body).status_code == 202


def test_check_bounds_reports_the_first_problem_in_document_order():
    body = {"a": "ok", "b": ["x" * 9000], "c": nested(40)}

    problem = check_bounds(body)

    assert (problem.reason, problem.field) == ("string_too_long", "b.0")
    assert check_bounds({"a": nested(40)}).reason == "json_too_deep"
    assert check_bounds("y" * 9000).field == "(body)"
    assert check_bounds(nested(10_000)).reason == "json_too_deep"  # no recursion involved


def test_body_over_the_limit_without_content_length_is_413(edge):
    body = json.dumps({**load_payload("cognigy-input-chat"), "pad": "x" * MAX_BODY_BYTES}).encode()

    # As gunicorn passes a chunked request on: no Content-Length, the input marked as terminated.
    response = edge.client.post(
        WEBHOOK_URL,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"X-API-Key": API_KEY, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None

    assert response.status_code == 413
    assert response.get_json()["error"] == f"body larger than {MAX_BODY_BYTES} bytes"
    assert edge.sent.messages == []


def _padded_to(size: int) -> bytes:
    """The chat example padded with whitespace to exactly ``size`` bytes (no string grows long)."""
    body = json.dumps(load_payload("cognigy-input-chat")).encode()
    return body[:-1] + b" " * (size - len(body)) + body[-1:]


def _post_as_gunicorn(edge, body: bytes, headers: dict[str, str]):
    """POST ``body`` as gunicorn passes requests on: the input stream marked as terminated."""
    return edge.client.post(
        WEBHOOK_URL,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"X-API-Key": API_KEY, **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_body_of_exactly_the_limit_with_content_length_is_accepted(edge):
    # With the input marked as terminated werkzeug reads up to the limit whatever the
    # Content-Length: reaching the limit must not be mistaken for a chunked body cut short.
    body = _padded_to(MAX_BODY_BYTES)

    response = _post_as_gunicorn(edge, body, {"Content-Length": str(len(body))})

    assert response.status_code == 202
    assert len(edge.sent.messages) == 1


def test_one_byte_over_the_limit_is_413_with_or_without_content_length(edge):
    body = _padded_to(MAX_BODY_BYTES + 1)

    declared = _post_as_gunicorn(edge, body, {"Content-Length": str(len(body))})
    chunked = _post_as_gunicorn(edge, body, {"Transfer-Encoding": "chunked"})

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.get_json() == {"error": f"body larger than {MAX_BODY_BYTES} bytes"}
    assert edge.sent.messages == []


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonp",
        "",
    ],
)
def test_anything_but_json_is_415(edge, content_type):
    response = edge.post(load_payload("cognigy-input-chat"), content_type=content_type)

    assert response.status_code == 415
    assert edge.sent.messages == []
