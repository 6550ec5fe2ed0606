"""The overflow decision: which queue a routing uses, decided just before its CXone call.

The routing table gives a queue overflow rules (:mod:`shared.routing.overflow`) and the ingress puts
them in the task message; here, on every attempt, they are checked against the queues' live state
(:mod:`shared.cxone.skill_activity`), because the state may have changed while the routing waited.
What is decided is written to the routing record (``GET /routings/<id>`` and the webhook's answer
show the queue asked for, the queue used and the rule), logged, and counted in
``router_overflows_total``.

Never a guess: with no skill activity younger than three TTLs (after waiting for a refresh another
worker is making, or, when our own limiter had no slot for the refresh, in the backlog) the contact
goes to the queue the route asked for (``router_overflow_state_unavailable_total``), and a rule
whose value CXone did not give is skipped (``router_skill_activity_fields_missing_total``, logged
once per skill and field).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from shared.cxone.queue_directory import UnknownQueue
from shared.cxone.skill_activity import FIELDS
from shared.routing.job import RoutingJob
from shared.routing.overflow import OverflowDecision, OverflowRule, Unknown, decide
from worker.context import WorkerContext
from worker.metrics import OVERFLOW_STATE_UNAVAILABLE, OVERFLOWS, SKILL_ACTIVITY_FIELDS_MISSING

log = logging.getLogger(__name__)

#: (skill id, CXone field) pairs already logged as missing by this process: logged once each.
_missing_logged: set[tuple[int, str]] = set()
_missing_lock = threading.Lock()


def choose_queue(job: RoutingJob, skill_id: int, ctx: WorkerContext) -> tuple[RoutingJob, int]:
    """The job as it is carried out, and the skill id it goes to: ``job`` and ``skill_id``
    unchanged when no overflow rule moves the contact, else the job with the alternative's queue
    (so a voice signal names it) and the alternative's skill id. Raises CXone errors from
    resolving an alternative's skill id (transient ones: the routing is retried)."""
    if not job.overflow:
        return job, skill_id
    fields = {"routing_id": job.routing_id, "contact_id": job.contact_id, "intent": job.intent}
    snapshot = ctx.activity.current()
    if snapshot is None:
        OVERFLOW_STATE_UNAVAILABLE.inc()
        ctx.store.note_overflow(job.routing_id, None)
        log.info(
            "no skill activity younger than %gs (CXone slow or down): overflow rules not "
            "checked, the route's own queue %s is used",
            ctx.activity.stale_after_seconds,
            job.queue_label,
            extra=fields,
        )
        return job, skill_id
    decision = decide(
        job.queue_label, skill_id, job.overflow, snapshot.of, lambda rule: _skill_of(rule, ctx, fields)
    )
    for unknown in decision.unknown:
        _note_missing(unknown, snapshot.of(unknown.skill_id) is None)
    public = decision.to_public()
    changed = ctx.store.note_overflow(job.routing_id, public)
    if not decision.moved:
        return job, skill_id
    if changed:  # a retry that decides the same again is the same overflow, counted once
        for hop in decision.hops:
            OVERFLOWS.labels(
                from_queue=hop.from_label, to_queue=hop.rule.label, rule=hop.rule.condition.text
            ).inc()
    _log_overflow(job, decision, fields)
    last = decision.hops[-1]
    return replace(job, queue_name=last.rule.queue_name, skill_id=last.rule.skill_id), last.skill_id


def _skill_of(rule: OverflowRule, ctx: WorkerContext, fields: dict) -> int | None:
    """The skill id of an alternative; None (the rule is skipped) when CXone has no such queue."""
    if rule.skill_id is not None:
        return rule.skill_id
    try:
        return ctx.directory.skill_id(rule.queue_name or "")
    except UnknownQueue as exc:
        log.error(
            "overflow alternative skipped: %s (check the routing table with python -m ops doctor)",
            exc.reason,
            extra=fields,
        )
        return None


def _note_missing(unknown: Unknown, skill_unlisted: bool) -> None:
    """Count a rule left unchecked for want of a value; log it once per skill and field."""
    field = FIELDS[unknown.quantity]
    SKILL_ACTIVITY_FIELDS_MISSING.labels(field=field).inc()
    with _missing_lock:
        if (unknown.skill_id, field) in _missing_logged:
            return
        _missing_logged.add((unknown.skill_id, field))
    if skill_unlisted:
        what = f"lists no activity for skill {unknown.skill_id} ({unknown.queue})"
    else:
        what = f"gives no {field} for skill {unknown.skill_id} ({unknown.queue})"
    log.warning(
        "CXone's skill activity %s: overflow rules on it are never applied (python -m ops doctor "
        "shows the fields the tenant returns)",
        what,
        extra={"skill_id": unknown.skill_id, "field": field},
    )


def _log_overflow(job: RoutingJob, decision: OverflowDecision, fields: dict) -> None:
    """One line per routing moved: the queue asked for, the queue used, and each rule."""
    public = decision.to_public() or {}
    moves = "; ".join(
        f"{hop.from_label} -> {hop.rule.label} ({hop.rule.condition.text}, "
        f"{hop.rule.condition.kind.public_name} {hop.to_public()[hop.rule.condition.kind.public_name]})"
        for hop in decision.hops
    )
    log.info(
        "overflow: %s",
        moves,
        extra={
            **fields,
            "queue_asked": job.queue_label,
            "queue": public.get("to"),
            "overflow_rule": public.get("rule"),
        },
    )
