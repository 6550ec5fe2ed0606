"""Structured logs: one JSON object per line, the routing context on every line, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shared.logging_setup import (
    JsonFormatter,
    RedactSecrets,
    SecretRedactor,
    TextFormatter,
    configure_logging,
    current_log_context,
    log_context,
)
from shared.settings import Settings
from worker.observability import bind_task_context, unbind_task_context

#: Settings fields holding secrets (values of each field's own type), passed as ``Settings(**SECRETS)``.
SECRETS: dict[str, Any] = {
    "webhook_api_keys": ("whk-live-5f2a9c0e71",),
    "cxone_client_secret": "cs-9d8e7f6a5b4c",
    "cxone_access_key_secret": 'aks/with+odd=chars"quote',
    "redis_url": "redis://:redis-pw-314159@127.0.0.1:6379/0",
}
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRJZCI6IjExZWIifQ.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture
def settings() -> Settings:
    return Settings(cxone_client_id="client-id", **SECRETS)


@pytest.fixture
def capture(settings) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through configure_logging's handler into a buffer; root restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(settings, service="test", stream=stream)
    try:
        yield logging.getLogger("router.test"), stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_its_extras(capture):
    logger, stream = capture
    logger.info(
        "contact routed to skill %s",
        1203344,
        extra={"routing_id": "r-1", "contact_id": "7000001", "intent": "billing", "skill_id": 1203344},
    )
    logger.warning("line one\nline two")
    first, second = _lines(stream)
    assert first["message"] == "contact routed to skill 1203344"
    assert first["level"] == "INFO" and first["logger"] == "router.test" and first["service"] == "test"
    assert (first["routing_id"], first["contact_id"], first["intent"], first["skill_id"]) == (
        "r-1",
        "7000001",
        "billing",
        1203344,
    )
    assert first["ts"].endswith("Z")
    assert second["message"] == "line one\nline two"  # still one line of output
    assert len(stream.getvalue().splitlines()) == 2


def test_bound_context_reaches_lines_logged_deeper_down(capture):
    logger, stream = capture
    with log_context(routing_id="r-2", contact_id="7000002", intent="claims"):
        logging.getLogger("shared.cxone.client").info("requesting a CXone token")
        logger.info("explicit extra wins", extra={"intent": "other"})
    logger.info("outside")
    inside, explicit, outside = _lines(stream)
    assert (inside["routing_id"], inside["contact_id"], inside["intent"]) == ("r-2", "7000002", "claims")
    assert explicit["intent"] == "other" and explicit["routing_id"] == "r-2"
    assert "routing_id" not in outside
    assert current_log_context() == {}


def test_celery_task_signals_bind_and_unbind_the_routing(capture):
    logger, stream = capture
    message = {
        "routing_id": "r-3",
        "contact_id": "7000003",
        "intent": "sales",
        "mode": "digital",
        "queue_name": "Sales Support",
    }
    bind_task_context(task_id="t-3", args=[message])
    logger.info("inside the task")
    unbind_task_context(task_id="t-3")
    logger.info("after the task")
    inside, after = _lines(stream)
    assert {k: inside[k] for k in ("routing_id", "contact_id", "intent", "task_id")} == {
        "routing_id": "r-3",
        "contact_id": "7000003",
        "intent": "sales",
        "task_id": "t-3",
    }
    assert "queue_name" not in inside  # only the three ids, not the whole message
    assert "routing_id" not in after and "task_id" not in after


def test_configured_secrets_and_tokens_are_redacted_everywhere(capture):
    logger, stream = capture
    key = SECRETS["webhook_api_keys"][0]
    logger.info("key %s and secret %s", key, SECRETS["cxone_client_secret"])
    logger.info("headers", extra={"headers": {"Authorization": f"Bearer {JWT}", "X-API-Key": key}})
    logger.info("form grant_type=password&password=%s&username=x", SECRETS["cxone_access_key_secret"])
    logger.info("a token on its own: %s, basic: Basic Y2xpZW50OnNlY3JldA==", JWT)
    logger.info("redis at %s", SECRETS["redis_url"])
    try:
        raise RuntimeError(f"CXone said no to {SECRETS['cxone_client_secret']}")
    except RuntimeError:
        logger.exception("call failed")
    output = stream.getvalue()
    for secret in (
        key,
        SECRETS["cxone_client_secret"],
        SECRETS["cxone_access_key_secret"],
        "redis-pw-314159",
        JWT,
        "eyJ",
        "Y2xpZW50OnNlY3JldA==",
    ):
        assert secret not in output, secret
    lines = _lines(stream)
    assert lines[1]["headers"]["Authorization"] == "Bearer ***"
    assert "***" in lines[-1]["exc_info"] and "RuntimeError" in lines[-1]["exc_info"]


def test_secrets_shorter_than_four_characters_are_not_redacted():
    redactor = SecretRedactor(["abc", "", "long-enough"])
    assert redactor("abc long-enough") == "abc ***"


def test_a_secret_inside_another_is_masked_whole():
    assert SecretRedactor(["secret", "secret-and-more"])("x secret-and-more y") == "x *** y"


def test_the_filter_renders_bad_format_strings_without_losing_the_line(settings):
    record = logging.makeLogRecord(
        {"msg": "one %s two %s", "args": ("only-one",), "levelno": logging.INFO, "levelname": "INFO"}
    )
    assert RedactSecrets(SecretRedactor.from_settings(settings)).filter(record)
    assert "one %s two %s" in record.getMessage()


def test_text_format_puts_fields_after_the_message():
    record = logging.makeLogRecord(
        {
            "msg": "routing queued",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "name": "ingress.views",
            "routing_id": "r-9",
            "intent": "sales",
        }
    )
    line = TextFormatter().format(record)
    assert line.endswith("ingress.views: routing queued routing_id=r-9 intent=sales")


def test_json_formatter_survives_values_json_cannot_encode():
    record = logging.makeLogRecord(
        {"msg": "odd", "levelno": logging.INFO, "levelname": "INFO", "when": object(), "raw": b"bytes"}
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["raw"] == "b'bytes'" and entry["when"].startswith("<object")


def test_configure_logging_replaces_handlers_rather_than_adding(settings):
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging(settings, service="a", stream=io.StringIO())
        configure_logging(settings, service="b", stream=io.StringIO())
        assert len(root.handlers) == 1
        assert root.level == logging.INFO
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def test_log_format_and_level_settings_are_validated():
    parsed = Settings.from_env({"LOG_FORMAT": "TEXT", "LOG_LEVEL": "debug"})
    assert (parsed.log_format, parsed.log_level) == ("text", "DEBUG")
    assert Settings.from_env({}).log_format == "json"
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
