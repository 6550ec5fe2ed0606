"""Bounds on the decoded webhook body, checked before marshmallow sees it.

The body size is capped already (``WEBHOOK_MAX_BODY_BYTES``), but 64 KiB of JSON can still be a
thousand levels of nesting or one 60,000-character string in a field nobody reads. Cognigy bodies
are a few levels deep with short values, so anything beyond these bounds is refused with a 400
that names where it happened, instead of being walked by the schema (or logged, or stored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Containers (objects/arrays) inside one another; a Cognigy body uses about four.
MAX_JSON_DEPTH = 32
#: Longest string value or object key, in characters (the schema's longest field, ``text``).
MAX_STRING_LENGTH = 8000
#: How much of a key is shown in a field path.
_KEY_SHOWN = 64

_Path = tuple["_Path", str] | None
#: JSON may escape half of a UTF-16 pair ("\ud800"); Python then holds a string that cannot be
#: encoded as UTF-8 (for a Redis key, a log line, the task message). RFC 7493 (I-JSON) forbids it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class BoundsProblem:
    """Where the body breaks a bound: ``reason`` is ``json_too_deep``, ``string_too_long`` or
    ``malformed_json`` (a string holding an unpaired surrogate)."""

    reason: str
    message: str
    field: str
    limit: int | None = None

    def details(self) -> dict[str, object]:
        """The extra fields of the 400 body."""
        if self.reason == "json_too_deep":
            return {"field": self.field, "maxDepth": self.limit}
        if self.reason == "string_too_long":
            return {"field": self.field, "maxLength": self.limit}
        return {"field": self.field, "detail": "unpaired UTF-16 surrogate escape (\\ud800-\\udfff)"}


def check_bounds(
    body: object, *, max_depth: int = MAX_JSON_DEPTH, max_string: int = MAX_STRING_LENGTH
) -> BoundsProblem | None:
    """The first place (in document order) where ``body`` is nested too deeply, or a string or key
    is too long or holds an unpaired surrogate.

    Walks with an explicit stack, so no input can exhaust the interpreter's recursion limit.
    """
    # (value, its path as a (parent path, key) chain, its depth, whether its key needs checking);
    # the chain shares parents, so a wide body does not copy a path per value.
    stack: list[tuple[object, _Path, int, bool]] = [(body, None, 0, False)]
    while stack:
        value, path, depth, keyed = stack.pop()
        if keyed and path is not None:
            if len(path[1]) > max_string:
                return BoundsProblem(
                    "string_too_long", f"key longer than {max_string} characters", _path(path), max_string
                )
            if _LONE_SURROGATE.search(path[1]):
                return BoundsProblem("malformed_json", "malformed JSON", _path(path))
        if isinstance(value, str):
            if len(value) > max_string:
                return BoundsProblem(
                    "string_too_long", f"string longer than {max_string} characters", _path(path), max_string
                )
            if _LONE_SURROGATE.search(value):
                return BoundsProblem("malformed_json", "malformed JSON", _path(path))
            continue
        if not isinstance(value, dict | list):
            continue
        if depth + 1 > max_depth:
            return BoundsProblem("json_too_deep", "JSON nested too deeply", _path(path), max_depth)
        if isinstance(value, dict):
            children = [(child, (path, key), depth + 1, True) for key, child in value.items()]
        else:
            children = [(child, (path, str(i)), depth + 1, False) for i, child in enumerate(value)]
        stack.extend(reversed(children))
    return None


def _path(path: _Path) -> str:
    """``intents.0.name`` (as the schema's 400s name fields); long keys are cut short."""
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "…")
    return ".".join(reversed(parts)) or "(body)"
