"""The routing table: which CXone queue each Cognigy intent goes to.

It is a YAML file named by ``ROUTES_FILE`` (see ``config/routes.example.yaml``)::

    min_score: 0.5              # intents scored below this use the fallback
    fallback: General Inquiry   # optional; queue for unmapped or low-confidence intents
    voice_channels: [voiceGateway2, voice]   # Cognigy channels whose contacts are voice calls
    routes:
      sales_inquiry: Sales Support           # a CXone queue (skill) name, resolved by the worker
      vip_callback: {skill_id: 1200042}      # or a skill id, no lookup
      claims: {queue: Claims, mode: voice}   # mode forces voice (Signal API) or digital (DFO PUT)
      escalate: {queue: Claims, mode: voice, signal_params: ["Escalate", "{skill_id}"]}
    signal_params: ["{skill_id}", "{intent}", "{routing_id}", "{queue}"]   # p1 … p9 of a voice signal

A queue may list overflow alternatives (:mod:`shared.routing.overflow`)::

      billing_dispute:
        queue: Billing
        overflow:
          - to: General Inquiry                  # a queue as anywhere else: a name or {skill_id: N}
            when: {agents_available_below: 1}   # or queue_count_above: N, longest_wait_above: SECONDS

Overflow rules belong to the queue, not to the route: written once, on any entry that names the
queue (a route, the fallback, or an alternative's ``to: {queue: …, overflow: […]}``), they apply to
every contact sent there, by a route or by another queue's overflow. So a contact moved from Billing
to General Inquiry then meets General Inquiry's own rules, up to three moves; a cycle, a longer
chain, or a queue given rules twice is a start-up error with its line.

The file is validated when it is loaded, and every problem is reported with its line number so an
operator can fix them all in one go. The ingress decides the route (it must answer 422 when there is
none) and puts the route's signal parameter template in the task message; the worker only resolves
the queue name to a skill id and renders the template (it never reads this file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shared.routing.overflow import CONDITIONS, MAX_HOPS, Condition, OverflowRule
from shared.routing.signal_template import DEFAULT_SIGNAL_PARAMS, MAX_SIGNAL_PARAMS, entry_problem

DEFAULT_MIN_SCORE = 0.5
DEFAULT_VOICE_CHANNELS = ("voiceGateway2", "voiceGateway", "voice", "phone")
MODES = ("digital", "voice")


class RoutingTableError(ValueError):
    """The routing table file is missing or invalid; the message lists every problem with its line."""


@dataclass(frozen=True)
class Queue:
    """A CXone queue: by name (looked up in the skills list) or by skill id (no lookup)."""

    name: str | None = None
    skill_id: int | None = None
    mode: str | None = None  # None: decided by the contact's channel
    #: This route's own voice signal parameters; None: the table's ``signal_params``.
    signal_params: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        """How the queue is shown to people: its name, or ``skill <id>``."""
        return self.name if self.name is not None else f"skill {self.skill_id}"

    @property
    def key(self) -> QueueKey:
        """What identifies the queue in the table (its overflow rules are looked up by it)."""
        return queue_key(self.name, self.skill_id)


#: ``("name", "Billing")`` or ``("skill", 1200042)``: a name and a skill id are different queues
#: to the table, even when CXone's skill of that name has that id.
QueueKey = tuple[str, "str | int"]


def queue_key(name: str | None, skill_id: int | None) -> QueueKey:
    """The key of the queue with this name or (when given) skill id."""
    return ("skill", skill_id) if skill_id is not None else ("name", name or "")


@dataclass(frozen=True)
class Candidate:
    """One intent the bot recognised, with its score (None when the sender gave none)."""

    name: str
    score: float | None


@dataclass(frozen=True)
class Decision:
    """Where a webhook's contact goes, and why."""

    intent: str
    score: float | None
    queue: Queue
    reason: str  # "matched", "fallback: unmapped intent …", "fallback: score …"


