"""The task message: one routing decided by the ingress and carried out by a worker.

It holds only ids, names and the decision, never credentials or the customer's words, because Celery
Flower shows task arguments to every operator. It travels as a plain JSON dict (``to_message``) so
the message format is explicit and both sides validate it with the same schema.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from marshmallow import Schema, fields, post_load, validate

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

    @property
    def queue_label(self) -> str:
        """The queue as people know it."""
        return self.queue_name if self.queue_name is not None else f"skill {self.skill_id}"

    def to_message(self) -> dict:
        """The JSON-safe dict that is sent as the task's only argument."""
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict) -> RoutingJob:
        """Validate and load a task argument; raises ``marshmallow.ValidationError`` when malformed."""
        return RoutingJobSchema().load(message)


def new_routing_id() -> str:
    """A routing id: random, URL-safe, and unique enough to key Redis records."""
    return uuid.uuid4().hex


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

    @post_load
    def make_job(self, data: dict, **_: object) -> RoutingJob:
        """The loaded message as a :class:`RoutingJob`."""
        return RoutingJob(**data)
