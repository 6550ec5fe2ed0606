"""What Cognigy sends, validated with marshmallow and reduced to one shape.

A Cognigy HTTP Request node sends whatever JSON the bot builder wrote, so three shapes are accepted
(examples in ``tests/payloads``; the node and Cognigy's ``input`` object are described in Cognigy's
documentation, github.com/Cognigy/Documentation ``docs/ai/build/node-reference/service/http-request.md``
and ``docs/ai/build/ai-agent-memory/input.md``):

1. the seed tutorial's ``intents: [{name, confidence}]`` list (highest confidence wins);
2. the seed's flat ``intentName`` (+ optional ``confidence``);
3. a Cognigy input-object body: ``intent``/``intentScore`` or ``nlu.intentMapperResults``.

Liberal in what we accept: scores may be numeric strings ("0.87"), unknown fields are ignored, ids
may be numbers, and Cognigy's renderings of a missing value (``"undefined"``, ``"null"``, ``""``)
count as absent in every id field. Strict in what we act on: a score that is not a number from 0 to
1, a contact id that is not a CXone contact id (``CONTACT_ID_PATTERN``), or a body with no contact
is a 400 naming the field.

Which contact is moved: ``cxoneContactId``, else ``contactId``, else ``data.contactId`` (for voice,
``data.spawnedContactId`` first: the contact Cognigy's CXone extension signals), else
``data.spawnedContactId``, else ``sessionId``. Every contact field that is present must hold a
CXone contact id; ``sessionId`` is a Cognigy session id in most bots, so it is checked only when
it is the one naming the contact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from shared.routing.contact_id import ABSENT_MARKERS, DEFAULT_CONTACT_ID_PATTERN, is_contact_id, shown
from shared.routing.table import Candidate

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 256
MAX_TEXT_LENGTH = 8000


#: The fields that name a CXone contact, by path, and the one that may when none of them does.
CXONE_CONTACT_ID, CONTACT_ID = "cxoneContactId", "contactId"
DATA_CONTACT_ID, SPAWNED_CONTACT_ID = "data.contactId", "data.spawnedContactId"
SESSION_ID = "sessionId"
#: Which field names the contact, first present wins.
DIGITAL_ORDER = (CXONE_CONTACT_ID, CONTACT_ID, DATA_CONTACT_ID, SPAWNED_CONTACT_ID, SESSION_ID)
VOICE_ORDER = (CXONE_CONTACT_ID, CONTACT_ID, SPAWNED_CONTACT_ID, DATA_CONTACT_ID, SESSION_ID)
_WHERE_CONTACTS_GO = "cxoneContactId, contactId, data.contactId or data.spawnedContactId"


class Identifier(fields.Field):
    """An id that Cognigy may send as a string or a number; loaded as a non-empty string, or as
    None when absent: JSON null, or a template's rendering of a missing value ("undefined", "null",
    "" and blanks)."""

    default_error_messages = {
        "invalid": "Not a valid id: give a string or an integer.",
        "too_long": f"Longer than {MAX_ID_LENGTH} characters.",
    }

    def _deserialize(self, value, attr, data, **kwargs) -> str | None:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            value = int(value)  # JSON does not tell 42.0 from 42 (nor does the OpenAPI document)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid")
        if isinstance(value, int) and not 0 <= value < 2**63:
            raise self.make_error("invalid")  # CXone ids are non-negative 64-bit numbers
        text = str(value).strip()
        if text in ABSENT_MARKERS:
            return None  # "{{input.data.spawnedContactId}}" with nothing to render
        if len(text) > MAX_ID_LENGTH:
            raise self.make_error("too_long")
        if any(ord(ch) < 32 for ch in text):
            raise self.make_error("invalid")
        return text


class Score(fields.Field):
    """A score from 0 to 1, given as a number or a numeric string (CognigyScript "{{…}}" output)."""

    default_error_messages = {
        "invalid": "Not a valid number.",
        "range": "Must be between 0 and 1.",
    }

    def _deserialize(self, value, attr, data, **kwargs) -> float | None:
        if isinstance(value, str) and value.strip() in ("", "null", "undefined"):
            return None  # an empty CognigyScript expression: no score given
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        try:
            number = float(value)
        except OverflowError as exc:  # an integer too large for a float: certainly not 0..1
            raise self.make_error("range") from exc
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        if math.isnan(number) or not 0.0 <= number <= 1.0:
            raise self.make_error("range")
        return number


def _name(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=MAX_NAME_LENGTH), **kwargs)


class _Lenient(Schema):
    """Unknown fields are dropped: bot builders add their own, and we act only on the ones we know."""

    class Meta:
        unknown = EXCLUDE


class IntentSchema(_Lenient):
    """One entry of the seed tutorial's ``intents`` list."""

    name = _name(required=True)
    confidence = Score(load_default=None, allow_none=True)


