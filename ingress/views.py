"""HTTP endpoints of the ingress: the Cognigy webhook, routing status, health and readiness."""

from __future__ import annotations

import json
import logging
import time

import redis
from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from ingress.auth import check_signature, is_valid_key, presented_key
from ingress.edge import check_bounds
from ingress.errors import error_response
from ingress.webhook_schema import flatten_errors, parse_webhook
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.publisher import DuplicateInFlight, EnqueueFailed
from shared.routing.table import Unroutable

log = logging.getLogger(__name__)
blueprint = Blueprint("ingress", __name__)


def _ingress():
    return current_app.extensions["ingress"]


def _authenticated() -> bool:
    settings = _ingress().settings
    if settings.webhook_auth_disabled:
        return True
    return is_valid_key(presented_key(request.headers), settings.webhook_api_keys)


_API_KEY_HELP = "missing or invalid API key: send 'X-API-Key: <key>' or 'Authorization: ApiKey <key>'"


def _unauthorized():
    response = error_response(401, _API_KEY_HELP)
    response.headers["WWW-Authenticate"] = "ApiKey"
    return response


def _reject(status: int, reason: str, message: str, headers: dict[str, str] | None = None, /, **details):
    """Every refusal of a webhook goes out through here, with a stable ``reason`` name.

    Reasons: unauthorized, signature_missing, signature_invalid, unsupported_media_type,
    body_too_large, malformed_json, json_too_deep, string_too_long, invalid_request, unroutable,
    enqueue_failed, duplicate_in_flight. Nothing has been enqueued when this is called.
    """
    g.rejection_reason = reason
    log.info("webhook rejected", extra={"reason": reason, "status": status})
    response = error_response(status, message, **details)
    response.headers.update(headers or {})
    return response


@blueprint.post("/webhook/cognigy/route")
def route_webhook():
    """Accept a Cognigy webhook and queue the routing; see the README for every answer."""
    if not _authenticated():
        return _reject(401, "unauthorized", _API_KEY_HELP, {"WWW-Authenticate": "ApiKey"})
    if not _is_json(request.mimetype):
        return _reject(
            415,
            "unsupported_media_type",
            "send the body as JSON with 'Content-Type: application/json'",
            received=request.mimetype or None,
        )
    ingress = _ingress()
    settings = ingress.settings
    too_large = f"body larger than {settings.max_body_bytes} bytes"
    if (request.content_length or 0) > settings.max_body_bytes:
        return _reject(413, "body_too_large", too_large)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _reject(413, "body_too_large", too_large)
    if request.content_length is None and len(raw) >= settings.max_body_bytes:
        # A chunked body (no Content-Length) is cut off silently at MAX_CONTENT_LENGTH by
        # werkzeug; reaching the cap means the sender had more to say.
        return _reject(413, "body_too_large", too_large)
    # The signature covers the raw bytes: check it before anything parses them.
    problem = check_signature(
        request.headers, raw, settings.webhook_signing_secrets, required=settings.webhook_signature_required
    )
    if problem is not None:
        return _reject(401, problem.reason, problem.message)
    try:
        body = json.loads(raw)
    except RecursionError:  # "[[[[…" deeper than the decoder goes: certainly too deep
        return _reject(400, "json_too_deep", "JSON nested too deeply", field="(body)")
    except (ValueError, UnicodeDecodeError) as exc:
        return _reject(400, "malformed_json", "malformed JSON", detail=str(exc)[:200])
    bounds = check_bounds(body)
    if bounds is not None:
        return _reject(400, bounds.reason, bounds.message, **bounds.details())

    try:
        webhook = parse_webhook(body)
    except ValidationError as exc:
        return _reject(400, "invalid_request", "invalid request", fields=flatten_errors(exc.messages))

    table = ingress.routing_table
    try:
        decision = table.decide(webhook.candidates)
    except Unroutable as exc:
        return _reject(422, "unroutable", "cannot route", reason=exc.reason)
    mode = table.mode_for(decision.queue, webhook.channel)
    job = RoutingJob(
        routing_id=new_routing_id(),
        contact_id=webhook.contact_id(voice=mode == "voice"),
        intent=decision.intent,
        mode=mode,
        queue_name=decision.queue.name,
        skill_id=decision.queue.skill_id,
        score=decision.score,
        channel=webhook.channel,
        input_id=webhook.input_id,
        received_at=time.time(),
    )
    try:
        published = ingress.publisher.publish(job)
    except EnqueueFailed as exc:
        log.error("routing not queued: %s", exc, extra={"contact_id": job.contact_id})
        return _reject(
            503, "enqueue_failed", "could not queue the routing; please retry", {"Retry-After": "1"}
        )
    except DuplicateInFlight:
        return _reject(
            503,
            "duplicate_in_flight",
            "the same webhook is being queued right now; please retry",
            {"Retry-After": "1"},
        )
    if published.duplicate:
        # A resend (Cognigy retry attempt): answer with the first routing, queue nothing new.
        log.info(
            "duplicate webhook",
            extra={"routing_id": published.routing_id, "contact_id": job.contact_id, "intent": job.intent},
        )
    else:
        log.info(
            "routing queued",
            extra={
                "routing_id": job.routing_id,
                "contact_id": job.contact_id,
                "intent": job.intent,
                "queue": job.queue_label,
            },
        )
    return jsonify(
        {
            "status": "queued",
            "routingId": published.routing_id,
            "intent": job.intent,
            "queue": job.queue_label,
            "contactId": job.contact_id,
            "mode": job.mode,
            **({"duplicate": True} if published.duplicate else {}),
        }
    ), 202


@blueprint.get("/routings/<routing_id>")
def routing_status(routing_id: str):
    """The state of one routing: queued, retrying, routed or failed."""
    if not _authenticated():
        return _unauthorized()
    if len(routing_id) > 64:
        return error_response(404, "unknown routing id")
    try:
        record = _ingress().store.get(routing_id)
    except redis.RedisError:
        return error_response(503, "routing records are unavailable (Redis unreachable)")
    if record is None:
        return error_response(404, "unknown routing id (or its record has expired)")
    return jsonify(record.to_public())


@blueprint.get("/healthz")
def healthz():
    """The process is up (no dependencies checked)."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    """Ready to take webhooks: Redis answers."""
    try:
        _ingress().redis.ping()
    except redis.RedisError as exc:
        return error_response(503, "Redis unreachable", detail=exc.__class__.__name__)
    return jsonify({"status": "ready"})


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )
