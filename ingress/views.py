"""HTTP endpoints of the ingress: the Cognigy webhook, routing status, health and readiness.

The webhook view is a sequence of steps. Each step returns what the next one needs or raises a
:class:`~ingress.errors.Refusal`; one handler (:func:`answer_refusal`) turns every refusal into
its answer, so each refusal is recorded and logged the same way.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import redis
from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from ingress.answers import queued_record, routing_answer
from ingress.auth import check_signature, is_valid_key, presented_key
from ingress.edge import check_bounds
from ingress.errors import Refusal, error_response
from ingress.waiting import InvalidWait, WaitRequest, requested_wait
from ingress.webhook_schema import WebhookRequest, flatten_errors, parse_webhook
from shared.routing.job import RoutingJob, new_routing_id
from shared.routing.publisher import DuplicateInFlight, EnqueueFailed, Published, RoutingPublisher
from shared.routing.records import RoutingStatusStore
from shared.routing.table import RoutingTable, Unroutable
from shared.settings import Settings

if TYPE_CHECKING:  # ingress.app imports this module
    from ingress.app import Ingress

log = logging.getLogger(__name__)
blueprint = Blueprint("ingress", __name__)

_API_KEY_HELP = "missing or invalid API key: send 'X-API-Key: <key>' or 'Authorization: ApiKey <key>'"
#: How long a sender should wait before resending after a 503 (the broker or a lock was busy).
_RETRY_AFTER = {"Retry-After": "1"}


def _ingress() -> Ingress:
    return current_app.extensions["ingress"]


@blueprint.post("/webhook/cognigy/route")
def route_webhook():
    """Accept a Cognigy webhook and queue the routing; see the README for every answer."""
    ingress = _ingress()
    settings = ingress.settings
    _require_api_key(settings)
    _require_json_media_type()
    raw = _read_body(settings.max_body_bytes)
    # The signature covers the raw bytes: check it before anything parses them.
    _require_valid_signature(raw, settings)
    body = _decode_json(raw)
    wait, wait_errors = _requested_wait(settings)
    webhook = _validate(body, settings.contact_id_pattern, wait_errors)
    job = _plan_routing(webhook, ingress.routing_table)
    published = _queue(job, ingress.publisher)
    if wait is None:
        return jsonify(_answer(job, published, ingress.store)), 202
    return _answer_after_waiting(job, published, wait, ingress)


@blueprint.errorhandler(Refusal)
def answer_refusal(refusal: Refusal):
    """The one way out for a refused webhook: record the reason (read by the metrics), log it, answer."""
    g.rejection_reason = refusal.reason
    log.info("webhook rejected", extra={"reason": refusal.reason, "status": refusal.status})
    return refusal.response()


# ------------------------------------------------------------------------- the webhook's steps


def _require_api_key(settings: Settings) -> None:
    """401 unless the request carries one of the configured keys (or auth is off)."""
    if not _authenticated(settings):
        raise _missing_api_key()


def _require_json_media_type() -> None:
    """415 unless the body is declared as JSON (``application/json`` or ``application/…+json``)."""
    mimetype = request.mimetype
    if not _is_json(mimetype):
        raise Refusal(
            415,
            "unsupported_media_type",
            "send the body as JSON with 'Content-Type: application/json'",
            received=mimetype or None,
        )


def _read_body(max_bytes: int) -> bytes:
    """The raw body; 413 when it is larger than ``max_bytes``, however it was sent.

    werkzeug enforces ``MAX_CONTENT_LENGTH`` (set to ``max_bytes`` by the app factory): a longer
    Content-Length is refused before a byte is read. A body without one (chunked) is read up to
    the cap and cut off there silently, so reaching the cap means the sender had more to say.
    """
    too_large = Refusal(413, "body_too_large", f"body larger than {max_bytes} bytes")
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large from None
    if request.content_length is None and len(raw) >= max_bytes:
        raise too_large
    return raw


def _require_valid_signature(raw: bytes, settings: Settings) -> None:
    """401 when signing is configured and the signature is missing (if required) or wrong."""
    problem = check_signature(
        request.headers, raw, settings.webhook_signing_secrets, required=settings.webhook_signature_required
    )
    if problem is not None:
        raise Refusal(401, problem.reason, problem.message)


def _decode_json(raw: bytes) -> object:
    """The decoded body, within the bounds of :mod:`ingress.edge` (depth, string length, UTF-16)."""
    try:
        body = json.loads(raw)
    except RecursionError:  # "[[[[…" deeper than the decoder goes: certainly too deep
        raise Refusal(400, "json_too_deep", "JSON nested too deeply", field="(body)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal(400, "malformed_json", "malformed JSON", detail=str(exc)[:200]) from None
    problem = check_bounds(body)
    if problem is not None:
        raise Refusal(400, problem.reason, problem.message, **problem.details())
    return body


def _requested_wait(settings: Settings) -> tuple[WaitRequest | None, dict[str, list[str]]]:
    """How long the sender asks to wait for the outcome (``?wait=`` or ``Prefer: wait=``), and the
    problem with it as a field error (reported with the body's, by :func:`_validate`)."""
    try:
        wait = requested_wait(
            request.args.to_dict(flat=False),
            request.headers.getlist("Prefer"),
            settings.webhook_max_wait_seconds,
        )
    except InvalidWait as exc:
        return None, {"wait": [str(exc)]}
    return wait, {}


def _validate(body: object, contact_id_pattern: str, other_errors: dict[str, list[str]]) -> WebhookRequest:
    """The webhook in the one shape routing needs; 400 naming every wrong field (a contact id that
    does not match ``contact_id_pattern`` among them; ``other_errors``: those found outside the
    body, such as ``wait``)."""
    try:
        webhook = parse_webhook(body, contact_id_pattern)
    except ValidationError as exc:
        raise Refusal(
            400, "invalid_request", "invalid request", fields={**other_errors, **flatten_errors(exc.messages)}
        ) from None
    if other_errors:
        raise Refusal(400, "invalid_request", "invalid request", fields=other_errors)
    return webhook


def _plan_routing(webhook: WebhookRequest, table: RoutingTable) -> RoutingJob:
    """The routing job for this webhook: which queue, how (voice or digital) and which contact."""
    try:
        decision = table.decide(webhook.candidates)
    except Unroutable as exc:
        raise Refusal(422, "unroutable", "cannot route", reason=exc.reason) from None
    mode = table.mode_for(decision.queue, webhook.channel)
    contact = webhook.contact(voice=mode == "voice")
    return RoutingJob(
        routing_id=new_routing_id(),
        contact_id=contact.contact_id,
        contact_source=contact.source,
        intent=decision.intent,
        mode=mode,
        queue_name=decision.queue.name,
        skill_id=decision.queue.skill_id,
        score=decision.score,
        channel=webhook.channel,
        input_id=webhook.input_id,
        received_at=time.time(),
        # The worker renders the signal from the template decided here; it never reads the table.
        signal_params=table.signal_template(decision.queue) if mode == "voice" else None,
        # Likewise the queue's overflow rules: the worker decides on them just before the call.
        overflow=table.overflow_rules(decision.queue) or None,
    )


def _queue(job: RoutingJob, publisher: RoutingPublisher) -> Published:
    """Publish the job (or find the routing a resend already has); log which of the two happened."""
    try:
        published = publisher.publish(job)
    except EnqueueFailed as exc:
        log.error("routing not queued: %s", exc, extra={"contact_id": job.contact_id})
        raise Refusal(
            503, "enqueue_failed", "could not queue the routing; please retry", _RETRY_AFTER
        ) from None
    except DuplicateInFlight:
        raise Refusal(
            503,
            "duplicate_in_flight",
            "the same webhook is being queued right now; please retry",
            _RETRY_AFTER,
        ) from None
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
    return published


def _answer(job: RoutingJob, published: Published, store: RoutingStatusStore) -> dict:
    """The 202 body: the routing to poll, and where the contact is going. A resend gets the first
    routing's current state (see :func:`ingress.answers.routing_answer`) and ``"duplicate": true``."""
    if not published.duplicate:
        return routing_answer(queued_record(job))[0]
    try:
        record = store.get(published.routing_id)
    except redis.RedisError:
        raise Refusal(
            503, "enqueue_failed", "could not read the first routing's state; please retry", _RETRY_AFTER
        ) from None
    # No record yet: the first copy's record write failed after its publish (the worker writes it
    # when it takes the task), so the routing is queued.
    first = record or queued_record(job, published.routing_id)
    return {**routing_answer(first)[0], "duplicate": True}


def _answer_after_waiting(job: RoutingJob, published: Published, wait: WaitRequest, ingress: Ingress):
    """Wait up to ``wait.seconds`` for the routing to finish, then answer with where it stands:
    200 routed or failed, 202 still under way (also when Redis stopped answering meanwhile: the
    routing is stored and goes on)."""
    started = time.monotonic()
    waited = ingress.waiter.wait_for(published.routing_id, wait.seconds, ingress.waiting_store.get)
    body, status = routing_answer(waited.record or queued_record(job, published.routing_id))
    if not waited.redis_answered:
        status = 202  # the record shown may be older than the routing: never claim it final
        log.warning(
            "Redis stopped answering while a webhook waited; answered with the routing id",
            extra={"routing_id": published.routing_id},
        )
    body["waitedMs"] = round((time.monotonic() - started) * 1000)
    if published.duplicate:
        body["duplicate"] = True
    response = jsonify(body)
    response.status_code = status
    response.headers.update(wait.preference_applied())
    return response


# ------------------------------------------------------------------------- the other endpoints


@blueprint.get("/routings/<routing_id>")
def routing_status(routing_id: str):
    """The state of one routing: queued, retrying, routed, failed or superseded."""
    if not _authenticated(_ingress().settings):
        return _missing_api_key().response()
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


def _authenticated(settings: Settings) -> bool:
    """The request carries one of the configured API keys, or auth is turned off."""
    if settings.webhook_auth_disabled:
        return True
    return is_valid_key(presented_key(request.headers), settings.webhook_api_keys)


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _missing_api_key() -> Refusal:
    """The 401 for a request without a valid key (the webhook raises it, the status view answers it)."""
    return Refusal(401, "unauthorized", _API_KEY_HELP, {"WWW-Authenticate": "ApiKey"})
