"""Overflow rules: how the routing table reads them, and the decision they lead to."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from shared.routing.job import RoutingJob
from shared.routing.overflow import (
    CONDITIONS,
    MAX_HOPS,
    Condition,
    OverflowDecision,
    decide,
)
from shared.routing.table import Queue, RoutingTable, RoutingTableError

ISSUE_EXAMPLE = """\
routes:
  billing_dispute:
    queue: Billing
    overflow:
      - to: General Inquiry
        when: {agents_available_below: 1}        # no agent of Billing available
      - to: Billing Callback
        when: {queue_count_above: 25}            # more than 25 contacts already waiting
      - to: General Inquiry
        when: {longest_wait_above: 300}          # someone has waited over 5 minutes
  sales_inquiry: Sales Support                   # unchanged: no overflow
"""


def errors_of(text: str) -> list[str]:
    """The table's error lines (without the heading), or [] when it loads."""
    try:
        RoutingTable.parse(text, source="routes.yaml")
    except RoutingTableError as exc:
        return [line.strip() for line in str(exc).splitlines()[1:]]
    return []


@dataclass
class State:
    """A queue's live values (None: CXone did not give it)."""

    agents_available: float | None = None
    queue_count: float | None = None
    longest_wait_seconds: float | None = None

    def value(self, quantity: str) -> float | None:
        return getattr(self, quantity)


# ------------------------------------------------------------------------------ the table


def test_the_issue_example_loads_with_its_rules_in_order() -> None:
    table = RoutingTable.parse(ISSUE_EXAMPLE)

    rules = table.overflow_rules(table.routes["billing_dispute"])
    assert [(rule.label, rule.condition.text) for rule in rules] == [
        ("General Inquiry", "agents_available_below 1"),
        ("Billing Callback", "queue_count_above 25"),
        ("General Inquiry", "longest_wait_above 300"),
    ]
    assert table.overflow_rules(table.routes["sales_inquiry"]) == ()
    # The route itself is unchanged: the queue it asks for.
    assert table.routes["billing_dispute"] == Queue(name="Billing")


def test_rules_belong_to_the_queue_so_an_alternatives_own_rules_follow() -> None:
    table = RoutingTable.parse(
        "fallback:\n"
        "  queue: General Inquiry\n"
        "  overflow: [{to: {skill_id: 1200099}, when: {queue_count_above: 40}}]\n"
        "routes:\n"
        "  billing_dispute:\n"
        "    queue: Billing\n"
        "    overflow: [{to: General Inquiry, when: {agents_available_below: 1}}]\n"
        "  billing_question: Billing\n"
        "  callback:\n"
        "    queue: Billing Callback\n"
    )

    (to_general,) = table.overflow_rules(Queue(name="Billing"))
    assert to_general.label == "General Inquiry"
    (to_skill,) = to_general.then  # General Inquiry's own rules, written on the fallback
    assert (to_skill.skill_id, to_skill.condition.text, to_skill.then) == (
        1200099,
        "queue_count_above 40",
        (),
    )
    # Every route to Billing gets Billing's rules; the fallback its own.
    assert table.overflow_rules(table.routes["billing_question"]) == (to_general,)
    assert table.fallback is not None
    assert table.overflow_rules(table.fallback) == (to_skill,)
    assert set(table.alternatives()) == {"General Inquiry", "skill 1200099"}


def test_an_alternative_may_carry_the_rules_of_a_queue_no_route_names() -> None:
    table = RoutingTable.parse(
        "routes:\n"
        "  billing_dispute:\n"
        "    queue: Billing\n"
        "    overflow:\n"
        "      - to:\n"
        "          queue: Billing Callback\n"
        "          overflow: [{to: General Inquiry, when: {longest_wait_above: 12.5}}]\n"
        "        when: {queue_count_above: 25}\n"
    )

    (callback,) = table.overflow_rules(Queue(name="Billing"))
    assert [(rule.label, rule.condition.text) for rule in callback.then] == [
        ("General Inquiry", "longest_wait_above 12.5")
    ]