class Unroutable(Exception):
    """The webhook is well-formed but no queue applies; ``reason`` says why (answered 422)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RoutingTable:
    """Intent → queue mapping with a confidence threshold and an optional fallback."""

    routes: dict[str, Queue]
    min_score: float = DEFAULT_MIN_SCORE
    fallback: Queue | None = None
    voice_channels: tuple[str, ...] = DEFAULT_VOICE_CHANNELS
    #: The voice signal's parameters p1 … (see :mod:`shared.routing.signal_template`).
    signal_params: tuple[str, ...] = DEFAULT_SIGNAL_PARAMS
    #: Each queue's overflow rules, each alternative's own rules expanded under it.
    overflow: Mapping[QueueKey, tuple[OverflowRule, ...]] = field(default_factory=dict)

    def decide(self, candidates: list[Candidate]) -> Decision:
        """Pick the highest-scoring intent and its queue, or the fallback; raise :class:`Unroutable`.

        A candidate without a score counts as certain: the bot builder chose to send that intent.
        """
        if not candidates:
            return self._fallback_or_raise("", None, "no intent in the request")
        best = max(candidates, key=lambda c: 1.0 if c.score is None else c.score)
        if best.score is not None and best.score < self.min_score:
            return self._fallback_or_raise(
                best.name,
                best.score,
                f"intent '{best.name}' scored {best.score:g}, below min_score {self.min_score:g}",
            )
        queue = self.routes.get(best.name)
        if queue is None:
            return self._fallback_or_raise(best.name, best.score, f"intent '{best.name}' has no route")
        return Decision(best.name, best.score, queue, "matched")

    def _fallback_or_raise(self, intent: str, score: float | None, why: str) -> Decision:
        if self.fallback is None:
            raise Unroutable(why + " and no fallback queue is configured")
        return Decision(intent, score, self.fallback, "fallback: " + why)

    def mode_for(self, queue: Queue, channel: str | None) -> str:
        """``voice`` (Signal API) or ``digital`` (DFO routing-queue PUT) for a contact on ``channel``."""
        if queue.mode:
            return queue.mode
        return "voice" if channel in self.voice_channels else "digital"

    def signal_template(self, queue: Queue) -> tuple[str, ...]:
        """The signal parameters of a voice contact routed to ``queue``: the route's own, else the table's."""
        return queue.signal_params if queue.signal_params is not None else self.signal_params

    def overflow_rules(self, queue: Queue) -> tuple[OverflowRule, ...]:
        """The overflow rules of ``queue`` (empty when it has none), alternatives' rules included."""
        return self.overflow.get(queue.key, ())

    def alternatives(self) -> dict[str, OverflowRule]:
        """Every queue an overflow rule can send a contact to, by its label (each once)."""
        found: dict[str, OverflowRule] = {}
        pending = [rule for rules in self.overflow.values() for rule in rules]
        while pending:
            rule = pending.pop(0)
            found.setdefault(rule.label, rule)
            pending += rule.then
        return found

    def queues(self) -> dict[str, Queue]:
        """Every queue the table can send to, keyed by the intent (``<fallback>`` for the fallback)."""
        named = dict(self.routes)
        if self.fallback is not None:
            named["<fallback>"] = self.fallback
        return named

    @classmethod
    def load(cls, path: str | Path) -> RoutingTable:
        """Read and validate the YAML file at ``path``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RoutingTableError(f"ROUTES_FILE {path}: cannot read it ({exc.strerror})") from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<routes>") -> RoutingTable:
        """Validate YAML text; every problem is reported as ``source:line: key: message``."""
        return _TableParser(source).parse(text)


class _TableParser:
    """Walks the YAML node tree (not plain dicts) so each error can carry its line number."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []
        #: Overflow rules as written, by the queue they belong to (checked and expanded at the end).
        self.written: dict[QueueKey, _WrittenRules] = {}

    def error(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.errors.append(f"{self.source}{line}: {key}: {message}")

    def parse(self, text: str) -> RoutingTable:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise RoutingTableError(f"{self.source}: not valid YAML: {exc}") from exc
        if not isinstance(root, yaml.MappingNode):
            raise RoutingTableError(f"{self.source}: must be a mapping with a 'routes:' key")

        top = self.mapping(root)
        for unknown in set(top) - set(_TOP_LEVEL_KEYS):
            self.error(top[unknown][0], unknown, f"unknown key (expected {', '.join(_TOP_LEVEL_KEYS)})")

        routes: dict[str, Queue] = {}
        if "routes" not in top:
            self.error(root, "routes", "missing: map each intent name to a queue")
        else:
            key_node, value = top["routes"]
            if not isinstance(value, yaml.MappingNode) or not value.value:
                self.error(value, "routes", "must map at least one intent name to a queue")
            else:
                for intent, (_key_node, queue_node) in self.mapping(value).items():
                    queue = self.queue(queue_node, f"routes.{intent}")
                    if queue is not None:
                        routes[intent] = queue

        fallback = None
        if "fallback" in top and not _is_null(top["fallback"][1]):
            fallback = self.queue(top["fallback"][1], "fallback")

        min_score = DEFAULT_MIN_SCORE
        if "min_score" in top:
            node = top["min_score"][1]
            try:
                min_score = float(node.value)
                if not 0.0 <= min_score <= 1.0:
                    raise ValueError
            except (TypeError, ValueError):
                self.error(node, "min_score", f"must be a number from 0 to 1, got {node.value!r}")

        voice_channels = DEFAULT_VOICE_CHANNELS
        if "voice_channels" in top:
            node = top["voice_channels"][1]
            if isinstance(node, yaml.SequenceNode) and all(
                isinstance(item, yaml.ScalarNode) and item.value for item in node.value
            ):
                voice_channels = tuple(item.value for item in node.value)
            else:
                self.error(node, "voice_channels", "must be a list of Cognigy channel names")

        signal_params = DEFAULT_SIGNAL_PARAMS
        if "signal_params" in top:
            signal_params = self.signal_params(top["signal_params"][1], "signal_params") or signal_params

        overflow = self.overflow_tree()

        if self.errors:
            raise RoutingTableError("invalid routing table:\n  " + "\n  ".join(self.errors))
        return RoutingTable(
            routes,
            min_score=min_score,
            fallback=fallback,
            voice_channels=voice_channels,
            signal_params=signal_params,
            overflow=overflow,
        )

    def mapping(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                self.error(key_node, key, "appears twice")
            result[key] = (key_node, value_node)
        return result

    def queue(self, node: yaml.Node, key: str, alternative: bool = False) -> Queue | None:
        """A queue (a name, or a mapping); ``alternative``: the ``to`` of an overflow rule, which
        is moved the way its route moves contacts (no mode or signal parameters of its own)."""
        if isinstance(node, yaml.ScalarNode):
            scalar = str(node.value).strip()
            if not scalar or _is_null(node):
                self.error(node, key, "queue name is empty")
                return None
            if node.tag.endswith((":int", ":float")) and node.style is None:
                # A bare number is more likely a skill id than a queue name: make it explicit.
                self.error(
                    node,
                    key,
                    f"bare number {scalar}: write {{skill_id: {scalar}}} for a skill "
                    f'id, or quote it for a queue named "{scalar}"',
                )
                return None
            return Queue(name=scalar)
        if not isinstance(node, yaml.MappingNode):
            self.error(node, key, "must be a queue name or {queue: NAME} or {skill_id: N}")
            return None
        fields = self.mapping(node)
        allowed = _ALTERNATIVE_KEYS if alternative else _QUEUE_KEYS
        for unknown in set(fields) - set(allowed):
            why = f"unknown key (expected {', '.join(allowed)})"
            if alternative and unknown in _QUEUE_KEYS:
                why = (
                    f"an overflow alternative is moved the way its route moves contacts: "
                    f"{unknown} belongs on the route (expected {', '.join(allowed)})"
                )
            self.error(fields[unknown][0], f"{key}.{unknown}", why)
        name: str | None = None
        skill_id: int | None = None
        mode: str | None = None
        if "queue" in fields:
            raw = fields["queue"][1]
            if not isinstance(raw, yaml.ScalarNode):
                # str() of a list or mapping node would pass as a (nonsense) queue name.
                self.error(raw, f"{key}.queue", "must be a queue name")
                return None
            name = str(raw.value).strip() or None
        if "skill_id" in fields:
            raw = fields["skill_id"][1]
            try:
                skill_id = int(str(raw.value), 10)
                if skill_id <= 0:
                    raise ValueError
            except ValueError:
                self.error(raw, f"{key}.skill_id", f"must be a positive integer, got {raw.value!r}")
                return None
        if "mode" in fields:
            raw = fields["mode"][1]
            mode = str(raw.value)
            if mode not in MODES:
                self.error(raw, f"{key}.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
                return None
        signal_params: tuple[str, ...] | None = None
        if "signal_params" in fields:
            raw = fields["signal_params"][1]
            if mode == "digital":
                self.error(
                    raw,
                    f"{key}.signal_params",
                    "this route is forced digital (mode: digital): signal parameters only apply to voice",
                )
                return None
            signal_params = self.signal_params(raw, f"{key}.signal_params")
            if signal_params is None:
                return None
        if (name is None) == (skill_id is None):
            self.error(node, key, "give exactly one of queue or skill_id")
            return None
        queue = Queue(name=name, skill_id=skill_id, mode=mode, signal_params=signal_params)
        if "overflow" in fields and not _is_null(fields["overflow"][1]):
            self.overflow(fields["overflow"][1], f"{key}.overflow", queue)
        return queue

    # ------------------------------------------------------------------------------ overflow

    def overflow(self, node: yaml.Node, key: str, owner: Queue) -> None:
        """Note ``owner``'s overflow rules (a list of ``{to, when}``), once per queue."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(
                node,
                key,
                "must be a list of alternatives, each {to: QUEUE, when: {CONDITION: N}}",
            )
            return
        alternatives = [self.alternative(item, f"{key}.{n}") for n, item in enumerate(node.value)]
        valid = [alternative for alternative in alternatives if alternative is not None]
        if len(valid) != len(alternatives):
            return
        first = self.written.get(owner.key)
        if first is not None:
            self.error(
                node,
                key,
                f"queue '{owner.label}' already has overflow rules ({first.key}, line {first.line}): "
                "a queue's rules are written once and apply wherever the queue is used",
            )
            return
        self.written[owner.key] = _WrittenRules(owner.label, key, node.start_mark.line + 1, tuple(valid))

    def alternative(self, node: yaml.Node, key: str) -> _Alternative | None:
        """One ``{to: QUEUE, when: {CONDITION: N}}``; None, with the errors noted, when invalid."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, key, "must be {to: QUEUE, when: {CONDITION: N}}")
            return None
        fields = self.mapping(node)
        for unknown in set(fields) - {"to", "when"}:
            self.error(fields[unknown][0], f"{key}.{unknown}", "unknown key (expected to, when)")
        if "to" not in fields:
            self.error(node, f"{key}.to", "missing: the queue to send the contact to instead")
        if "when" not in fields:
            self.error(
                node,
                f"{key}.when",
                f"missing: the condition, one of {_CONDITION_FORMS} (without one the alternative "
                "would always win)",
            )
        to_node = fields["to"][1] if "to" in fields else None
        target = self.queue(to_node, f"{key}.to", alternative=True) if to_node is not None else None
        condition = self.condition(fields["when"][1], f"{key}.when") if "when" in fields else None
        if to_node is None or target is None or condition is None or set(fields) - {"to", "when"}:
            return None
        return _Alternative(target, condition, f"{key}.to", to_node.start_mark.line + 1)

    def condition(self, node: yaml.Node, key: str) -> Condition | None:
        """``{agents_available_below: N}`` and the like: exactly one known condition and its threshold."""
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            self.error(node, key, f"must be exactly one condition: {_CONDITION_FORMS}")
            return None
        ((name_node, value_node),) = node.value
        name = str(name_node.value)
        kind = CONDITIONS.get(name)
        if kind is None:
            self.error(name_node, f"{key}.{name}", f"unknown condition (expected {', '.join(CONDITIONS)})")
            return None
        threshold = _yaml_number(value_node)
        problem = kind.threshold_problem(threshold)
        if problem is not None:
            shown = value_node.value if isinstance(value_node, yaml.ScalarNode) else "a list or mapping"
            self.error(value_node, f"{key}.{name}", f"{problem}, got {shown!r}")
            return None
        assert threshold is not None  # threshold_problem refuses None
        return Condition(name, threshold)

    def overflow_tree(self) -> dict[QueueKey, tuple[OverflowRule, ...]]:
        """Check the rules written as a whole (no cycle, no chain over MAX_HOPS moves) and expand
        each queue's rules with its alternatives' own rules under them."""
        depth: dict[QueueKey, int] = {}
        reported: set[frozenset[QueueKey]] = set()

        def walk(key: QueueKey, path: list[QueueKey]) -> int:
            """Moves on the longest chain from ``key`` (a cycle counts as none: it is reported)."""
            if key in depth:
                return depth[key]
            written = self.written.get(key)
            if written is None:
                return 0
            longest = 0
            for alternative in written.alternatives:
                target = alternative.queue.key
                if target in path or target == key:
                    cycle = path[path.index(target) :] if target in path else []
                    if frozenset(cycle + [key]) not in reported:
                        reported.add(frozenset(cycle + [key]))
                        labels = [self.written[k].label for k in cycle + [key]] + [alternative.queue.label]
                        self.errors.append(
                            f"{self.source}:{alternative.line}: {alternative.where}: overflow cycle "
                            f"{' → '.join(labels)}: a contact could be moved round it for ever"
                        )
                    continue
                longest = max(longest, 1 + walk(target, path + [key]))
            depth[key] = longest
            return longest

        for key, written in self.written.items():
            if walk(key, []) > MAX_HOPS:
                chain = self.longest_chain(key, depth)
                first = next(a for a in written.alternatives if a.queue.key == chain[1])
                labels = " → ".join(self.label_of(k) for k in chain)
                self.errors.append(
                    f"{self.source}:{first.line}: {first.where}: overflow chain {labels} makes "
                    f"{len(chain) - 1} moves; at most {MAX_HOPS} (each queue's own rules count)"
                )
        if self.errors:
            return {}
        expanded: dict[QueueKey, tuple[OverflowRule, ...]] = {}

        def expand(key: QueueKey) -> tuple[OverflowRule, ...]:
            if key not in expanded:
                written = self.written.get(key)
                expanded[key] = tuple(
                    OverflowRule(
                        condition=alternative.condition,
                        queue_name=alternative.queue.name,
                        skill_id=alternative.queue.skill_id,
                        then=expand(alternative.queue.key),
                    )
                    for alternative in (written.alternatives if written else ())
                )
            return expanded[key]

        return {key: expand(key) for key in self.written}

    def longest_chain(self, key: QueueKey, depth: dict[QueueKey, int]) -> list[QueueKey]:
        """The queues on the longest overflow chain from ``key`` (``key`` first)."""
        chain = [key]
        while (written := self.written.get(chain[-1])) is not None:
            targets = [a.queue.key for a in written.alternatives if a.queue.key not in chain]
            if not targets:
                break
            chain.append(max(targets, key=lambda k: depth.get(k, 0)))
        return chain

    def label_of(self, key: QueueKey) -> str:
        """How people know the queue with ``key``."""
        kind, value = key
        return str(value) if kind == "name" else f"skill {value}"

    def signal_params(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        """A signal parameter template (a list of 1 to 9 texts); None, with the errors noted, when invalid."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(
                node,
                key,
                f'must be a list of 1 to {MAX_SIGNAL_PARAMS} texts, e.g. ["Escalate", "{{skill_id}}"]',
            )
            return None
        if len(node.value) > MAX_SIGNAL_PARAMS:
            self.error(
                node,
                key,
                f"at most {MAX_SIGNAL_PARAMS} parameters (the Signal API takes p1 … p9), "
                f"got {len(node.value)}",
            )
            return None
        entries: list[str] = []
        valid = True
        for number, item in enumerate(node.value, start=1):
            where = f"{key}.p{number}"
            if isinstance(item, yaml.MappingNode):
                # [{skill_id}] unquoted is YAML for a list holding the mapping {skill_id: null}.
                self.error(item, where, 'must be text: quote placeholders, e.g. "{skill_id}"')
                valid = False
                continue
            if not isinstance(item, yaml.ScalarNode) or _is_null(item):
                self.error(item, where, 'must be text (a literal or a placeholder such as "{skill_id}")')
                valid = False
                continue
            problem = entry_problem(str(item.value))
            if problem is not None:
                self.error(item, where, problem)
                valid = False
                continue
            entries.append(str(item.value))
        return tuple(entries) if valid else None


_TOP_LEVEL_KEYS = ("routes", "fallback", "min_score", "voice_channels", "signal_params")
_QUEUE_KEYS = ("queue", "skill_id", "mode", "signal_params", "overflow")
#: What an overflow alternative's ``to`` may say: the queue, and the queue's own rules.
_ALTERNATIVE_KEYS = ("queue", "skill_id", "overflow")
_CONDITION_FORMS = "{agents_available_below: N}, {queue_count_above: N} or {longest_wait_above: SECONDS}"


@dataclass(frozen=True)
class _Alternative:
    """One overflow alternative as written: its queue, its condition, and where its ``to`` is."""

    queue: Queue
    condition: Condition
    where: str  # routes.billing.overflow.0.to
    line: int


@dataclass(frozen=True)
class _WrittenRules:
    """A queue's overflow rules as written, and where (for the errors that name them)."""

    label: str
    key: str  # routes.billing.overflow
    line: int
    alternatives: tuple[_Alternative, ...]


def _yaml_number(node: yaml.Node) -> int | float | None:
    """A plain YAML integer or float scalar as a number; None for anything else (text, true, …)."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None:
        return None  # quoted "5" is text
    text = str(node.value).replace("_", "")
    try:
        if node.tag.endswith(":int"):
            return int(text, 10)
        if node.tag.endswith(":float"):
            return float(text)
    except ValueError:
        return None
    return None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
