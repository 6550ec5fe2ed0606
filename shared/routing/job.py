"""The task message: one routing decided by the ingress and carried out by a worker.

It holds only ids, names and the decision, never credentials or the customer's words, because Celery
Flower shows task arguments to every operator. It travels as a plain JSON dict (``to_message``) so
the message format is explicit and both sides validate it with the same schema.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from marshmallow import Schema, ValidationError, fields, post_load, validate

from shared.routing.overflow import OverflowRule, message_problems, rules_from_message, rules_to_message
from shared.routing.signal_template import template_problems

MODES = ("digital", "voice")


@dataclass(frozen=True)
class RoutingJob:
    """Move CXone contact ``contact_id`` to ``queue_name`` (or straight to ``skill_id``)."""

    routing_id: str
    contact_id: str
    intent: str
    mode: str  # "digital": DFO routing-queue PUT; "voice": Signal API
    queue_name: str | None = None
    skill_id: int | None = None
    score: float | None = None
    channel: str | None = None
    input_id: str | None = None
    received_at: float = 0.0
    #: The routing's place among the contact's routings (assigned by the publisher; higher is
    #: newer). None only in messages published before it existed: those yield to any routing of
    #: the contact that has one (see ``shared/routing/latest.py``).
    contact_seq: int | None = None
    #: The webhook field the contact id came from (``data.spawnedContactId``…); None in messages
    #: published before it existed.
    contact_source: str | None = None
    #: Voice only: the route's signal parameter template (``["{skill_id}", …]``), rendered by the
    #: worker. None for digital routings and in messages from before templates (the default is used).
    signal_params: tuple[str, ...] | None = None
    #: The queue's overflow rules (see :mod:`shared.routing.overflow`), decided on by the worker
    #: just before the call. None: the queue has none (and in messages from before overflow).
    overflow: tuple[OverflowRule, ...] | None = None

    @property
    def queue_label(self) -> str:
        """The queue as people know it."""
        return self.queue_name if self.queue_name is not None else f"skill {self.skill_id}"

    def to_message(self) -> dict:
        """The JSON-safe dict that is sent as the task's only argument."""
        message = asdict(self)
        if self.signal_params is not None:
            message["signal_params"] = list(self.signal_params)  # what it reads back as from JSON
        if self.overflow is not None:
            message["overflow"] = rules_to_message(self.overflow)
        return message

    @classmethod
    def from_message(cls, message: dict) -> RoutingJob:
        """Validate and load a task argument; raises ``marshmallow.ValidationError`` when malformed."""
        return _SCHEMA.load(message)


def new_routing_id() -> str:
    """A routing id: random, URL-safe, and unique enough to key Redis records."""
    return uuid.uuid4().hex


def _valid_template(template: list[str]) -> None:
    """The same check as the routing table's, so a worker never renders a template it cannot."""
    problems = template_problems(template)
    if problems:
        raise ValidationError(problems)


def _valid_overflow(rules: list) -> None:
    """The same checks as the routing table's, so a worker never follows a rule the table refuses."""
    problems = message_problems(rules)
    if problems:
        raise ValidationError(problems)


class RoutingJobSchema(Schema):
    """Schema of the task message (the worker refuses anything else)."""

    routing_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    contact_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    intent = fields.String(required=True, validate=validate.Length(max=256))
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    queue_name = fields.String(load_default=None, allow_none=True)
    skill_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    score = fields.Float(load_default=None, allow_none=True)
    channel = fields.String(load_default=None, allow_none=True)
    input_id = fields.String(load_default=None, allow_none=True)
    received_at = fields.Float(load_default=0.0)
    contact_seq = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    contact_source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    signal_params = fields.List(fields.String(), load_default=None, allow_none=True, validate=_valid_template)
    overflow = fields.List(fields.Raw(), load_default=None, allow_none=True, validate=_valid_overflow)

    @post_load
    def make_job(self, data: dict, **_: object) -> RoutingJob:
        """The loaded message as a :class:`RoutingJob`."""
        if data["signal_params"] is not None:
            data["signal_params"] = tuple(data["signal_params"])
        if data["overflow"] is not None:
            data["overflow"] = rules_from_message(data["overflow"])
        return RoutingJob(**data)


#: Shared by every load: building a schema deep-copies its fields (5 % of a worker's CPU when done
#: per task), and ``load`` keeps no state on the instance.
_SCHEMA = RoutingJobSchema()