def test_the_ingress_puts_the_queues_rules_in_the_task_message() -> None:
    table = RoutingTable.parse(ISSUE_EXAMPLE)
    rules = table.overflow_rules(table.routes["billing_dispute"])
    job = RoutingJob("r1", "7000001", "billing_dispute", "digital", queue_name="Billing", overflow=rules)

    message = job.to_message()

    assert message["overflow"][0] == {
        "queue_name": "General Inquiry",
        "skill_id": None,
        "condition": "agents_available_below",
        "threshold": 1,
        "overflow": [],
    }
    assert RoutingJob.from_message(message) == job


def test_a_task_message_with_a_rule_the_table_would_refuse_is_refused() -> None:
    message = RoutingJob("r1", "7000001", "x", "digital", queue_name="Billing").to_message()
    for bad in (
        [{"queue_name": "G", "skill_id": None, "condition": "agents_below", "threshold": 1}],
        [{"queue_name": "G", "skill_id": None, "condition": "agents_available_below", "threshold": 0}],
        [{"queue_name": None, "skill_id": None, "condition": "queue_count_above", "threshold": 1}],
        [{"queue_name": "G", "condition": "queue_count_above", "threshold": 1, "overflow": "x"}],
    ):
        with pytest.raises(ValidationError):
            RoutingJob.from_message({**message, "overflow": bad})


def test_a_queue_given_rules_twice_is_an_error_naming_both_lines() -> None:
    errors = errors_of(
        "routes:\n"
        "  a: {queue: Billing, overflow: [{to: G, when: {queue_count_above: 1}}]}\n"
        "  b: {queue: Billing, overflow: [{to: H, when: {queue_count_above: 2}}]}\n"
    )

    assert errors == [
        "routes.yaml:3: routes.b.overflow: queue 'Billing' already has overflow rules (routes.a.overflow, "
        "line 2): a queue's rules are written once and apply wherever the queue is used"
    ]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (  # two queues overflowing into each other
            "routes:\n"
            "  a: {queue: A, overflow: [{to: B, when: {queue_count_above: 1}}]}\n"
            "  b: {queue: B, overflow: [{to: A, when: {agents_available_below: 1}}]}\n",
            "routes.yaml:3: routes.b.overflow.0.to: overflow cycle A → B → A",
        ),
        (  # a queue overflowing into itself
            "routes:\n  a: {queue: A, overflow: [{to: A, when: {queue_count_above: 1}}]}\n",
            "routes.yaml:2: routes.a.overflow.0.to: overflow cycle A → A",
        ),
        (  # through the fallback and an alternative's own rules
            "fallback: {queue: G, overflow: [{to: {queue: C, overflow: [{to: A, when: "
            "{queue_count_above: 1}}]}, when: {queue_count_above: 2}}]}\n"
            "routes:\n"
            "  a: {queue: A, overflow: [{to: G, when: {queue_count_above: 3}}]}\n",
            "routes.yaml:1: fallback.overflow.0.to.overflow.0.to: overflow cycle",
        ),
    ],
)
def test_a_cycle_is_an_error_with_its_line(table: str, expected: str) -> None:
    errors = errors_of(table)

    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


def test_three_moves_are_allowed_and_four_are_an_error_with_the_line() -> None:
    def chain(length: int) -> str:
        lines = ["routes:"]
        for n in range(length):
            lines.append(
                f"  r{n}: {{queue: Q{n}, overflow: [{{to: Q{n + 1}, when: {{queue_count_above: 1}}}}]}}"
            )
        return "\n".join(lines) + "\n"

    assert errors_of(chain(MAX_HOPS)) == []
    errors = errors_of(chain(MAX_HOPS + 1))
    assert errors == [
        "routes.yaml:2: routes.r0.overflow.0.to: overflow chain Q0 → Q1 → Q2 → Q3 → Q4 makes 4 moves; "
        "at most 3 (each queue's own rules count)"
    ]