class UserInputSchema(_Lenient):
    """The seed tutorial's ``userInput``: what the customer said, and on which channel."""

    text = fields.String(validate=validate.Length(max=MAX_TEXT_LENGTH), allow_none=True)
    channel = _name(allow_none=True)


class ScoreEntrySchema(_Lenient):
    """One of Cognigy's ``nlu.intentMapperResults.scores`` (Cognigy says *score*, not *confidence*)."""

    name = _name(required=True)
    score = Score(load_default=None, allow_none=True)


class IntentMapperResultsSchema(_Lenient):
    """Cognigy's ``nlu.intentMapperResults``: the final intent, or every scored one."""

    finalIntentName = _name(allow_none=True)
    finalIntentScore = Score(allow_none=True)
    scores = fields.List(fields.Nested(ScoreEntrySchema), validate=validate.Length(max=500))


class NluSchema(_Lenient):
    """Cognigy's ``nlu`` object; only the intent mapper's results matter here."""

    intentMapperResults = fields.Nested(IntentMapperResultsSchema, allow_none=True)


class DataSchema(_Lenient):
    """Cognigy's ``data``: when CXone fronts the bot it carries the CXone contact ids."""

    contactId = Identifier(allow_none=True)
    spawnedContactId = Identifier(allow_none=True)


class WebhookSchema(_Lenient):
    """All three accepted shapes in one schema; unknown fields are dropped."""

    sessionId = Identifier(allow_none=True)
    inputId = Identifier(allow_none=True)
    userId = Identifier(allow_none=True)
    cxoneContactId = Identifier(allow_none=True)
    contactId = Identifier(allow_none=True)
    channel = _name(allow_none=True)
    text = fields.String(validate=validate.Length(max=MAX_TEXT_LENGTH), allow_none=True)
    userInput = fields.Nested(UserInputSchema, allow_none=True)
    intents = fields.List(fields.Nested(IntentSchema), validate=validate.Length(max=500))
    intentName = _name(allow_none=True)
    confidence = Score(allow_none=True)
    intent = _name(allow_none=True)
    intentScore = Score(allow_none=True)
    nlu = fields.Nested(NluSchema, allow_none=True)
    data = fields.Nested(DataSchema, allow_none=True)

    def __init__(self, *, contact_id_pattern: str = DEFAULT_CONTACT_ID_PATTERN, **kwargs):
        super().__init__(**kwargs)
        self.contact_id_pattern = contact_id_pattern

    # Skipped when a field is already wrong (marshmallow's default): a contact field that failed
    # to load would otherwise also be reported as missing.
    @validates_schema
    def require_a_cxone_contact(self, body: dict, **_: object) -> None:
        """Refuse a body that names no CXone contact, or names one with an id CXone cannot have."""
        ids = contact_ids(body)
        if not ids:
            raise ValidationError(
                f"Missing data for required field: give the CXone contact id in {_WHERE_CONTACTS_GO} "
                '(or a numeric sessionId); "undefined", "null" and "" count as missing.',
                field_name=SESSION_ID,
            )
        wrong = {
            path: value for path, value in ids.items() if not is_contact_id(value, self.contact_id_pattern)
        }
        if SESSION_ID in wrong:  # only checked when no contact field is present
            raise ValidationError(
                f"Not a CXone contact id: {shown(wrong[SESSION_ID])}. sessionId names the contact only "
                f"when no other field does, and Cognigy's session ids are not CXone contact ids: send "
                f"the contact id in {_WHERE_CONTACTS_GO} (for voice, the spawned contact id).",
                field_name=SESSION_ID,
            )
        if wrong:
            raise ValidationError(
                _nested({path: [_not_a_contact(v, self.contact_id_pattern)] for path, v in wrong.items()})
            )


