"""Hypothesis strategies for what a Cognigy HTTP Request node can send, shared by the property tests
(tests/unit/ingress) and the fuzz run (tests/fuzz)."""

from __future__ import annotations

from hypothesis import strategies as st

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["0.9", "0.2", "", "null", "undefined", "1e999", "nan", "-0"])
)
#: Any JSON value: what a bot builder's typo or a broken CognigyScript expression can produce.
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)

# Plausible values, so that a good share of the bodies get as far as routing (202 or 422).
names = st.sampled_from(["sales_inquiry", "claims", "vip_callback", "lost_luggage", ""]) | st.text(
    max_size=12
)
scores = st.none() | st.floats(0, 1) | st.floats(0, 1).map(str) | st.sampled_from(["0.95", " 1 "])
ids = (
    st.sampled_from(["4815162342", "728471935", "vg-1c2d3e4f", "undefined", "null", "", "..", "٣"])
    | st.integers(0, 10**12)
    | st.text(min_size=1, max_size=24)
)
channels = st.none() | st.sampled_from(["webchat3", "voiceGateway2", "rest", "voice", "phone"])

#: A body in one of the three accepted shapes (or a mix of them), with plausible values.
plausible_body = st.fixed_dictionaries(
    {"sessionId": ids},
    optional={
        "inputId": ids,
        "contactId": ids,
        "cxoneContactId": ids,
        "channel": channels,
        "text": st.text(max_size=40),
        "userInput": st.fixed_dictionaries({}, optional={"text": st.text(max_size=20), "channel": channels}),
        "intents": st.lists(
            st.fixed_dictionaries({"name": names}, optional={"confidence": scores}), max_size=3
        ),
        "intentName": names,
        "confidence": scores,
        "intent": names,
        "intentScore": scores,
        "nlu": st.fixed_dictionaries(
            {},
            optional={
                "intentMapperResults": st.fixed_dictionaries(
                    {},
                    optional={
                        "finalIntentName": names,
                        "finalIntentScore": scores,
                        "scores": st.lists(
                            st.fixed_dictionaries({"name": names}, optional={"score": scores}), max_size=3
                        ),
                    },
                )
            },
        ),
        "data": st.fixed_dictionaries({}, optional={"contactId": ids, "spawnedContactId": ids}),
    },
)
FIELDS = [
    "sessionId",
    "inputId",
    "contactId",
    "cxoneContactId",
    "channel",
    "text",
    "userInput",
    "intents",
    "intentName",
    "confidence",
    "intent",
    "intentScore",
    "nlu",
    "data",
]


def mutated_body(max_changes: int) -> st.SearchStrategy[dict]:
    """A plausible body with 1..``max_changes`` fields replaced by (or added as) anything at all."""
    return st.builds(
        lambda body, changes: {**body, **changes},
        plausible_body,
        st.dictionaries(st.sampled_from(FIELDS), junk, min_size=1, max_size=max_changes),
    )