@pytest.mark.parametrize(
    ("alternative", "expected"),
    [
        ("{to: G, when: {agents_available: 1}}", "when.agents_available: unknown condition (expected"),
        ("{to: G, when: {agents_available_below: 0}}", "must be at least 1 (a count is never below 0)"),
        ("{to: G, when: {queue_count_above: -1}}", "when.queue_count_above: must be at least 0, got '-1'"),
        ("{to: G, when: {queue_count_above: 2.5}}", "must be a whole number, at least 0, got '2.5'"),
        ("{to: G, when: {queue_count_above: '3'}}", "must be a whole number, at least 0, got '3'"),
        ("{to: G, when: {longest_wait_above: true}}", "must be a number of seconds, at least 0, got 'true'"),
        ("{to: G, when: {longest_wait_above: [1]}}", "got 'a list or mapping'"),
        ("{to: G, when: {queue_count_above: 1, agents_available_below: 1}}", "when: must be exactly one"),
        ("{to: G, when: queue_count_above}", "when: must be exactly one condition"),
        ("{to: G}", "when: missing: the condition"),
        ("{when: {queue_count_above: 1}}", "to: missing: the queue"),
        ("{to: G, when: {queue_count_above: 1}, if: 1}", "overflow.0.if: unknown key (expected to, when)"),
        (
            "{to: {queue: G, mode: voice}, when: {queue_count_above: 1}}",
            "to.mode: an overflow alternative is",
        ),
        ("{to: {skill_id: 0}, when: {queue_count_above: 1}}", "to.skill_id: must be a positive integer"),
        ("{to: 42, when: {queue_count_above: 1}}", "to: bare number 42"),
        ("G", "overflow.0: must be {to: QUEUE, when: {CONDITION: N}}"),
    ],
)
def test_bad_alternatives_are_errors_with_their_line(alternative: str, expected: str) -> None:
    errors = errors_of(f"routes:\n  ok: Sales\n  a:\n    queue: A\n    overflow:\n      - {alternative}\n")

    assert errors, alternative
    assert all(error.startswith("routes.yaml:6: routes.a.overflow.0") for error in errors), errors
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize("value", ["[]", "{to: G}", "General Inquiry"])
def test_overflow_must_be_a_list_of_alternatives(value: str) -> None:
    errors = errors_of(f"routes:\n  a:\n    queue: A\n    overflow: {value}\n")

    assert errors == [
        "routes.yaml:4: routes.a.overflow: must be a list of alternatives, each "
        "{to: QUEUE, when: {CONDITION: N}}"
    ]


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(
        "routes:\n"
        "  a:\n"
        "    queue: A\n"
        "    overflow:\n"
        "      - {to: G, when: {queue_count_above: -1}}\n"
        "      - {to: H, when: {nope: 1}}\n"
        "  b: {skill_id: abc}\n"
    )

    assert [error.split(":")[1] for error in errors] == ["5", "6", "7"]


# -------------------------------------------------------------------- conditions (Hypothesis)

counts = st.integers(min_value=0, max_value=10_000)
condition_keys = st.sampled_from(sorted(CONDITIONS))


@given(key=condition_keys, threshold=st.integers(min_value=1, max_value=500), value=counts | st.none())
def test_a_condition_holds_exactly_when_its_comparison_does(
    key: str, threshold: int, value: int | None
) -> None:
    condition = Condition(key, threshold)

    if value is None:
        assert not condition.holds(value)  # unknown never moves a contact
    elif CONDITIONS[key].above:
        assert condition.holds(value) == (value > threshold)
    else:
        assert condition.holds(value) == (value < threshold)


thresholds = (
    st.integers(min_value=-5, max_value=10_000).map(str)
    | st.floats(min_value=-5, max_value=10_000, allow_nan=False).map(lambda f: repr(float(f)))
    | st.sampled_from(["true", "null", "'7'", "abc", ".inf", "1e3", "[1]", "{a: 1}"])
)


