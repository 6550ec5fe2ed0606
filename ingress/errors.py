"""Every error the ingress answers is JSON with a clear message, never an HTML page."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def error_response(status: int, error: str, **details) -> Response:
    """A JSON error body: ``{"error": …, <details>}`` with ``status``."""
    response = jsonify({"error": error, **details})
    response.status_code = status
    return response


class Refusal(Exception):
    """A webhook the ingress refuses, raised by whichever step of the view finds the problem.

    ``reason`` is a stable name for logs and metrics (``g.rejection_reason``); ``message`` and
    ``details`` make the JSON body; ``headers`` are added to the answer (``WWW-Authenticate``,
    ``Retry-After``). Nothing has been enqueued when one is raised.

    Reasons: unauthorized, signature_missing, signature_invalid, unsupported_media_type,
    body_too_large, malformed_json, json_too_deep, string_too_long, invalid_request, unroutable,
    enqueue_failed, duplicate_in_flight.
    """

    def __init__(
        self, status: int, reason: str, message: str, headers: dict[str, str] | None = None, /, **details
    ):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.details = details

    def response(self) -> Response:
        """The JSON answer that says what was refused and why."""
        response = error_response(self.status, self.message, **self.details)
        response.headers.update(self.headers)
        return response


def register_error_handlers(app: Flask) -> None:
    """Turn werkzeug's HTTP errors (404, 405, 413, …) and crashes into JSON answers."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {413: f"body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}
        return error_response(exc.code or 500, messages.get(exc.code or 500, exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error in the ingress")
        return error_response(500, "internal error")