def contact_ids(body: dict) -> dict[str, str]:
    """Every contact field present in a loaded body, by path; ``sessionId`` only when none is."""
    data = body.get("data") or {}
    present = {
        CXONE_CONTACT_ID: body.get(CXONE_CONTACT_ID),
        CONTACT_ID: body.get(CONTACT_ID),
        DATA_CONTACT_ID: data.get("contactId"),
        SPAWNED_CONTACT_ID: data.get("spawnedContactId"),
    }
    ids = {path: value for path, value in present.items() if value is not None}
    if not ids and body.get(SESSION_ID) is not None:
        ids[SESSION_ID] = body[SESSION_ID]
    return ids


def _not_a_contact(value: str, pattern: str) -> str:
    return f"Not a CXone contact id: {shown(value)} (CXone contact ids match {pattern})."


def _nested(flat: dict[str, list[str]]) -> dict:
    """``{"data.contactId": […]}`` → ``{"data": {"contactId": […]}}``, as marshmallow nests errors."""
    nested: dict = {}
    for path, messages in flat.items():
        *parents, name = path.split(".")
        level = nested
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = messages
    return nested


@dataclass(frozen=True)
class ContactChoice:
    """The CXone contact a routing moves, and the webhook field it came from."""

    contact_id: str
    source: str  # a field path: "data.spawnedContactId", "sessionId", …


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook reduced to what routing needs."""

    candidates: list[Candidate]
    channel: str | None
    input_id: str | None
    #: The ids naming the contact, by field path (absent fields left out), each a CXone contact id.
    contact_ids: dict[str, str]

    def contact(self, voice: bool) -> ContactChoice:
        """The CXone contact to move; for voice, the spawned contact, as Cognigy's CXone extension
        signals it (github.com/Cognigy/Extensions ``extensions/cxone``, node "Send Signal"; NICE help
        "Signal and TMS API", help.nice-incontact.com)."""
        for source in VOICE_ORDER if voice else DIGITAL_ORDER:
            if source in self.contact_ids:
                return ContactChoice(self.contact_ids[source], source)
        raise AssertionError("parse_webhook only returns webhooks that name a contact")


def parse_webhook(body: object, contact_id_pattern: str = DEFAULT_CONTACT_ID_PATTERN) -> WebhookRequest:
    """Validate a decoded JSON body; raise ``ValidationError`` whose messages name each bad field.

    ``contact_id_pattern`` is ``CONTACT_ID_PATTERN``: every contact id the body gives must match it.
    """
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    loaded = _schema(contact_id_pattern).load(body)
    user_input = loaded.get("userInput") or {}
    return WebhookRequest(
        candidates=_candidates(loaded),
        channel=loaded.get("channel") or user_input.get("channel"),
        input_id=loaded.get("inputId"),
        contact_ids=contact_ids(loaded),
    )


@functools.lru_cache(maxsize=8)
def _schema(contact_id_pattern: str) -> WebhookSchema:
    """One schema per pattern, shared by every request: building it deep-copies every declared
    field (a tenth of the ingress's CPU per webhook when done per request), and ``load`` keeps no
    state on the instance, so threads can share it."""
    return WebhookSchema(contact_id_pattern=contact_id_pattern)


def _candidates(body: dict) -> list[Candidate]:
    """The intents the bot recognised, from whichever shape the body uses (first one present)."""
    if body.get("intents"):
        return [Candidate(i["name"], i.get("confidence")) for i in body["intents"] if i["name"]]
    if body.get("intentName"):
        return [Candidate(body["intentName"], body.get("confidence"))]
    if body.get("intent"):
        return [Candidate(body["intent"], body.get("intentScore"))]
    results = (body.get("nlu") or {}).get("intentMapperResults") or {}
    if results.get("finalIntentName"):
        return [Candidate(results["finalIntentName"], results.get("finalIntentScore"))]
    return [Candidate(s["name"], s.get("score")) for s in results.get("scores") or [] if s["name"]]


def flatten_errors(messages: dict | list, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"intents.0.confidence": ["Not a valid number."]}``."""
    if isinstance(messages, list):
        return {prefix or "_schema": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict | list) and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            flat.update(flatten_errors(value, name))
        else:
            flat[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return flat