@settings(max_examples=150, deadline=None)
@given(
    key=condition_keys | st.sampled_from(["agents_below", "queue_count", "Longest_wait_above"]),
    raw=thresholds,
)
def test_the_table_accepts_a_threshold_exactly_when_the_condition_does(key: str, raw: str) -> None:
    errors = errors_of(
        f"routes:\n  a:\n    queue: A\n    overflow:\n      - to: G\n        when: {{{key}: {raw}}}\n"
    )

    document = yaml.compose(f"{{v: {raw}}}", Loader=yaml.SafeLoader)
    assert isinstance(document, yaml.MappingNode)
    node = document.value[0][1]
    plain = isinstance(node, yaml.ScalarNode) and node.style is None
    value = yaml.safe_load(raw) if plain else None
    valid = key in CONDITIONS and CONDITIONS[key].threshold_problem(value) is None
    if valid:
        assert errors == []
        (rule,) = RoutingTable.parse(
            f"routes:\n  a: {{queue: A, overflow: [{{to: G, when: {{{key}: {raw}}}}}]}}\n"
        ).overflow_rules(Queue(name="A"))
        assert value is not None
        assert rule.condition == Condition(key, value)
    else:
        assert len(errors) == 1, errors
        assert re.match(r"routes\.yaml:6: routes\.a\.overflow\.0\.when", errors[0]), errors


# ------------------------------------------------------------------------- hops (Hypothesis)

#: A table of queues Q0 … Qn where each queue may overflow to some others, in order.
graphs = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.lists(
        st.lists(st.integers(min_value=0, max_value=n - 1), max_size=3, unique=True), min_size=n, max_size=n
    )
)


def table_text(graph: list[list[int]]) -> str:
    lines = ["routes:"]
    for n, targets in enumerate(graph):
        if targets:
            rules = ", ".join(f"{{to: Q{t}, when: {{queue_count_above: {t}}}}}" for t in targets)
            lines.append(f"  r{n}: {{queue: Q{n}, overflow: [{rules}]}}")
        else:
            lines.append(f"  r{n}: Q{n}")
    return "\n".join(lines) + "\n"


def longest_path(graph: list[list[int]], start: int, seen: tuple[int, ...] = ()) -> float:
    """Moves on the longest chain from ``start``; infinite when a cycle is reachable."""
    if start in seen:
        return float("inf")
    return max((1 + longest_path(graph, t, (*seen, start)) for t in graph[start]), default=0)


@settings(max_examples=200, deadline=None)
@given(graph=graphs)
def test_a_table_loads_exactly_when_it_has_no_cycle_and_no_chain_over_three_moves(graph) -> None:
    errors = errors_of(table_text(graph))

    worst = max(longest_path(graph, start) for start in range(len(graph)))
    if worst <= MAX_HOPS:
        assert errors == []
    else:
        assert errors, graph
        assert all(
            re.match(r"routes\.yaml:\d+: routes\.r\d+\.overflow\.\d+\.to: overflow (cycle|chain)", e)
            for e in errors
        )


@settings(max_examples=200, deadline=None)
@given(
    graph=graphs.filter(lambda g: max(longest_path(g, s) for s in range(len(g))) <= MAX_HOPS),
    counts_by_queue=st.lists(counts | st.none(), min_size=6, max_size=6),
    start=st.integers(min_value=0, max_value=5),
)
def test_the_decision_takes_the_first_rule_that_holds_at_each_queue(graph, counts_by_queue, start) -> None:
    start %= len(graph)
    table = RoutingTable.parse(table_text(graph))
    states = {1000 + n: State(queue_count=counts_by_queue[n]) for n in range(len(graph))}

    decision = decide(
        f"Q{start}",
        1000 + start,
        table.overflow_rules(Queue(name=f"Q{start}")),
        states.get,
        lambda rule: 1000 + int(rule.label[1:]),
    )

    # Walk it by hand: at each queue, the first target whose threshold (its number) the queue's
    # count is above; none (or an unknown count) and the contact stays.
    expected: list[int] = []
    here = start
    while len(expected) < MAX_HOPS:
        count = counts_by_queue[here]
        nxt = next((t for t in graph[here] if count is not None and count > t), None)
        if nxt is None:
            break
        expected.append(nxt)
        here = nxt
    assert [int(hop.rule.label[1:]) for hop in decision.hops] == expected
    assert len(decision.hops) <= MAX_HOPS
    assert all(hop.value is not None for hop in decision.hops)


# ------------------------------------------------------------------------- the decision


