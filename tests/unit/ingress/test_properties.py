"""Property: whatever JSON-ish body arrives, the ingress never crashes and never half-enqueues."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.routing.contact_id import is_contact_id
from shared.routing.job import RoutingJob
from tests.support.ingress import (
    API_KEYS,
    ROUTES_NO_FALLBACK_YAML,
    ROUTES_YAML,
    WEBHOOK_URL,
    ingress_on_fakes,
    ingress_settings,
)
from tests.support.webhook_bodies import junk, mutated_body, plausible_body

bodies = plausible_body | mutated_body(max_changes=2) | junk


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, with_fallback=st.booleans())
def test_random_bodies_never_5xx_and_never_enqueue_unless_202(body, with_fallback):
    ingress = ingress_on_fakes(
        ingress_settings(max_body_bytes=1024 * 1024),
        ROUTES_YAML if with_fallback else ROUTES_NO_FALLBACK_YAML,
    )
    sent = ingress.sent

    response = ingress.client.post(
        WEBHOOK_URL,
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-API-Key": API_KEYS[0]},
    )

    assert response.status_code < 500, response.get_json()
    assert response.is_json
    if response.status_code == 202:
        assert len(sent.messages) == 1
        job = RoutingJob.from_message(sent.messages[0])
        assert job.routing_id == response.get_json()["routingId"]
        assert is_contact_id(job.contact_id)  # nothing else ever reaches a CXone URL
    else:
        assert response.status_code in (400, 422), response.get_json()
        assert sent.messages == []
