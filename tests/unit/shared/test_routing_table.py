"""The routing table: loading and validating YAML, deciding a queue, and the delivery mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.routing.table import (
    DEFAULT_MIN_SCORE,
    DEFAULT_VOICE_CHANNELS,
    Candidate,
    Queue,
    RoutingTable,
    RoutingTableError,
    Unroutable,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "routes.example.yaml"


@pytest.fixture
def table() -> RoutingTable:
    return RoutingTable(
        routes={
            "sales_inquiry": Queue(name="Sales Support"),
            "support_ticket": Queue(name="Technical Support"),
            "vip_callback": Queue(skill_id=1200042),
        },
        min_score=0.5,
        fallback=Queue(name="General Inquiry"),
    )


# ---------------------------------------------------------------- loading


def test_the_repository_example_loads() -> None:
    table = RoutingTable.load(EXAMPLE)

    assert table.min_score == 0.5
    assert table.fallback == Queue(name="General Inquiry")
    assert table.voice_channels == ("voiceGateway2", "voiceGateway", "voice", "phone")
    assert table.routes["sales_inquiry"] == Queue(name="Sales Support")
    assert table.routes["vip_callback"] == Queue(skill_id=1200042)
    assert set(table.routes) == {
        "sales_inquiry",
        "support_ticket",
        "billing_dispute",
        "claims",
        "cancel_subscription",
        "vip_callback",
        "billing_question",
    }
    assert table.queues()["<fallback>"] == Queue(name="General Inquiry")
    assert [rule.condition.text for rule in table.overflow_rules(table.routes["billing_question"])] == [
        "agents_available_below 1",
        "queue_count_above 25",
        "longest_wait_above 300",
    ]


def test_all_queue_forms_parse() -> None:
    table = RoutingTable.parse(
        "routes:\n"
        "  a: Sales Support\n"
        "  b: {skill_id: 1200042}\n"
        "  c: {queue: Claims, mode: voice}\n"
        "  d: {skill_id: 7, mode: digital}\n"
        "  'yes': Literal Yes\n"
    )

    assert table.routes == {
        "a": Queue(name="Sales Support"),
        "b": Queue(skill_id=1200042),
        "c": Queue(name="Claims", mode="voice"),
        "d": Queue(skill_id=7, mode="digital"),
        "yes": Queue(name="Literal Yes"),
    }
    assert table.min_score == DEFAULT_MIN_SCORE
    assert table.fallback is None
    assert table.voice_channels == DEFAULT_VOICE_CHANNELS
    assert table.queues() == table.routes  # no "<fallback>" entry without a fallback


def test_a_null_fallback_means_none() -> None:
    assert RoutingTable.parse("fallback: null\nroutes:\n  a: A\n").fallback is None


def test_a_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RoutingTableError, match="nope.yaml: cannot read it"):
        RoutingTable.load(missing)


def test_load_reports_problems_under_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  a: {skill_id: x}\n", encoding="utf-8")

    with pytest.raises(RoutingTableError, match=f"{path}:2: routes.a.skill_id"):
        RoutingTable.load(path)


def test_every_problem_is_reported_at_once_with_line_and_key() -> None:
    text = (
        "min_score: 2\n"  # 1
        "fallback: {queue: A, skill_id: 5}\n"  # 2
        "colour: blue\n"  # 3
        "routes:\n"  # 4
        "  sales: Sales Support\n"  # 5
        "  sales: Sales Again\n"  # 6
        "  vip: {skill_id: -3}\n"  # 7
        "  claims: {queue: Claims, mood: calm}\n"  # 8
        "  both: {queue: Claims, skill_id: 9}\n"  # 9
        "  neither: {mode: voice}\n"  # 10
        "  ringing: {queue: X, mode: phone}\n"  # 11
        "  blank: ''\n"  # 12
        "  listy: [a, b]\n"  # 13
        "voice_channels: voice\n"  # 14
    )

    with pytest.raises(RoutingTableError) as caught:
        RoutingTable.parse(text, source="routes.yaml")

    message = str(caught.value)
    expected = [
        "routes.yaml:1: min_score: must be a number from 0 to 1, got '2'",
        "routes.yaml:2: fallback: give exactly one of queue or skill_id",
        "routes.yaml:3: colour: unknown key",
        "routes.yaml:6: sales: appears twice",
        "routes.yaml:7: routes.vip.skill_id: must be a positive integer, got '-3'",
        "routes.yaml:8: routes.claims.mood: unknown key",
        "routes.yaml:9: routes.both: give exactly one of queue or skill_id",
        "routes.yaml:10: routes.neither: give exactly one of queue or skill_id",
        "routes.yaml:11: routes.ringing.mode: must be one of digital, voice, got 'phone'",
        "routes.yaml:12: routes.blank: queue name is empty",
        "routes.yaml:13: routes.listy: must be a queue name",
        "routes.yaml:14: voice_channels: must be a list of Cognigy channel names",
    ]
    for line in expected:
        assert line in message, f"missing {line!r} in:\n{message}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("min_score: 0.5\n", "<routes>:1: routes: missing"),
        ("rotues:\n  a: A\n", "<routes>:1: rotues: unknown key"),
        ("routes: {}\n", "<routes>:1: routes: must map at least one intent name"),
        ("routes:\n", "<routes>:1: routes: must map at least one intent name"),
        ("routes:\n  a: A\nmin_score: high\n", "<routes>:3: min_score: must be a number from 0 to 1"),
        ("routes:\n  a: A\nmin_score: -0.1\n", "<routes>:3: min_score: must be a number from 0 to 1"),
        ("routes:\n  a: {skill_id: 12.5}\n", "<routes>:2: routes.a.skill_id: must be a positive"),
        ("routes:\n  a: {skill_id: 0}\n", "<routes>:2: routes.a.skill_id: must be a positive"),
        ("routes:\n  a: {skill_id: abc}\n", "<routes>:2: routes.a.skill_id: must be a positive"),
        ("routes:\n  a: A\nroutes:\n  b: B\n", "<routes>:3: routes: appears twice"),
        ("routes:\n  a: {queue: [A, B]}\n", "<routes>:2: routes.a.queue: must be a queue name"),
        ("routes:\n  a: {queue: {name: A}}\n", "<routes>:2: routes.a.queue: must be a queue name"),
    ],
)
def test_single_problems_name_line_and_key(text: str, problem: str) -> None:
    with pytest.raises(RoutingTableError) as caught:
        RoutingTable.parse(text)
    assert problem in str(caught.value)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "routes: [\n"])
def test_a_file_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(RoutingTableError, match="<routes>"):
        RoutingTable.parse(text)


# ---------------------------------------------------------------- decide


def test_the_highest_score_wins(table: RoutingTable) -> None:
    decision = table.decide(
        [Candidate("support_ticket", 0.6), Candidate("sales_inquiry", 0.9), Candidate("vip_callback", 0.7)]
    )

    assert decision.intent == "sales_inquiry"
    assert decision.score == 0.9
    assert decision.queue == Queue(name="Sales Support")
    assert decision.reason == "matched"


def test_a_score_equal_to_min_score_is_enough(table: RoutingTable) -> None:
    assert table.decide([Candidate("sales_inquiry", 0.5)]).reason == "matched"


def test_a_score_below_min_score_goes_to_the_fallback_with_the_reason(table: RoutingTable) -> None:
    decision = table.decide([Candidate("sales_inquiry", 0.3)])

    assert decision.queue == Queue(name="General Inquiry")
    assert decision.intent == "sales_inquiry"
    assert decision.score == 0.3
    assert decision.reason == "fallback: intent 'sales_inquiry' scored 0.3, below min_score 0.5"


def test_an_unmapped_intent_goes_to_the_fallback(table: RoutingTable) -> None:
    decision = table.decide([Candidate("weather_smalltalk", 0.99), Candidate("sales_inquiry", 0.8)])

    # The best intent decides even though a lower one has a route.
    assert decision.queue == Queue(name="General Inquiry")
    assert decision.reason == "fallback: intent 'weather_smalltalk' has no route"


def test_no_candidates_go_to_the_fallback(table: RoutingTable) -> None:
    decision = table.decide([])
    assert decision.queue == Queue(name="General Inquiry")
    assert decision.reason == "fallback: no intent in the request"


def test_a_missing_score_counts_as_certain(table: RoutingTable) -> None:
    decision = table.decide([Candidate("support_ticket", 0.95), Candidate("sales_inquiry", None)])
    assert decision.intent == "sales_inquiry"
    assert decision.score is None
    assert decision.reason == "matched"

    # Even with a min_score of 1.0 an unscored intent is routed.
    strict = RoutingTable(routes={"a": Queue(name="A")}, min_score=1.0)
    assert strict.decide([Candidate("a", None)]).queue == Queue(name="A")


@pytest.mark.parametrize(
    ("candidates", "reason"),
    [
        ([Candidate("sales_inquiry", 0.2)], "intent 'sales_inquiry' scored 0.2, below min_score 0.5"),
        ([Candidate("unknown", 0.9)], "intent 'unknown' has no route"),
        ([], "no intent in the request"),
    ],
)
def test_without_a_fallback_the_contact_is_unroutable(candidates: list[Candidate], reason: str) -> None:
    table = RoutingTable(routes={"sales_inquiry": Queue(name="Sales Support")}, min_score=0.5)

    with pytest.raises(Unroutable) as caught:
        table.decide(candidates)

    assert caught.value.reason == reason + " and no fallback queue is configured"


# ---------------------------------------------------------------- mode_for


@pytest.mark.parametrize(
    ("channel", "mode"),
    [
        ("voiceGateway2", "voice"),
        ("voice", "voice"),
        ("phone", "voice"),
        ("webchat3", "digital"),
        ("whatsapp", "digital"),
        (None, "digital"),
        ("VOICE", "digital"),  # channel names are exact
    ],
)
def test_mode_follows_the_channel(table: RoutingTable, channel: str | None, mode: str) -> None:
    assert table.mode_for(Queue(name="Sales Support"), channel) == mode


def test_a_forced_mode_beats_the_channel(table: RoutingTable) -> None:
    assert table.mode_for(Queue(name="Claims", mode="voice"), "webchat3") == "voice"
    assert table.mode_for(Queue(name="Claims", mode="digital"), "voiceGateway2") == "digital"


def test_voice_channels_come_from_the_file() -> None:
    table = RoutingTable.parse("voice_channels: [myVoiceBot]\nroutes:\n  a: A\n")

    assert table.mode_for(Queue(name="A"), "myVoiceBot") == "voice"
    assert table.mode_for(Queue(name="A"), "voiceGateway2") == "digital"


def test_queue_label_shows_the_name_or_the_skill_id() -> None:
    assert Queue(name="Claims").label == "Claims"
    assert Queue(skill_id=42).label == "skill 42"
