"""Overflow rules: where a contact goes instead when its queue cannot take it.

A queue in the routing table may list alternatives, checked in order; the first whose condition
holds on the queue's live state wins (CXone's skill activity, see :mod:`shared.cxone.skill_activity`)::

    billing_dispute:
      queue: Billing
      overflow:
        - to: General Inquiry
          when: {agents_available_below: 1}    # no agent of Billing available
        - to: Billing Callback
          when: {queue_count_above: 25}        # more than 25 contacts already waiting

A condition is about the queue the contact is leaving (Billing above), never about the alternative.
Rules belong to a queue: once the contact is moved to General Inquiry, General Inquiry's own rules
apply in turn, up to :data:`MAX_HOPS` moves. The routing table checks this when it is loaded (no
cycles, no chain longer than that; :mod:`shared.routing.table`), the ingress puts the queue's rules,
expanded into a tree, in the task message, and the worker decides just before the routing call
(:func:`decide`), so the state is as fresh as it can be.

A value CXone did not give is *unknown*, and an unknown value never moves a contact: the rule is
skipped (counted and logged by the worker), and the next one is checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

#: At most this many moves from the queue the route asked for (Billing → General → Callback → …).
MAX_HOPS = 3


@dataclass(frozen=True)
class ConditionKind:
    """One kind of ``when:`` condition: which live value it reads, and how it compares."""

    key: str  # as written in the table: agents_available_below
    quantity: str  # the live value (a SkillActivity attribute): agents_available
    public_name: str  # how GET /routings/<id> shows the value: agentsAvailable
    above: bool  # True: holds when value > threshold; False: when value < threshold
    integer: bool  # the threshold is a whole number (counts), else a number of seconds
    minimum: float  # the smallest threshold that can ever hold

    def threshold_problem(self, value: Any) -> str | None:
        """Why ``value`` is no threshold for this condition (``must be …``), or None."""
        whole = isinstance(value, int) and not isinstance(value, bool)
        number = whole or (isinstance(value, float) and math.isfinite(value))
        if self.integer and not whole:
            return f"must be a whole number, at least {self.minimum:g}"
        if not number:
            return f"must be a number of seconds, at least {self.minimum:g}"
        if value < self.minimum:
            if self.above:
                return f"must be at least {self.minimum:g}"
            return f"must be at least {self.minimum:g} (a count is never below {value:g})"
        return None


#: Every condition the routing table accepts, by its key.
CONDITIONS: dict[str, ConditionKind] = {
    kind.key: kind
    for kind in (
        ConditionKind("agents_available_below", "agents_available", "agentsAvailable", False, True, 1),
        ConditionKind("queue_count_above", "queue_count", "queueCount", True, True, 0),
        ConditionKind("longest_wait_above", "longest_wait_seconds", "longestWaitSeconds", True, False, 0),
    )
}


@dataclass(frozen=True)
class Condition:
    """``when: {agents_available_below: 1}``: a kind and its threshold."""

    key: str
    threshold: float

    @property
    def kind(self) -> ConditionKind:
        """What the condition reads and how it compares."""
        return CONDITIONS[self.key]

    @property
    def text(self) -> str:
        """The rule as people read it (and the metric's ``rule`` label): ``agents_available_below 1``."""
        return f"{self.key} {self.threshold:g}"

    def holds(self, value: float | None) -> bool:
        """Whether a live ``value`` meets the condition; an unknown value (None) never does."""
        if value is None:
            return False
        return value > self.threshold if self.kind.above else value < self.threshold


@dataclass(frozen=True)
class OverflowRule:
    """One alternative: go to this queue (a name, or a skill id) when ``condition`` holds on the
    queue the contact is leaving; then the alternative's own rules (``then``) apply in turn."""

    condition: Condition
    queue_name: str | None = None
    skill_id: int | None = None
    then: tuple[OverflowRule, ...] = ()

    @property
    def label(self) -> str:
        """The alternative queue as people know it: its name, or ``skill <id>``."""
        return self.queue_name if self.queue_name is not None else f"skill {self.skill_id}"

    def to_message(self) -> dict:
        """The JSON-safe form carried in the task message (see :func:`rules_from_message`)."""
        return {
            "queue_name": self.queue_name,
            "skill_id": self.skill_id,
            "condition": self.condition.key,
            "threshold": self.condition.threshold,
            "overflow": [rule.to_message() for rule in self.then],
        }


def rules_to_message(rules: tuple[OverflowRule, ...]) -> list[dict]:
    """A queue's rules as the task message carries them."""
    return [rule.to_message() for rule in rules]


def message_problems(rules: Any, depth: int = 1) -> list[str]:
    """What is wrong with rules read from a task message (each problem with its path), or ``[]``.

    Checked as strictly as the routing table checks them, so a worker never acts on a rule the
    table would have refused.
    """
    if not isinstance(rules, list):
        return ["must be a list"]
    if depth > MAX_HOPS and rules:
        return [f"more than {MAX_HOPS} hops"]
    problems: list[str] = []
    for n, rule in enumerate(rules):
        where = f"{n}"
        if not isinstance(rule, Mapping):
            problems.append(f"{where}: must be an object")
            continue
        unknown = set(rule) - {"queue_name", "skill_id", "condition", "threshold", "overflow"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        name, skill_id = rule.get("queue_name"), rule.get("skill_id")
        valid_name = isinstance(name, str) and bool(name.strip())
        valid_skill = isinstance(skill_id, int) and not isinstance(skill_id, bool) and skill_id > 0
        if (name is None) == (skill_id is None) or not (valid_name or valid_skill):
            problems.append(
                f"{where}: give exactly one of queue_name (text) or skill_id (a positive integer)"
            )
        kind = CONDITIONS.get(rule.get("condition"))  # type: ignore[arg-type]
        if kind is None:
            problems.append(f"{where}.condition: must be one of {', '.join(CONDITIONS)}")
        elif (problem := kind.threshold_problem(rule.get("threshold"))) is not None:
            problems.append(f"{where}.threshold: {problem}")
        problems += [f"{where}.overflow.{p}" for p in message_problems(rule.get("overflow", []), depth + 1)]
    return problems


def rules_from_message(rules: list[dict]) -> tuple[OverflowRule, ...]:
    """Rules from a task message already checked by :func:`message_problems`."""
    return tuple(
        OverflowRule(
            condition=Condition(rule["condition"], rule["threshold"]),
            queue_name=rule.get("queue_name"),
            skill_id=rule.get("skill_id"),
            then=rules_from_message(rule.get("overflow") or []),
        )
        for rule in rules
    )


# ---------------------------------------------------------------------------------- deciding


class QueueState(Protocol):
    """The live state of one queue: each value by its ``quantity`` name, None when unknown."""

    def value(self, quantity: str) -> float | None:
        """The live value (``agents_available``…), or None when CXone did not give it."""
        ...


@dataclass(frozen=True)
class Hop:
    """One move: from ``from_label`` to ``rule``'s queue (skill ``skill_id``), because its
    condition held with the live ``value``."""

    from_label: str
    rule: OverflowRule
    skill_id: int
    value: float

    def to_public(self) -> dict:
        """``{"from", "to", "rule", "<value name>"}`` as ``GET /routings/<id>`` shows it."""
        value: float = int(self.value) if float(self.value).is_integer() else self.value
        return {
            "from": self.from_label,
            "to": self.rule.label,
            "rule": self.rule.condition.text,
            self.rule.condition.kind.public_name: value,
        }


@dataclass(frozen=True)
class Unknown:
    """A rule that could not be checked: CXone gave no ``quantity`` for ``queue`` (skill ``skill_id``)."""

    queue: str
    skill_id: int
    quantity: str


@dataclass(frozen=True)
class OverflowDecision:
    """Where the contact goes: ``hops`` (empty: it stays in the queue asked for), and the rules
    skipped on the way because a value was unknown."""

    hops: tuple[Hop, ...] = ()
    unknown: tuple[Unknown, ...] = ()

    @property
    def moved(self) -> bool:
        """True when the contact goes to another queue than the one asked for."""
        return bool(self.hops)

    def to_public(self) -> dict | None:
        """What the routing record shows: the queue asked for (``from``), the queue used (``to``),
        the rule that moved the contact away from the queue asked for and its live value, and every
        hop when there was more than one. None when the contact stays."""
        if not self.hops:
            return None
        public = {**self.hops[0].to_public(), "to": self.hops[-1].rule.label}
        if len(self.hops) > 1:
            public["hops"] = [hop.to_public() for hop in self.hops]
        return public


def decide(
    asked_label: str,
    asked_skill_id: int,
    rules: tuple[OverflowRule, ...],
    state_of: Callable[[int], QueueState | None],
    skill_of: Callable[[OverflowRule], int | None],
) -> OverflowDecision:
    """Follow the rules from the queue asked for, at most :data:`MAX_HOPS` moves.

    ``state_of(skill_id)`` is the live state of a skill (None: CXone listed no activity for it, so
    every value is unknown); ``skill_of(rule)`` is the skill id of a rule's queue, or None when it
    cannot be used (an alternative CXone does not have: that rule is skipped). At each queue the
    rules are checked in order and the first whose condition holds moves the contact; when none
    holds, or a queue has no rules, the contact stays where it is.
    """
    hops: list[Hop] = []
    unknown: list[Unknown] = []
    label, skill_id, current = asked_label, asked_skill_id, rules
    while current and len(hops) < MAX_HOPS:
        state = state_of(skill_id)
        for rule in current:
            quantity = rule.condition.kind.quantity
            value = state.value(quantity) if state is not None else None
            if value is None:
                unknown.append(Unknown(label, skill_id, quantity))
                continue
            if not rule.condition.holds(value):
                continue
            target = skill_of(rule)
            if target is None:
                continue
            hops.append(Hop(label, rule, target, value))
            label, skill_id, current = rule.label, target, rule.then
            break
        else:
            break  # no rule holds here: the contact stays in this queue
    return OverflowDecision(tuple(hops), tuple(unknown))
