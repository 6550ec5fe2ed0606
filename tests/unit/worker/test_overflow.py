"""The worker's overflow decision, just before the routing call: fresh, stale and missing state."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shared import redis_keys
from shared.cxone.errors import Transient
from shared.routing.records import RETRYING, ROUTED
from shared.routing.table import Queue, RoutingTable
from tests.support.clock import FakeClock
from tests.support.cxone import SKILLS
from worker.metrics import WORKER_REGISTRY
from worker.routing import RetryLater, process

BILLING = SKILLS["Billing Disputes"]
OVERFLOW = SKILLS["Sales Support Overflow"]
CALLBACK_SKILL = 1400001
TABLE = RoutingTable.parse(
    "routes:\n"
    "  billing_dispute:\n"
    "    queue: Billing Disputes\n"
    "    overflow:\n"
    "      - to: Sales Support Overflow\n"
    "        when: {agents_available_below: 1}\n"
    "      - to: {skill_id: 1400001}\n"
    "        when: {queue_count_above: 25}\n"
    "  claims: {queue: Claims, mode: voice, overflow: [{to: Sales Support Overflow, "
    "when: {longest_wait_above: 300}}]}\n"
)
RULES = TABLE.overflow_rules(Queue(name="Billing Disputes"))
#: Billing Disputes as CXone's skill activity shows it when it can take a contact.
ROOM = {"agentsAvailable": 2, "queueCount": 3, "longestQueueTimeInSeconds": 40}


SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml").read_text())
ROUTING_SCHEMA = Draft202012Validator(
    {"$ref": "urn:spec#/components/schemas/Routing"},
    registry=Registry().with_resource(
        "urn:spec", Resource.from_contents(SPEC, default_specification=DRAFT202012)
    ),
)


def forget_the_copy(ctx) -> None:
    """As if the shared copy of the skill activity had expired: the next decision asks CXone."""
    ctx.redis.delete(
        redis_keys.CXONE_SKILL_ACTIVITY,
        redis_keys.CXONE_SKILL_ACTIVITY_FETCHED_AT,
        redis_keys.CXONE_SKILL_ACTIVITY_REFRESH,
    )


def metric(name: str, **labels: str) -> float:
    return WORKER_REGISTRY.get_sample_value(name, labels) or 0.0


def overflows(to_queue: str = "Sales Support Overflow", rule: str = "agents_available_below 1") -> float:
    return metric("router_overflows_total", from_queue="Billing Disputes", to_queue=to_queue, rule=rule)


@pytest.fixture
def job(make_job):
    return make_job("digital", contact_id="7000101", overflow=RULES)


def test_no_agent_available_sends_the_contact_to_the_alternative(ctx, cxone, job) -> None:
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}
    before = overflows()

    assert process(job, ctx) is None

    assert cxone.calls_to("route_digital") == [("7000101", OVERFLOW)]
    record = ctx.store.get(job.routing_id)
    assert record.state == ROUTED and record.skill_id == OVERFLOW
    public = record.to_public()
    assert public["queue"] == "Sales Support Overflow"
    assert public["queueAsked"] == "Billing Disputes"
    assert public["overflow"] == {
        "from": "Billing Disputes",
        "to": "Sales Support Overflow",
        "rule": "agents_available_below 1",
        "agentsAvailable": 0,
    }
    assert overflows() == before + 1
    ROUTING_SCHEMA.validate(public)  # as docs/openapi.yaml describes GET /routings/<id>


def test_the_next_rule_that_holds_wins(ctx, cxone, job) -> None:
    cxone.activity[BILLING] = {**ROOM, "queueCount": 30}

    process(job, ctx)

    assert cxone.calls_to("route_digital") == [("7000101", CALLBACK_SKILL)]
    assert ctx.store.get(job.routing_id).to_public()["queue"] == "skill 1400001"


def test_a_queue_that_can_take_the_contact_keeps_it(ctx, cxone, job) -> None:
    cxone.activity[BILLING] = ROOM

    process(job, ctx)

    assert cxone.calls_to("route_digital") == [("7000101", BILLING)]
    public = ctx.store.get(job.routing_id).to_public()
    assert public["queue"] == "Billing Disputes"
    assert "overflow" not in public and "queueAsked" not in public


def test_a_route_without_rules_never_asks_for_the_state(ctx, cxone, make_job) -> None:
    process(make_job("digital"), ctx)

    assert cxone.calls_to("skill_activity") == []


def test_one_refresh_serves_the_routings_of_a_ttl(ctx, cxone, make_job) -> None:
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}

    for n in range(5):
        process(make_job("digital", contact_id=f"700020{n}", overflow=RULES), ctx)

    assert len(cxone.calls_to("skill_activity")) == 1
    assert [skill for _, skill in cxone.calls_to("route_digital")] == [OVERFLOW] * 5


def test_stale_state_keeps_the_main_queue(clock: FakeClock, ctx, cxone, make_job) -> None:
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}
    process(make_job("digital", contact_id="7000301", overflow=RULES), ctx)
    cxone.fail_next("skill_activity", *[Transient("skill_activity: HTTP 503", status=503)] * 10)
    before = metric("router_overflow_state_unavailable_total")

    # Within three TTLs the last copy still counts (CXone was asked again, and failed) ...
    clock.advance(ctx.settings.cxone_activity_ttl_seconds * 2 + 0.01)
    process(make_job("digital", contact_id="7000302", overflow=RULES), ctx)
    # ... older than that it is not used: the route's own queue, never a guess.
    clock.advance(ctx.settings.cxone_activity_ttl_seconds + 0.01)
    stale = make_job("digital", contact_id="7000303", overflow=RULES)
    process(stale, ctx)

    assert [skill for _, skill in cxone.calls_to("route_digital")] == [OVERFLOW, OVERFLOW, BILLING]
    assert "overflow" not in ctx.store.get(stale.routing_id).to_public()
    assert metric("router_overflow_state_unavailable_total") == before + 1


def test_missing_state_keeps_the_main_queue(ctx, cxone, job) -> None:
    cxone.fail_next("skill_activity", Transient("skill_activity: connect timeout", not_delivered=True))
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}  # what CXone would have said

    process(job, ctx)

    assert cxone.calls_to("route_digital") == [("7000101", BILLING)]


def test_a_missing_field_never_moves_the_contact_and_is_counted_and_logged_once(
    ctx, cxone, make_job, caplog: pytest.LogCaptureFixture
) -> None:
    cxone.activity[BILLING] = {"queueCount": 3}  # no agentsAvailable, no longest wait
    before = metric("router_skill_activity_fields_missing_total", field="agentsAvailable")

    with caplog.at_level(logging.WARNING):
        for n in range(2):
            process(make_job("digital", contact_id=f"700040{n}", overflow=RULES), ctx)

    assert [skill for _, skill in cxone.calls_to("route_digital")] == [BILLING, BILLING]
    assert metric("router_skill_activity_fields_missing_total", field="agentsAvailable") == before + 2
    logged = [r.getMessage() for r in caplog.records if "agentsAvailable" in r.getMessage()]
    assert logged == [
        f"CXone's skill activity gives no agentsAvailable for skill {BILLING} (Billing Disputes): "
        "overflow rules on it are never applied (python -m ops doctor shows the fields the tenant returns)"
    ]


def test_a_skill_cxone_lists_no_activity_for_keeps_its_queue(ctx, cxone, job) -> None:
    cxone.activity[999] = {"agentsAvailable": 0, "queueCount": 99}

    process(job, ctx)

    assert cxone.calls_to("route_digital") == [("7000101", BILLING)]


def test_each_attempt_decides_again_and_the_record_follows(ctx, cxone, job) -> None:
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}
    cxone.fail_next("route_digital", Transient("routing_queue: HTTP 503", status=503))
    before = overflows()

    assert isinstance(process(job, ctx), RetryLater)
    assert ctx.store.get(job.routing_id).state == RETRYING
    assert ctx.store.get(job.routing_id).to_public()["queue"] == "Sales Support Overflow"
    # The retry decides the same: one routing overflowed, counted once.
    forget_the_copy(ctx)
    cxone.fail_next("route_digital", Transient("routing_queue: HTTP 503", status=503))
    process(job, ctx, attempt=1)
    assert overflows() == before + 1
    # An agent came free before the next attempt: the contact goes to Billing after all.
    cxone.activity[BILLING] = ROOM
    forget_the_copy(ctx)
    assert process(job, ctx, attempt=2) is None

    assert cxone.calls_to("route_digital")[-1] == ("7000101", BILLING)
    public = ctx.store.get(job.routing_id).to_public()
    assert public["queue"] == "Billing Disputes" and "overflow" not in public


def test_an_alternative_cxone_does_not_have_is_skipped(ctx, cxone, make_job, caplog) -> None:
    rules = RoutingTable.parse(
        "routes:\n  b: {queue: Billing Disputes, overflow: [{to: No Such Queue, when: "
        "{agents_available_below: 1}}, {to: Claims, when: {queue_count_above: 1}}]}\n"
    ).overflow_rules(Queue(name="Billing Disputes"))
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}

    process(make_job("digital", contact_id="7000501", overflow=rules), ctx)

    assert cxone.calls_to("route_digital") == [("7000501", SKILLS["Claims"])]
    assert any("No Such Queue" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_a_voice_signal_names_the_queue_used(ctx, cxone, make_job) -> None:
    rules = TABLE.overflow_rules(Queue(name="Claims"))
    cxone.activity[SKILLS["Claims"]] = {"longestQueueTimeInSeconds": 301}
    job = make_job("voice", contact_id="7000601", overflow=rules, signal_params=("{skill_id}", "{queue}"))

    process(job, ctx)

    assert cxone.calls_to("signal") == [("7000601", [str(OVERFLOW), "Sales Support Overflow"])]
    assert ctx.store.get(job.routing_id).to_public()["overflow"] == {
        "from": "Claims",
        "to": "Sales Support Overflow",
        "rule": "longest_wait_above 300",
        "longestWaitSeconds": 301,
    }
    ROUTING_SCHEMA.validate(ctx.store.get(job.routing_id).to_public())


def test_the_task_message_keeps_the_queue_asked_for(ctx, cxone, make_job) -> None:
    cxone.activity[BILLING] = {**ROOM, "agentsAvailable": 0}
    cxone.fail_next("route_digital", Transient("routing_queue: HTTP 500", status=500))
    window = ctx.settings.routing_retry_window_seconds
    job = make_job("digital", contact_id="7000701", overflow=RULES, received_at=time.time() - window)

    process(job, ctx)  # past its retry window at once: failed and dead-lettered

    letter = ctx.store.dead_letter(job.routing_id)
    assert letter is not None
    assert letter["job"]["queue_name"] == "Billing Disputes"
    assert letter["job"]["overflow"][0]["queue_name"] == "Sales Support Overflow"
