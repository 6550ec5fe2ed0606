"""HTTP endpoints of the ingress: the Cognigy webhook, routing status, health and readiness."""

from __future__ import annotations

import json
import logging
import time

import redis
from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from ingress.auth import is_valid_key, presented_key
from ingress.errors import error_response
from ingress.webhook_schema import flatten_errors, parse_webhook
from shared.routing_job import RoutingJob, new_routing_id
from shared.routing_publisher import DuplicateInFlight, EnqueueFailed
from shared.routing_table import Unroutable

log = logging.getLogger(__name__)
blueprint = Blueprint("ingress", __name__)


def _ingress():
    return current_app.extensions["ingress"]


def _authenticated() -> bool:
    settings = _ingress().settings
    if settings.webhook_auth_disabled:
        return True
    return is_valid_key(presented_key(request.headers), settings.webhook_api_keys)


def _unauthorized():
    response = error_response(
        401, "missing or invalid API key: send 'X-API-Key: <key>' or 'Authorization: ApiKey <key>'")
    response.headers["WWW-Authenticate"] = "ApiKey"
    return response


@blueprint.post("/webhook/cognigy/route")
def route_webhook():
    """Accept a Cognigy webhook and queue the routing; see the README for every answer."""
    if not _authenticated():
        return _unauthorized()
    if not _is_json(request.mimetype):
        return error_response(415, "send the body as JSON with 'Content-Type: application/json'",
                              received=request.mimetype or None)
    ingress = _ingress()
    if (request.content_length or 0) > ingress.settings.max_body_bytes:
        return error_response(413, f"body larger than {ingress.settings.max_body_bytes} bytes")
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the decoder handles ("[[[[…") is a bad body too.
        return error_response(400, "malformed JSON", detail=str(exc)[:200])

    try:
        webhook = parse_webhook(body)
    except ValidationError as exc:
        return error_response(400, "invalid request", fields=flatten_errors(exc.messages))

    table = ingress.routing_table
    try:
        decision = table.decide(webhook.candidates)
    except Unroutable as exc:
        return error_response(422, "cannot route", reason=exc.reason)
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
        return _retry_shortly("could not queue the routing; please retry")
    except DuplicateInFlight:
        return _retry_shortly("the same webhook is being queued right now; please retry")
    if published.duplicate:
        # A resend (Cognigy retry attempt): answer with the first routing, queue nothing new.
        log.info("duplicate webhook", extra={"routing_id": published.routing_id,
                                             "contact_id": job.contact_id, "intent": job.intent})
    else:
        log.info("routing queued", extra={"routing_id": job.routing_id, "contact_id": job.contact_id,
                                          "intent": job.intent, "queue": job.queue_label})
    return jsonify({
        "status": "queued",
        "routingId": published.routing_id,
        "intent": job.intent,
        "queue": job.queue_label,
        "contactId": job.contact_id,
        "mode": job.mode,
        **({"duplicate": True} if published.duplicate else {}),
    }), 202


def _retry_shortly(message: str):
    response = error_response(503, message)
    response.headers["Retry-After"] = "1"
    return response


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
        mimetype.startswith("application/") and mimetype.endswith("+json"))
