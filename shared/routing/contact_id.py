"""What counts as a CXone contact id, for the ingress (which refuses others) and the worker (which
never sends one to CXone).

CXone contact ids, ACD and digital alike, are decimal numbers sent as strings (NICE's Digital
Engagement API, developer.niceincontact.com/API/DigitalEngagementAPI, ``/contacts/{contactNumber}``;
the ACD API's ``contactId``). The id goes into the path of every CXone call the router makes, so an
id such as ``..`` would make the request leave its path (``PUT …/dfo/3.0/routing-queue``) with the
tenant's bearer token. ``CONTACT_ID_PATTERN`` (default: 1 to 20 ASCII digits) closes that: it must
match the whole id, and it is compiled with ``re.ASCII`` because Python's ``\\d`` also matches
digits of other scripts (``"٣"``), which CXone would not know.

Cognigy renders a template whose value is missing as ``"undefined"``, ``"null"`` or ``""``
(github.com/Cognigy/Documentation, CognigyScript): those markers mean *absent*, never an id.
"""

from __future__ import annotations

import re
from functools import lru_cache

DEFAULT_CONTACT_ID_PATTERN = r"^[0-9]{1,20}$"

#: What a Cognigy template renders when the value it names is missing (compared after stripping).
ABSENT_MARKERS = frozenset({"", "null", "undefined"})

#: Ids that must never reach a URL path, whatever pattern an operator configures: each would
#: leave its path segment (dot segments, separators, query, fragment) or name no contact at all.
PATH_ESCAPES = ("", ".", "..", "/", "a/b", "?", "#", "%2e%2e", "1 2", "1\n")


def is_absent(value: str) -> bool:
    """True for Cognigy's renderings of a missing value (``"undefined"``, ``"null"``, ``""``)."""
    return value.strip() in ABSENT_MARKERS


@lru_cache(maxsize=8)
def compile_pattern(text: str) -> re.Pattern[str]:
    """``text`` compiled as a contact id pattern: ASCII classes only (``\\d`` is ``[0-9]``)."""
    return re.compile(text, re.ASCII)


def pattern_problem(text: str) -> str | None:
    """Why ``text`` cannot be ``CONTACT_ID_PATTERN``, or None when it can.

    It must compile, and it must refuse every id of :data:`PATH_ESCAPES`, so that no configured
    pattern lets an id escape the path of a CXone call.
    """
    try:
        pattern = compile_pattern(text)
    except re.error as exc:
        return f"{text!r} is not a regular expression: {exc}"
    escaping = [probe for probe in PATH_ESCAPES if pattern.fullmatch(probe)]
    if escaping:
        return f"{text!r} accepts {escaping[0]!r}, which is no CXone contact id and could escape a URL path"
    return None


def is_contact_id(value: str, pattern: str = DEFAULT_CONTACT_ID_PATTERN) -> bool:
    """True when the whole of ``value`` matches ``pattern`` (a full match, ASCII classes)."""
    return compile_pattern(pattern).fullmatch(value) is not None


def shown(value: str, limit: int = 40) -> str:
    """``value`` quoted and cut for an error message (an id can be anything a sender typed)."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return repr(text)