RULES = RoutingTable.parse(ISSUE_EXAMPLE).overflow_rules(Queue(name="Billing"))
SKILLS = {"Billing": 1, "General Inquiry": 2, "Billing Callback": 3}


def decide_billing(state: State | None, skill_of=lambda rule: SKILLS[rule.label]) -> OverflowDecision:
    """The issue's Billing rules decided on with Billing in ``state``."""
    return decide("Billing", 1, RULES, {1: state}.get, skill_of)


def test_no_agent_available_moves_the_contact_and_says_why() -> None:
    decision = decide_billing(State(agents_available=0, queue_count=30, longest_wait_seconds=400))

    assert decision.to_public() == {
        "from": "Billing",
        "to": "General Inquiry",
        "rule": "agents_available_below 1",
        "agentsAvailable": 0,
    }
    assert decision.hops[0].skill_id == 2


def test_the_first_rule_that_holds_wins() -> None:
    assert decide_billing(
        State(agents_available=2, queue_count=26, longest_wait_seconds=400)
    ).to_public() == {
        "from": "Billing",
        "to": "Billing Callback",
        "rule": "queue_count_above 25",
        "queueCount": 26,
    }
    assert decide_billing(
        State(agents_available=2, queue_count=25, longest_wait_seconds=301)
    ).to_public() == {
        "from": "Billing",
        "to": "General Inquiry",
        "rule": "longest_wait_above 300",
        "longestWaitSeconds": 301,
    }


def test_a_queue_that_can_take_the_contact_keeps_it() -> None:
    decision = decide_billing(State(agents_available=1, queue_count=25, longest_wait_seconds=300))

    assert not decision.moved and decision.to_public() is None


def test_unknown_values_never_move_a_contact_and_are_noted() -> None:
    decision = decide_billing(State(agents_available=None, queue_count=None, longest_wait_seconds=None))

    assert not decision.moved
    assert [(u.queue, u.quantity) for u in decision.unknown] == [
        ("Billing", "agents_available"),
        ("Billing", "queue_count"),
        ("Billing", "longest_wait_seconds"),
    ]
    # A skill CXone listed no activity for: every value is unknown.
    assert not decide_billing(None).moved


def test_an_unknown_value_skips_only_its_rule() -> None:
    decision = decide_billing(State(agents_available=None, queue_count=40))

    assert decision.hops[-1].rule.label == "Billing Callback"
    assert [u.quantity for u in decision.unknown] == ["agents_available"]


def test_an_alternative_that_cannot_be_used_is_skipped() -> None:
    decision = decide_billing(
        State(agents_available=0, queue_count=40),
        skill_of=lambda rule: None if rule.label == "General Inquiry" else SKILLS[rule.label],
    )

    assert decision.hops[-1].rule.label == "Billing Callback"


def test_several_hops_show_each_move_and_stop_at_three() -> None:
    deep = RoutingTable.parse(
        "routes:\n"
        "  a: {queue: A, overflow: [{to: B, when: {agents_available_below: 1}}]}\n"
        "  b: {queue: B, overflow: [{to: C, when: {queue_count_above: 5}}]}\n"
        "  c: {queue: C, overflow: [{to: D, when: {longest_wait_above: 60}}]}\n"
    ).overflow_rules(Queue(name="A"))
    states = {
        1: State(agents_available=0),
        2: State(queue_count=9),
        3: State(longest_wait_seconds=61.5),
        4: State(agents_available=0, queue_count=99, longest_wait_seconds=999),
    }

    decision = decide("A", 1, deep, states.get, lambda rule: {"B": 2, "C": 3, "D": 4}[rule.label])

    assert decision.to_public() == {
        "from": "A",
        "to": "D",
        "rule": "agents_available_below 1",
        "agentsAvailable": 0,
        "hops": [
            {"from": "A", "to": "B", "rule": "agents_available_below 1", "agentsAvailable": 0},
            {"from": "B", "to": "C", "rule": "queue_count_above 5", "queueCount": 9},
            {"from": "C", "to": "D", "rule": "longest_wait_above 60", "longestWaitSeconds": 61.5},
        ],
    }
    assert deep[0].then[0].then[0].then == ()  # D has no rules of its own: the chain ends there
