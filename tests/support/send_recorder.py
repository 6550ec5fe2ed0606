"""A stand-in for Celery's ``send_task`` for tests of the ingress without a broker."""

from __future__ import annotations

import json


class SendRecorder:
    """Keeps every task message it is given, or raises ``fail_with`` (a broker that is down)."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.fail_with: BaseException | None = None

    def __call__(self, message: dict) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        # Round-trip through JSON as Celery's json serializer would: the message must survive it.
        self.messages.append(json.loads(json.dumps(message, allow_nan=False)))
