"""How CXone writes times."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_timestamp(epoch_seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and a Z, as CXone writes times."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
