"""The voice signal's parameter template: in the routing table, in the task message, rendered."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from shared.routing.job import RoutingJob
from shared.routing.signal_template import (
    DEFAULT_SIGNAL_PARAMS,
    PLACEHOLDERS,
    render,
    signal_values,
    template_problems,
)
from shared.routing.table import Queue, RoutingTable, RoutingTableError

VALUES = signal_values(
    skill_id=1200007, queue="Claims", intent="claims", routing_id="0f" * 16, contact_id="7000001"
)


def table_with(signal_params: object, route: object = "Claims") -> str:
    """A routing table (YAML) with top-level ``signal_params`` and one route ``claims``."""
    document = {"signal_params": signal_params, "routes": {"claims": route}}
    # Flow style, one line each: signal_params is on line 1.
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=1 << 20)


# ---------------------------------------------------------------- in the routing table


def test_the_default_template_is_the_one_the_router_always_sent() -> None:
    table = RoutingTable.parse("routes:\n  claims: Claims\n")

    assert (
        table.signal_params == DEFAULT_SIGNAL_PARAMS == ("{skill_id}", "{intent}", "{routing_id}", "{queue}")
    )
    assert render(table.signal_template(table.routes["claims"]), VALUES) == [
        "1200007",
        "claims",
        "0f" * 16,
        "Claims",
    ]


def test_a_table_template_and_a_route_template_with_literals() -> None:
    table = RoutingTable.parse(
        'signal_params: ["{skill_id}", "skill {queue} for {intent}", "router"]\n'
        "routes:\n"
        "  sales: Sales Support\n"
        '  claims: {queue: Claims, mode: voice, signal_params: ["Escalate", "{skill_id}"]}\n'
    )

    assert table.routes["claims"] == Queue(
        name="Claims", mode="voice", signal_params=("Escalate", "{skill_id}")
    )
    assert render(table.signal_template(table.routes["claims"]), VALUES) == ["Escalate", "1200007"]
    sales = signal_values(
        skill_id=1200001, queue="Sales Support", intent="sales", routing_id="r1", contact_id="7000002"
    )
    assert render(table.signal_template(table.routes["sales"]), sales) == [
        "1200001",
        "skill Sales Support for sales",
        "router",
    ]


def test_nine_parameters_are_the_most_the_signal_api_takes() -> None:
    nine = [f"{{skill_id}}-{n}" for n in range(1, 10)]
    assert len(RoutingTable.parse(table_with(nine)).signal_params) == 9

    with pytest.raises(RoutingTableError, match=r"<routes>:1: signal_params: at most 9 parameters .* got 10"):
        RoutingTable.parse(table_with([*nine, "ten"]))


def test_every_template_problem_is_reported_with_its_line_and_parameter() -> None:
    text = (
        "routes:\n"  # 1
        "  a: A\n"  # 2
        "  b: {queue: B, signal_params: [Escalate, '{skil_id}']}\n"  # 3
        "  c: {queue: C, mode: digital, signal_params: [Escalate]}\n"  # 4
        "  d: {queue: D, signal_params: []}\n"  # 5
        "  e: {queue: E, signal_params: Escalate}\n"  # 6
        "signal_params:\n"  # 7
        "  - '{skill_id}'\n"  # 8
        "  - {intent}\n"  # 9: unquoted, YAML reads a mapping
        "  - '{queue!r}'\n"  # 10
        "  - '{queue'\n"  # 11
        "  - null\n"  # 12
        "  - '{}'\n"  # 13
    )

    with pytest.raises(RoutingTableError) as caught:
        RoutingTable.parse(text, source="routes.yaml")

    message = str(caught.value)
    expected = [
        "routes.yaml:3: routes.b.signal_params.p2: unknown placeholder {skil_id} (allowed: {skill_id}, "
        "{queue}, {intent}, {routing_id}, {contact_id})",
        "routes.yaml:4: routes.c.signal_params: this route is forced digital",
        "routes.yaml:5: routes.d.signal_params: must be a list of 1 to 9 texts",
        "routes.yaml:6: routes.e.signal_params: must be a list of 1 to 9 texts",
        'routes.yaml:9: signal_params.p2: must be text: quote placeholders, e.g. "{skill_id}"',
        "routes.yaml:10: signal_params.p3: placeholder {queue} takes no format or conversion",
        "routes.yaml:11: signal_params.p4: expected '}' before end of string",
        "routes.yaml:12: signal_params.p5: must be text",
        "routes.yaml:13: signal_params.p6: unknown placeholder {}",
    ]
    for line in expected:
        assert line in message, f"missing {line!r} in:\n{message}"


def test_literal_braces_are_written_doubled() -> None:
    table = RoutingTable.parse(table_with(["{{literal}}", "{{{skill_id}}}"]))

    assert render(table.signal_params, VALUES) == ["{literal}", "{1200007}"]
    with pytest.raises(RoutingTableError, match=r"signal_params.p1: Single '}' encountered"):
        RoutingTable.parse(table_with(["oops}"]))


def test_no_placeholder_reaches_into_an_object() -> None:
    # str.format would follow attributes and indexes; a template refuses them as unknown names.
    for entry in ("{skill_id.__class__}", "{intent[0]}", "{queue.upper}"):
        assert template_problems([entry]) == [
            f"p1: unknown placeholder {entry} (allowed: " + _allowed() + ")"
        ]


def _allowed() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


# ---------------------------------------------------------------- properties

_literal = st.text(st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=12)
_entry = st.lists(
    st.one_of(
        _literal.map(lambda text: ("literal", text)),
        st.sampled_from(sorted(PLACEHOLDERS)).map(lambda n: ("name", n)),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.lists(_entry, min_size=1, max_size=9), st.dictionaries(st.sampled_from(sorted(PLACEHOLDERS)), _literal)
)
def test_any_template_of_literals_and_placeholders_loads_and_renders_each_value_once(entries, values) -> None:
    values = {name: values.get(name, f"<{name}>") for name in PLACEHOLDERS}
    template = [
        "".join(text if kind == "literal" else "{" + text + "}" for kind, text in entry) for entry in entries
    ]
    expected = [
        "".join(text if kind == "literal" else values[text] for kind, text in entry) for entry in entries
    ]

    table = RoutingTable.parse(table_with(template))

    assert list(table.signal_params) == template
    assert render(table.signal_params, values) == expected


@given(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
        lambda name: name not in PLACEHOLDERS
    )
)
def test_any_other_placeholder_name_fails_at_load_with_its_name(name) -> None:
    with pytest.raises(RoutingTableError) as caught:
        RoutingTable.parse(table_with(["Escalate", "{" + name + "}"]))

    assert f"<routes>:1: signal_params.p2: unknown placeholder {{{name}}}" in str(caught.value)


@given(st.text(max_size=30))
def test_a_value_that_looks_like_a_placeholder_is_never_expanded_again(queue) -> None:
    # A queue named "{intent}" stays "{intent}": rendering is one pass over the template only.
    values = {**VALUES, "queue": queue}
    assert render(["{queue}", "x{queue}y"], values) == [queue, f"x{queue}y"]


# ---------------------------------------------------------------- in the task message


def test_the_task_message_carries_the_template_and_the_worker_refuses_a_bad_one() -> None:
    job = RoutingJob(
        routing_id="r1",
        contact_id="7000001",
        intent="claims",
        mode="voice",
        signal_params=("Escalate", "{skill_id}"),
    )
    message = job.to_message()

    assert message["signal_params"] == ["Escalate", "{skill_id}"]  # a JSON list, as it comes back
    assert RoutingJob.from_message(message) == job
    old = {k: v for k, v in message.items() if k != "signal_params"}  # a message from before templates
    assert RoutingJob.from_message(old).signal_params is None

    for bad, problem in [
        (["{skil_id}"], "p1: unknown placeholder {skil_id}"),
        ([str(n) for n in range(10)], "must list 1 to 9 parameters"),
        ([], "must list 1 to 9 parameters"),
    ]:
        with pytest.raises(ValidationError) as caught:
            RoutingJob.from_message({**message, "signal_params": bad})
        assert problem in str(caught.value.normalized_messages()["signal_params"])
