"""The doctor's live queue state: each queue the table can send to, with agents available, queue
count, longest wait and its overflow rules, and one skill's activity fields as CXone returned them
(ops/doctor.py, with a fake CXone)."""

from __future__ import annotations

from typing import Any, cast

import fakeredis

from ops.doctor import FAIL, OK, SKIP, WARN, Report, _check_queue_state, _check_routes, render
from shared.cxone.errors import Permanent
from shared.routing.table import RoutingTable

TABLE = """
fallback: General Inquiry
routes:
  billing_question:
    queue: Billing
    overflow:
      - to: General Inquiry
        when: {agents_available_below: 1}
      - to: {skill_id: 1200042}
        when: {longest_wait_above: 300}
  sales_inquiry: Sales Support
"""
SKILLS = {"Billing": 1200005, "General Inquiry": 1200009, "Sales Support": 1200001}


def activity(skill_id: int, **fields: Any) -> dict:
    return {"skillId": skill_id, "skillName": "x", "agentsLoggedIn": 5, **fields}


class FakeCXone:
    """The part of the CXone client the doctor uses here: the skills list and the activity."""

    timeout = (0.5, 0.5)

    def __init__(self, entries: list[dict] | None = None, error: Exception | None = None):
        self.entries = entries
        self.error = error
        self.redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())

    def api_base(self) -> str:
        return "https://api-test.example.invalid"

    def search_skills(self, search: str, skip: int = 0, top: int = 100) -> dict:
        matches = [
            {"skillId": sid, "skillName": name, "isActive": True}
            for name, sid in SKILLS.items()
            if search in name
        ]
        return {"skills": matches[skip : skip + top], "totalRecords": len(matches)}

    def skill_activity(self) -> dict:
        if self.error is not None:
            raise self.error
        return {"skillActivity": self.entries or []}


def check(cxone: FakeCXone, table: str = TABLE) -> Report:
    report = Report()
    parsed = RoutingTable.parse(table)
    found = _check_routes(report, parsed, cast(Any, cxone), "unused")
    _check_queue_state(report, parsed, cast(Any, cxone), "unused", found)
    return report


ALL = [
    activity(1200005, agentsAvailable=0, queueCount=4, longestQueueTimeInSeconds=70),
    activity(1200009, agentsAvailable=3, queueCount=0, longestQueueTimeInSeconds=0),
    activity(1200001, agentsAvailable=2, queueCount=1, longestQueueTimeInSeconds=12.5),
    activity(1200042, agentsAvailable=1, queueCount=0, longestQueueTimeInSeconds=0),
]


def test_each_queue_shows_its_live_state_and_its_rules() -> None:
    report = check(FakeCXone(ALL))

    by_queue = {q.queue: q for q in report.queues}
    assert list(by_queue) == ["Billing", "Sales Support", "General Inquiry", "skill 1200042"]
    billing = by_queue["Billing"]
    assert (
        billing.skill_id,
        billing.agents_available,
        billing.queue_count,
        billing.longest_wait_seconds,
    ) == (
        1200005,
        0,
        4,
        70,
    )
    assert billing.overflow == [
        "-> General Inquiry if agents_available_below 1",
        "-> skill 1200042 if longest_wait_above 300",
    ]
    assert by_queue["skill 1200042"].agents_available == 1  # an alternative only: listed too
    assert {q.status for q in report.queues} == {OK}
    (line,) = [c for c in report.checks if c.name == "cxone skill activity"]
    assert line.status == OK and line.detail.startswith("4 skill(s) listed; every routed skill has")
    # The first routed skill's activity, exactly as CXone returned it.
    assert report.activity == {"skillId": 1200005, "queue": "Billing", "fields": ALL[0]}


def test_the_report_prints_the_numbers_the_rules_and_the_raw_fields() -> None:
    text = render(check(FakeCXone(ALL)))

    lines = text.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("QUEUE "))
    assert lines[header].split() == [
        "QUEUE",
        "SKILL",
        "ID",
        "AGENTS",
        "AVAILABLE",
        "QUEUE",
        "COUNT",
        "LONGEST",
        "WAIT",
        "RESULT",
    ]
    assert lines[header + 1].split() == ["Billing", "1200005", "0", "4", "70s", "ok"]
    assert lines[header + 2].strip() == "overflow -> General Inquiry if agents_available_below 1"
    assert "skill activity of skill 1200005 'Billing' as CXone returned it" in text
    assert '"longestQueueTimeInSeconds": 70' in text


def test_a_field_a_rule_needs_that_cxone_does_not_give_is_a_warning() -> None:
    entries = [activity(1200005, queueCount=4), *ALL[1:]]  # Billing without agentsAvailable nor longest wait

    report = check(FakeCXone(entries))

    billing = next(q for q in report.queues if q.queue == "Billing")
    assert billing.status == WARN
    assert billing.agents_available is None and billing.queue_count == 4
    assert "no agentsAvailable, longestQueueTimeInSeconds for skill 1200005" in billing.detail
    (line,) = [c for c in report.checks if c.name == "cxone skill activity"]
    assert line.status == WARN and "no agentsAvailable, longestQueueTimeInSeconds" in line.detail
    assert "   ?   " in render(report)  # an unknown value is shown as such, not as 0


def test_a_skill_with_rules_cxone_lists_no_activity_for_is_a_warning() -> None:
    report = check(FakeCXone(ALL[1:]))

    billing = next(q for q in report.queues if q.queue == "Billing")
    assert billing.status == WARN and "lists no activity for skill 1200005" in billing.detail
    assert report.activity is not None and report.activity["skillId"] == 1200001  # next routed skill


def test_an_alternative_cxone_does_not_have_fails() -> None:
    table = TABLE.replace("{skill_id: 1200042}", "Lost Desk")

    report = check(FakeCXone(ALL), table)

    lost = next(q for q in report.queues if q.queue == "Lost Desk")
    assert lost.status == FAIL and "missing: no CXone skill has this exact name" in lost.detail
    assert report.problems() == 1


def test_a_main_queue_without_a_skill_is_left_to_the_route_line() -> None:
    report = check(FakeCXone(ALL), "routes:\n  lost: Lost Desk\n")

    (lost,) = report.queues
    assert lost.status == SKIP
    assert report.problems() == 1  # counted once, on the route


def test_activity_refused_fails_when_rules_need_it_and_warns_otherwise() -> None:
    refused = Permanent("skill_activity: HTTP 403: Forbidden", status=403, endpoint="skill_activity")

    with_rules = check(FakeCXone(error=refused))
    without = check(FakeCXone(error=refused), "routes:\n  sales: Sales Support\n")

    (line,) = [c for c in with_rules.checks if c.name == "cxone skill activity"]
    assert line.status == FAIL
    assert "HTTP 403" in line.detail and "lack the permission" in line.detail
    assert "overflow rules never apply" in line.detail
    assert [c.status for c in without.checks if c.name == "cxone skill activity"] == [WARN]
    assert with_rules.queues == [] and with_rules.activity is None
