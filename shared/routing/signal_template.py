"""The voice signal's parameters: a template in the routing table, rendered by the worker.

CXone's Signal API passes up to nine parameters (``p1`` … ``p9``) to the contact's Studio script,
which reads them as ``SP1`` … ``SP9`` in its ONSIGNAL event
(https://help.nicecxone.com/content/studio/actionscx/onsignal/onsignal.htm). What each one means is
the script's business, so the routing table says it with a template: a list of up to nine entries,
each a literal (``"Escalate"``) or text with placeholders in braces (``"{skill_id}"``,
``"skill {skill_id}"``); ``{{`` and ``}}`` are literal braces.

Placeholders are only ids and names the router decided or was configured with, never anything the
customer said or typed: the parameters travel in the task message (shown by Flower) and in a URL.
A template is checked when the table is loaded (unknown placeholders are refused with their line)
and again when a worker loads the task message; the worker renders it just before the signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import Formatter

#: Every placeholder a template may use, and what it becomes.
PLACEHOLDERS: dict[str, str] = {
    "skill_id": "the CXone skill id the contact goes to",
    "queue": "the queue name from the routing table (or 'skill <id>' for a route by skill id)",
    "intent": "the intent that chose the route",
    "routing_id": "the router's routing id (GET /routings/<id>, the logs)",
    "contact_id": "the CXone contact id that is signalled",
}
#: p1 = skill id, p2 = intent, p3 = routing id, p4 = queue: what the router has always sent.
DEFAULT_SIGNAL_PARAMS: tuple[str, ...] = ("{skill_id}", "{intent}", "{routing_id}", "{queue}")
#: The Signal API takes p1 … p9.
MAX_SIGNAL_PARAMS = 9
#: Longest entry accepted; a parameter is a few words at most, and it goes into a URL.
MAX_ENTRY_LENGTH = 200

_ALLOWED = ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def entry_problem(entry: str) -> str | None:
    """What is wrong with one template entry (``"unknown placeholder {skil_id} …"``), or None."""
    if len(entry) > MAX_ENTRY_LENGTH:
        return f"longer than {MAX_ENTRY_LENGTH} characters"
    try:
        pieces = list(Formatter().parse(entry))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        return f"{exc} in {entry!r} (write {{{{ and }}}} for literal braces)"
    for _literal, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}} (allowed: {_ALLOWED})"
        if spec or conversion:
            # str.format would apply them; a template only substitutes, so refuse rather than ignore.
            return f"placeholder {{{name}}} takes no format or conversion"
    return None


def template_problems(template: Sequence[str]) -> list[str]:
    """Every problem of a whole template, each starting with its parameter (``p2: …``)."""
    problems = []
    if not 1 <= len(template) <= MAX_SIGNAL_PARAMS:
        problems.append(f"must list 1 to {MAX_SIGNAL_PARAMS} parameters (p1 … p9), got {len(template)}")
    for number, entry in enumerate(template, start=1):
        problem = entry_problem(entry)
        if problem is not None:
            problems.append(f"p{number}: {problem}")
    return problems


def signal_values(*, skill_id: int | str, queue: str, intent: str, routing_id: str, contact_id: str) -> dict:
    """The value of every placeholder for one routing (all of :data:`PLACEHOLDERS`, as text)."""
    return {
        "skill_id": str(skill_id),
        "queue": queue,
        "intent": intent,
        "routing_id": routing_id,
        "contact_id": contact_id,
    }


def render(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The parameters ``p1`` … for ``values`` (see :func:`signal_values`). The template must be
    valid (:func:`template_problems` empty); each placeholder is replaced by its value, nothing else
    is interpreted."""
    rendered = []
    for entry in template:
        parts = []
        for literal, name, _spec, _conversion in Formatter().parse(entry):
            parts.append(literal)
            if name is not None:
                parts.append(values[name])
        rendered.append("".join(parts))
    return rendered
