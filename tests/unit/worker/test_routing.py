"""worker.routing.process: carrying a routing out once, retrying what is transient, failing the rest."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from shared import redis_keys
from shared.cxone.client import CXoneClient
from shared.cxone.errors import OutcomeUnknown, Permanent, RateLimited, Throttled, Transient
from shared.routing.backlog import Parked
from shared.routing.job import RoutingJob
from shared.routing.records import FAILED, QUEUED, RETRYING, ROUTED, SUPERSEDED
from tests.support.cxone import SKILLS, FakeCXone
from worker.routing import MAX_REDELIVERIES, Failed, RetryLater, carry_out, process, signal_params


class WorkerKilled(BaseException):
    """Stands in for SIGKILL/OOM: nothing in the worker catches it."""


def dead_letter(ctx, routing_id: str) -> dict | None:
    raw = ctx.redis.hget(redis_keys.DEAD_LETTERS, routing_id)
    return json.loads(raw) if raw else None


def is_open(ctx, routing_id: str) -> bool:
    return ctx.redis.zscore(redis_keys.OPEN_ROUTINGS, routing_id) is not None


# ----------------------------------------------------------------------------- digital


def test_digital_job_is_routed_to_the_resolved_skill(ctx, cxone, make_job):
    job = make_job("digital")

    assert process(job, ctx) is None

    assert cxone.calls_to("route_digital") == [("728471935", SKILLS["Billing Disputes"])]
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED
    assert record.skill_id == SKILLS["Billing Disputes"]
    assert record.routed_at is not None
    assert not is_open(ctx, job.routing_id)
    assert not ctx.redis.exists(redis_keys.contact_lease(job.contact_id))


def test_queue_name_must_match_exactly(ctx, cxone, make_job):
    job = make_job("digital", queue_name="Sales Support")

    process(job, ctx)

    assert cxone.calls_to("route_digital") == [("728471935", SKILLS["Sales Support"])]


def test_skill_lookup_is_cached_between_jobs(ctx, cxone, make_job):
    process(make_job("digital"), ctx)
    process(make_job("digital"), ctx)

    assert len(cxone.calls_to("search_skills")) == 1
    assert len(cxone.calls_to("route_digital")) == 2


def test_given_skill_id_needs_no_lookup(ctx, cxone, make_job):
    job = make_job("digital", queue_name=None, skill_id=1200042)

    assert process(job, ctx) is None

    assert cxone.calls_to("search_skills") == []
    assert cxone.calls_to("route_digital") == [("728471935", 1200042)]
    assert ctx.store.get(job.routing_id).skill_id == 1200042


@pytest.mark.parametrize("final_state", [ROUTED, FAILED])
def test_finished_job_is_not_carried_out_again(ctx, cxone, make_job, final_state):
    job = make_job("digital")
    if final_state == ROUTED:
        process(job, ctx)
    else:
        ctx.store.mark_failed(job.routing_id, "failed earlier", job.to_message())
    calls_before = list(cxone.calls)

    assert process(job, ctx) is None
    assert process(job, ctx, attempt=3, redelivered=True) is None

    assert cxone.calls == calls_before
    assert ctx.store.get(job.routing_id).state == final_state


def test_expired_record_is_recreated_and_routed(ctx, cxone, make_job):
    job = make_job("digital", store=False)

    assert process(job, ctx) is None

    assert ctx.store.get(job.routing_id).state == ROUTED
    assert len(cxone.calls_to("route_digital")) == 1


def test_unknown_queue_fails_at_once(ctx, cxone, make_job):
    job = make_job("digital", queue_name="No Such Queue")

    assert process(job, ctx) == Failed("queue 'No Such Queue': missing: no CXone skill has this exact name")

    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert "No Such Queue" in record.failed_reason
    assert cxone.calls_to("route_digital") == []
    assert dead_letter(ctx, job.routing_id)["job"] == job.to_message()


# ----------------------------------------------------------------------------- voice


def test_voice_job_sends_exactly_one_signal(ctx, cxone, make_job):
    job = make_job("voice")

    assert process(job, ctx) is None

    skill = SKILLS["Claims"]
    assert cxone.calls_to("signal") == [("700111223", [str(skill), "claims", job.routing_id, "Claims"])]
    assert cxone.calls_to("route_digital") == []
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_signal_params_are_skill_intent_routing_and_queue(make_job):
    job = make_job("voice", store=False)

    assert signal_params(job, 42) == ["42", "claims", job.routing_id, "Claims"]
    by_id = dataclasses.replace(job, queue_name=None, skill_id=42)
    assert signal_params(by_id, 42) == ["42", "claims", job.routing_id, "skill 42"]


def test_the_template_in_the_message_is_rendered_just_before_the_signal(ctx, cxone, make_job):
    job = make_job("voice", signal_params=("Escalate", "{skill_id}", "{contact_id}", "q={queue}"))

    assert process(job, ctx) is None

    skill = SKILLS["Claims"]
    assert cxone.calls_to("signal") == [("700111223", ["Escalate", str(skill), "700111223", "q=Claims"])]
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_a_message_from_before_templates_gets_the_default_parameters(make_job):
    job = make_job("voice", store=False)
    old_message = {k: v for k, v in job.to_message().items() if k != "signal_params"}

    assert signal_params(RoutingJob.from_message(old_message), 42) == [
        "42",
        "claims",
        job.routing_id,
        "Claims",
    ]


def test_second_delivery_after_success_sends_nothing(ctx, cxone, make_job):
    job = make_job("voice")
    process(job, ctx)

    assert process(job, ctx) is None
    assert process(job, ctx, redelivered=True) is None

    assert len(cxone.calls_to("signal")) == 1


def test_signal_marker_without_routed_state_fails_as_outcome_unknown(ctx, cxone, make_job):
    """A worker died after starting the signal: it may have reached CXone, so never send again."""
    job = make_job("voice")
    ctx.redis.set(redis_keys.routing_signal_sent(job.routing_id), str(time.time()))

    assert process(job, ctx, redelivered=True) == Failed(
        "signal outcome unknown (a signal for this routing was already started); not sent twice"
    )

    assert cxone.calls_to("signal") == []
    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert "outcome is unknown" in record.failed_reason
    assert dead_letter(ctx, job.routing_id)["job"] == job.to_message()


def test_signal_not_delivered_can_be_retried_and_is_sent_once_more(ctx, cxone, make_job):
    job = make_job("voice")
    cxone.fail_next(
        "signal",
        Transient("CXone answered 503 before processing", status=503, endpoint="signal", not_delivered=True),
    )

    outcome = process(job, ctx)

    assert isinstance(outcome, RetryLater)
    assert ctx.store.get(job.routing_id).state == RETRYING
    assert not ctx.redis.exists(redis_keys.routing_signal_sent(job.routing_id))

    assert process(job, ctx, attempt=1) is None

    assert len(cxone.calls_to("signal")) == 2
    assert ctx.store.get(job.routing_id).state == ROUTED
    assert process(job, ctx, attempt=1, redelivered=True) is None
    assert len(cxone.calls_to("signal")) == 2


def test_throttled_signal_was_not_delivered_so_it_is_retried(ctx, cxone, make_job):
    job = make_job("voice")
    cxone.fail_next("signal", Throttled("429", retry_after=2, status=429, endpoint="signal"))

    assert isinstance(process(job, ctx), Parked)  # waits out CXone's pause in the backlog
    assert process(job, ctx, attempt=1) is None
    assert len(cxone.calls_to("signal")) == 2


def test_ambiguous_signal_failure_is_failed_not_retried(ctx, cxone, make_job):
    job = make_job("voice")
    cxone.fail_next(
        "signal", Transient("CXone answered 502", status=502, endpoint="signal", not_delivered=False)
    )

    assert process(job, ctx) == Failed(
        "signal outcome unknown (CXone answered 502 (bad gateway) on signal); not sent twice"
    )

    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert "502" in record.failed_reason
    assert "not re-sent" in record.failed_reason
    assert ctx.redis.exists(redis_keys.routing_signal_sent(job.routing_id))
    assert dead_letter(ctx, job.routing_id) is not None
    # A redelivered copy does not send it again either.
    assert process(job, ctx, redelivered=True) is None
    assert len(cxone.calls_to("signal")) == 1


def test_refused_signal_fails_and_clears_the_marker(ctx, cxone, make_job):
    job = make_job("voice")
    cxone.fail_next("signal", Permanent("404 contact not found", status=404, endpoint="signal"))

    assert process(job, ctx) == Failed("CXone answered 404 (not found) on signal")

    assert ctx.store.get(job.routing_id).state == FAILED
    assert not ctx.redis.exists(redis_keys.routing_signal_sent(job.routing_id))


def test_outcome_unknown_is_permanent():
    assert issubclass(OutcomeUnknown, Permanent)


# ----------------------------------------------------------------------------- retries


def test_throttled_with_retry_after_waits_in_the_backlog(ctx, cxone, make_job):
    # The client has set CXone's pause for every worker: no dispatcher hands a routing out before
    # it ends, so the routing waits in Redis rather than in a Celery countdown.
    job = make_job("digital")
    cxone.fail_next(
        "route_digital",
        Throttled("429 Too Many Requests", retry_after=7, status=429, endpoint="routing_queue"),
    )

    before = time.time()
    outcome = process(job, ctx)

    assert isinstance(outcome, Parked) and outcome.position == 1
    record = ctx.store.get(job.routing_id)
    assert record.state == "waiting"
    assert record.attempts == 0
    assert before <= record.waiting_since <= time.time()
    assert record.to_public()["waitingFor"] == "CXone answered 429 (throttled) on routing_queue"


def test_throttled_without_retry_after_backs_off(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("route_digital", Throttled("429 Too Many Requests", status=429, endpoint="routing_queue"))

    outcome = process(job, ctx)

    assert isinstance(outcome, RetryLater)
    record = ctx.store.get(job.routing_id)
    assert record.state == RETRYING and record.attempts == 1
    assert record.last_error == "429 Too Many Requests"


def test_the_reason_flower_shows_never_quotes_cxone_while_the_record_does(ctx, cxone, make_job):
    job = make_job("digital")
    said = "routing_queue: HTTP 503: upstream echoed customer words"
    cxone.fail_next("route_digital", Transient(said, status=503, endpoint="routing_queue"))

    outcome = process(job, ctx)

    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "CXone answered 503 (outage) on routing_queue"
    assert ctx.store.get(job.routing_id).last_error == said  # for GET /routings and ops stuck


def test_rate_limited_parks_once_keeps_its_first_wait_and_is_no_attempt(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("route_digital", RateLimited(3.0), RateLimited(4.5))

    first = process(job, ctx, task_id="task-1")
    second = process(job, ctx, task_id="task-1")  # the message delivered again: parks idempotently

    assert isinstance(first, Parked) and isinstance(second, Parked)
    assert first.since == second.since and second.position == 1
    assert ctx.redis.zcard(redis_keys.BACKLOG) == 1
    record = ctx.store.get(job.routing_id)
    assert record.state == "waiting" and record.attempts == 0 and record.task_id == "task-1"
    assert record.job == job.to_message()  # all the message held: the dispatcher re-sends it
    assert process(job, ctx) is None
    assert ctx.store.get(job.routing_id).state == ROUTED
    assert ctx.redis.zcard(redis_keys.BACKLOG) == 0  # settled: out of the backlog


def test_repeated_transient_failures_back_off_exponentially(ctx, cxone, make_job):
    job = make_job("digital")
    cap = ctx.settings.routing_max_countdown_seconds

    for failures in range(1, 8):
        cxone.fail_next(
            "route_digital", Transient("CXone answered 502", status=502, endpoint="routing_queue")
        )
        outcome = process(job, ctx, attempt=failures - 1)

        backoff = min(cap, 2 ** (failures - 1))
        assert isinstance(outcome, RetryLater)
        assert backoff / 2 <= outcome.countdown <= backoff, (failures, outcome)
        assert ctx.store.get(job.routing_id).attempts == failures

    assert process(job, ctx, attempt=7) is None
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED
    assert record.attempts == 7


def test_lookup_failure_is_transient_too(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("search_skills", Transient("timeout", endpoint="skills", not_delivered=True))

    assert isinstance(process(job, ctx), RetryLater)
    assert process(job, ctx, attempt=1) is None
    assert cxone.calls_to("route_digital") == [("728471935", SKILLS["Billing Disputes"])]


def test_retry_window_exceeded_fails_and_dead_letters(ctx, cxone, make_job):
    window = ctx.settings.routing_retry_window_seconds
    job = make_job("digital", received_at=time.time() - window + 0.1)
    cxone.fail_next("route_digital", Transient("CXone answered 503", status=503))

    before = time.time()
    outcome = process(job, ctx)
    after = time.time()

    assert isinstance(outcome, Failed)
    assert outcome.reason == f"gave up after the {window}s retry window (1 failed attempts); last error: " + (
        "CXone answered 503 (outage)"
    )

    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert f"{window}s retry window" in record.failed_reason
    assert "CXone answered 503" in record.failed_reason
    assert not is_open(ctx, job.routing_id)
    letter = dead_letter(ctx, job.routing_id)
    assert letter["job"] == job.to_message()
    assert letter["reason"] == record.failed_reason
    assert before <= letter["failed_at"] <= after


def test_permanent_error_fails_at_once(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next(
        "route_digital",
        Permanent("CXone answered 404: contact not found", status=404, endpoint="routing_queue"),
    )

    assert process(job, ctx) == Failed("CXone answered 404 (not found) on routing_queue")

    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert record.failed_reason == "CXone answered 404: contact not found"
    assert len(cxone.calls_to("route_digital")) == 1
    assert dead_letter(ctx, job.routing_id)["job"] == job.to_message()


@pytest.mark.parametrize("mode", ["digital", "voice"])
@pytest.mark.parametrize("contact_id", ["..", ".", "sec-1", "٣٣", "1/2", "12345678901234567890123"])
def test_a_message_whose_contact_id_is_not_a_cxone_contact_id_fails_without_a_call(
    ctx, cxone, make_job, mode, contact_id
):
    # A message published before the ingress checked ids (a replayed dead letter, an old queue).
    job = make_job(mode, contact_id=contact_id)

    assert isinstance(process(job, ctx), Failed)

    assert cxone.calls == []  # no token, no skill lookup, no CXone call
    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert "is not a CXone contact id (CONTACT_ID_PATTERN" in record.failed_reason
    assert dead_letter(ctx, job.routing_id)["job"] == job.to_message()
    assert not is_open(ctx, job.routing_id)


def test_the_worker_uses_the_configured_contact_id_pattern(ctx, cxone, make_job):
    ctx.settings = dataclasses.replace(ctx.settings, contact_id_pattern=r"[0-9]{7}")

    process(make_job("digital", contact_id="7000001"), ctx)
    refused = make_job("digital", contact_id="728471935")
    process(refused, ctx)

    assert cxone.calls_to("route_digital") == [("7000001", SKILLS["Billing Disputes"])]
    assert ctx.store.get(refused.routing_id).state == FAILED


# ----------------------------------------------------------------------------- delivery


@pytest.mark.parametrize("lease_ttl", [1, 5, 30])
def test_lease_held_by_another_copy_means_retry_later(ctx, cxone, make_job, lease_ttl):
    job = make_job("digital")
    lease = redis_keys.contact_lease(job.contact_id)
    ctx.redis.set(lease, f"{job.routing_id} other-copy", ex=lease_ttl)

    outcome = process(job, ctx, redelivered=True)

    assert isinstance(outcome, RetryLater)
    assert 0 < outcome.countdown <= min(lease_ttl + 1, ctx.settings.routing_max_countdown_seconds)
    assert "another worker" in outcome.reason
    assert cxone.calls == []
    assert ctx.store.get(job.routing_id).state == QUEUED
    assert ctx.redis.get(lease) == f"{job.routing_id} other-copy".encode()  # left alone


def test_lease_is_released_after_a_crash(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("route_digital", RuntimeError("bug"))

    with pytest.raises(RuntimeError):
        process(job, ctx)

    assert not ctx.redis.exists(redis_keys.contact_lease(job.contact_id))
    assert process(job, ctx, redelivered=True) is None
    assert ctx.store.get(job.routing_id).state == ROUTED


def test_a_lease_that_expired_under_its_holder_is_not_deleted_by_it(ctx, cxone, make_job):
    """A holder slower than its lease must not free the lease another worker took since."""
    job = make_job("digital")
    lease = redis_keys.contact_lease(job.contact_id)

    def slow_call(contact_id, skill_id):
        ctx.redis.set(lease, "someone-else token", ex=30)  # ours expired; another took it

    cxone.route_digital = slow_call

    assert process(job, ctx) is None

    assert ctx.redis.get(lease) == b"someone-else token"


def test_poison_message_is_dead_lettered(ctx, cxone, make_job):
    job = make_job("digital")
    cxone.fail_next("route_digital", *[WorkerKilled() for _ in range(MAX_REDELIVERIES + 1)])

    with pytest.raises(WorkerKilled):
        process(job, ctx)  # first delivery
    for _ in range(MAX_REDELIVERIES):
        with pytest.raises(WorkerKilled):
            process(job, ctx, redelivered=True)

    outcome = process(job, ctx, redelivered=True)

    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith(f"poison message: delivered {MAX_REDELIVERIES + 1} times")

    assert len(cxone.calls_to("route_digital")) == MAX_REDELIVERIES + 1
    record = ctx.store.get(job.routing_id)
    assert record.state == FAILED
    assert "poison" in record.failed_reason
    assert dead_letter(ctx, job.routing_id)["job"] == job.to_message()


def test_redeliveries_are_counted_per_attempt(ctx, cxone, make_job):
    job = make_job("digital")
    for _ in range(MAX_REDELIVERIES):
        ctx.redis.incr(redis_keys.routing_deliveries(job.routing_id, 0))

    assert process(job, ctx, attempt=1, redelivered=True) is None

    assert ctx.store.get(job.routing_id).state == ROUTED


def test_poison_guard_spares_a_finished_routing(ctx, cxone, make_job):
    job = make_job("digital")
    process(job, ctx)
    ctx.redis.set(redis_keys.routing_deliveries(job.routing_id, 0), MAX_REDELIVERIES)

    assert process(job, ctx, redelivered=True) is None

    assert ctx.store.get(job.routing_id).state == ROUTED
    assert dead_letter(ctx, job.routing_id) is None


# ----------------------------------------------------------------------------- newest wins


def newer_than(make_job, older, **overrides):
    """A routing for the same contact, numbered after ``older``, with its record stored."""
    return make_job(contact_id=older.contact_id, contact_seq=(older.contact_seq or 0) + 1, **overrides)


def test_an_older_routing_run_after_a_newer_one_is_superseded_and_makes_no_call(ctx, cxone, make_job):
    older = make_job("digital", contact_id="7000001", contact_seq=1)
    newer = newer_than(make_job, older, intent="sales_inquiry", queue_name="Sales Support")

    assert process(newer, ctx) is None
    assert process(older, ctx) is None  # e.g. its retry came after the newer one ran

    assert cxone.calls_to("route_digital") == [("7000001", SKILLS["Sales Support"])]
    record = ctx.store.get(older.routing_id)
    assert record.state == SUPERSEDED
    assert record.superseded_by == newer.routing_id
    assert record.to_public()["supersededBy"] == newer.routing_id
    # Terminal, not a failure: no dead letter to replay, not open, not counted as stuck.
    assert dead_letter(ctx, older.routing_id) is None
    assert not is_open(ctx, older.routing_id)
    assert ctx.store.open_older_than(0) == []


def test_an_older_routing_yields_to_a_newer_one_the_ingress_accepted_before_it_ran(ctx, cxone, make_job):
    older = make_job("digital", contact_id="7000002", contact_seq=1)
    # The ingress settled the newer webhook (make_job stores its record, which advances the
    # contact's latest routing), but no worker has taken it yet.
    newer = newer_than(make_job, older, intent="sales_inquiry", queue_name="Sales Support")

    assert process(older, ctx) is None
    assert process(newer, ctx) is None

    assert ctx.store.get(older.routing_id).state == SUPERSEDED
    assert ctx.store.get(newer.routing_id).state == ROUTED
    assert cxone.calls_to("route_digital") == [("7000002", SKILLS["Sales Support"])]


def test_a_running_routing_finishes_first_and_the_newer_one_waits_for_the_lease(ctx, cxone, make_job):
    older = make_job("digital", contact_id="7000003", contact_seq=1)
    newer = None
    outcomes = []
    real_route = cxone.route_digital

    def route_while_a_newer_webhook_arrives(contact_id, skill_id):
        nonlocal newer
        if newer is None:  # the older routing is inside its CXone call: the customer changes their mind
            newer = newer_than(make_job, older, intent="sales_inquiry", queue_name="Sales Support")
            outcomes.append(process(newer, ctx))
        real_route(contact_id, skill_id)

    cxone.route_digital = route_while_a_newer_webhook_arrives

    assert process(older, ctx) is None

    (waited,) = outcomes
    assert isinstance(waited, RetryLater)
    assert waited.countdown <= 1.5  # the lease was taken just now: check again within a second
    assert older.routing_id in waited.reason
    record = ctx.store.get(newer.routing_id)
    assert (record.state, record.attempts) == (RETRYING, 0)  # waiting is no failed attempt
    assert "same contact" in record.last_error
    assert ctx.store.get(older.routing_id).state == ROUTED  # it ran to the end

    assert process(newer, ctx, attempt=1) is None

    assert ctx.store.get(newer.routing_id).state == ROUTED
    assert cxone.calls_to("route_digital") == [
        ("7000003", SKILLS["Billing Disputes"]),
        ("7000003", SKILLS["Sales Support"]),
    ]


def test_an_older_unsent_voice_signal_is_superseded_and_never_sent(ctx, cxone, make_job):
    older = make_job("voice", contact_id="7000004", contact_seq=1)
    newer = newer_than(make_job, older, mode="voice", intent="sales_inquiry", queue_name="Sales Support")

    assert process(older, ctx) is None
    assert process(newer, ctx) is None

    assert [call[1][0] for call in cxone.calls_to("signal")] == [str(SKILLS["Sales Support"])]
    assert ctx.store.get(older.routing_id).state == SUPERSEDED
    assert not ctx.redis.exists(redis_keys.routing_signal_sent(older.routing_id))


def test_a_superseded_routing_delivered_again_stays_superseded(ctx, cxone, make_job):
    older = make_job("digital", contact_id="7000005", contact_seq=1)
    newer_than(make_job, older)
    process(older, ctx)

    assert process(older, ctx, redelivered=True) is None
    assert process(older, ctx, attempt=2) is None

    assert cxone.calls == []
    assert ctx.store.get(older.routing_id).state == SUPERSEDED


def test_a_message_without_a_number_yields_to_a_numbered_routing_of_the_contact(ctx, cxone, make_job):
    """Messages published before routings were numbered carry no ``contact_seq``: any numbered
    routing of the contact came later, so it wins; with none, the old message runs."""
    alone = make_job("digital", contact_id="7000006", contact_seq=None)
    assert process(alone, ctx) is None
    assert ctx.store.get(alone.routing_id).state == ROUTED

    numbered = make_job("digital", contact_id="7000007", contact_seq=1, queue_name="Sales Support")
    unnumbered = make_job("digital", contact_id="7000007", contact_seq=None)
    assert process(unnumbered, ctx) is None
    assert process(numbered, ctx) is None

    assert ctx.store.get(unnumbered.routing_id).state == SUPERSEDED
    assert ctx.store.get(unnumbered.routing_id).superseded_by == numbered.routing_id
    assert cxone.calls_to("route_digital")[-1] == ("7000007", SKILLS["Sales Support"])


def test_the_lease_is_per_contact(ctx, cxone, make_job):
    busy = make_job("digital", contact_id="7000008", contact_seq=1)
    other = make_job("digital", contact_id="7000009", contact_seq=1)
    ctx.redis.set(redis_keys.contact_lease(busy.contact_id), "someone token", ex=30)

    assert isinstance(process(busy, ctx), RetryLater)
    assert process(other, ctx) is None

    assert cxone.calls_to("route_digital") == [("7000009", SKILLS["Billing Disputes"])]


def test_carry_out_returns_the_skill_id(ctx, make_job):
    assert carry_out(make_job("digital", store=False), ctx) == SKILLS["Billing Disputes"]


def test_fake_client_has_the_methods_the_worker_uses():
    for name in (
        "route_digital",
        "signal",
        "search_skills",
        "api_base",
        "token",
        "get_contact",
        "list_routing_queues",
    ):
        assert callable(getattr(CXoneClient, name)), name
        assert callable(getattr(FakeCXone, name)), name
