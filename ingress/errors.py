"""Every error the ingress answers is JSON with a clear message, never an HTML page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def error_response(status: int, error: str, **details):
    """A JSON error body: ``{"error": …, <details>}`` with ``status``."""
    response = jsonify({"error": error, **details})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn werkzeug's HTTP errors (404, 405, 413, …) and crashes into JSON answers."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {413: f"body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}
        return error_response(exc.code or 500, messages.get(exc.code, exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error in the ingress")
        return error_response(500, "internal error")
