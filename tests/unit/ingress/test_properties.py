"""Property: whatever JSON-ish body arrives, the ingress never crashes and never half-enqueues."""

from __future__ import annotations

import json

import fakeredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingress import create_app
from shared.routing_job import RoutingJob
from shared.routing_table import RoutingTable
from shared.settings import Settings

from .conftest import API_KEYS, ROUTES_NO_FALLBACK_YAML, ROUTES_YAML, WEBHOOK_URL, SendRecorder

scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=20) | st.sampled_from(["0.9", "0.2", "", "null", "1e999", "nan"]))
#: Any JSON value: what a bot builder's typo or a broken CognigyScript expression can produce.
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

# Plausible values, so that a good share of the bodies get as far as routing (202 or 422).
names = st.sampled_from(["sales_inquiry", "claims", "vip_callback", "lost_luggage", ""]) | st.text(
    max_size=10)
scores = st.none() | st.floats(min_value=0, max_value=1) | st.floats(0, 1).map(str)
ids = st.sampled_from(["4815162342", "728471935"]) | st.integers(0, 10**12) | st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20)
channels = st.none() | st.sampled_from(["webchat3", "voiceGateway2", "rest", "voice"])

valid_body = st.fixed_dictionaries({"sessionId": ids}, optional={
    "inputId": ids,
    "contactId": ids,
    "cxoneContactId": ids,
    "channel": channels,
    "text": st.text(max_size=30),
    "userInput": st.fixed_dictionaries({}, optional={"text": st.text(max_size=30),
                                                     "channel": channels}),
    "intents": st.lists(st.fixed_dictionaries({"name": names}, optional={"confidence": scores}),
                        max_size=3),
    "intentName": names,
    "confidence": scores,
    "intent": names,
    "intentScore": scores,
    "nlu": st.fixed_dictionaries({}, optional={"intentMapperResults": st.fixed_dictionaries(
        {}, optional={"finalIntentName": names, "finalIntentScore": scores,
                      "scores": st.lists(st.fixed_dictionaries(
                          {"name": names}, optional={"score": scores}), max_size=3)})}),
    "data": st.fixed_dictionaries({}, optional={"contactId": ids, "spawnedContactId": ids}),
})
FIELDS = ["sessionId", "inputId", "contactId", "cxoneContactId", "channel", "text", "userInput",
          "intents", "intentName", "confidence", "intent", "intentScore", "nlu", "data"]
#: A plausible body with one or two fields replaced by (or added as) anything at all.
mutated_body = st.builds(lambda body, changes: {**body, **changes}, valid_body,
                         st.dictionaries(st.sampled_from(FIELDS), junk, min_size=1, max_size=2))
bodies = valid_body | mutated_body | junk


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, with_fallback=st.booleans())
def test_random_bodies_never_5xx_and_never_enqueue_unless_202(body, with_fallback):
    sent = SendRecorder()
    app = create_app(
        Settings(webhook_api_keys=API_KEYS, max_body_bytes=1024 * 1024),
        routing_table=RoutingTable.parse(ROUTES_YAML if with_fallback else ROUTES_NO_FALLBACK_YAML),
        redis_client=fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        send_task=sent,
    )

    response = app.test_client().post(WEBHOOK_URL, data=json.dumps(body),
                                      content_type="application/json",
                                      headers={"X-API-Key": API_KEYS[0]})

    assert response.status_code < 500, response.get_json()
    assert response.is_json
    if response.status_code == 202:
        assert len(sent.messages) == 1
        job = RoutingJob.from_message(sent.messages[0])
        assert job.routing_id == response.get_json()["routingId"]
        assert job.contact_id
    else:
        assert response.status_code in (400, 422), response.get_json()
        assert sent.messages == []
