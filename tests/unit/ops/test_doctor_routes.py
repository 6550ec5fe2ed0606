"""The doctor's route lines: each skill's media type next to the route's mode, and the signal an
example voice routing would send (ops/doctor.py, with a fake skills list)."""

from __future__ import annotations

from typing import Any, cast

import fakeredis
import pytest

from ops.doctor import OK, WARN, Report, _check_routes, media_label, render
from shared.routing.table import RoutingTable

PHONE, CHAT, EMAIL = (4, "Phone Call"), (3, "Chat"), (1, "Email")


class FakeSkills:
    """The part of the CXone client the doctor's lookups use: a skills list with media types."""

    timeout = (0.5, 0.5)

    def __init__(self, skills: dict[str, tuple[int, tuple[int | None, str | None]]]):
        self.skills = skills
        self.redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())

    def api_base(self) -> str:
        return "https://api-test.example.invalid"

    def search_skills(self, search: str, skip: int = 0, top: int = 100) -> dict:
        matches: list[dict[str, Any]] = []
        for name, (skill_id, (media_id, media_name)) in self.skills.items():
            if search in name:
                skill: dict[str, Any] = {"skillId": skill_id, "skillName": name, "isActive": True}
                if media_id is not None:
                    skill["mediaTypeId"] = media_id
                if media_name is not None:
                    skill["mediaTypeName"] = media_name
                matches.append(skill)
        return {"skills": matches[skip : skip + top], "totalRecords": len(matches)}


SKILLS = FakeSkills(
    {
        "Claims Voice": (1200007, PHONE),
        "Sales Chat": (1200001, CHAT),
        "Billing Mail": (1200006, EMAIL),
        "Unknown Kind": (1200099, (None, None)),
        "Named Only": (1200098, (None, "Phone Call")),
    }
)


def routes_of(yaml_text: str, skills: FakeSkills = SKILLS) -> dict:
    report = Report()
    _check_routes(report, RoutingTable.parse(yaml_text), cast(Any, skills), "unused")
    return {r.intent: r for r in report.routes}


def test_each_route_shows_its_skill_media_type() -> None:
    routes = routes_of(
        "voice_channels: []\n"
        "routes:\n"
        "  sales: Sales Chat\n"
        "  billing: Billing Mail\n"
        "  vip: {skill_id: 1200042}\n"
        "  odd: Unknown Kind\n"
    )

    assert (routes["sales"].media_type_id, routes["sales"].media_type_name) == (3, "Chat")
    assert routes["sales"].media_type == "Chat (3)"
    assert routes["billing"].media_type == "Email (1)"
    assert routes["vip"].media_type == "-"  # a pinned skill id is not looked up
    assert routes["odd"].media_type == "-"
    assert {r.status for r in routes.values()} == {OK}  # no voice channel: every contact is digital


@pytest.mark.parametrize(
    ("route", "voice_channels", "warning"),
    [
        (
            "{queue: Sales Chat, mode: voice}",
            "[voiceGateway2]",
            "voice route to skill 1200001, media type Chat (3)",
        ),
        (
            "{queue: Claims Voice, mode: digital}",
            "[]",
            "digital route to skill 1200007, media type Phone Call (4)",
        ),
        (
            "Sales Chat",
            "[voiceGateway2]",
            "a voice contact here would be signalled to reskill to skill 1200001",
        ),
        ("Claims Voice", "[voiceGateway2]", "a digital contact here would be put into skill 1200007"),
        ("Claims Voice", "[]", "a digital contact here would be put into skill 1200007"),
        ("{queue: Named Only, mode: digital}", "[]", "digital route to skill 1200098, media type Phone Call"),
    ],
)
def test_a_skill_whose_media_type_does_not_fit_the_mode_is_a_warning(route, voice_channels, warning) -> None:
    (check,) = routes_of(f"voice_channels: {voice_channels}\nroutes:\n  r: {route}\n").values()

    assert check.status == WARN
    assert check.lookup == "found" and check.skill_id is not None
    assert warning in check.detail


@pytest.mark.parametrize(
    ("route", "voice_channels"),
    [
        ("{queue: Claims Voice, mode: voice}", "[voiceGateway2]"),
        ("{queue: Sales Chat, mode: digital}", "[voiceGateway2]"),
        ("Sales Chat", "[]"),  # decided by channel, but no channel is voice
        ("Unknown Kind", "[voiceGateway2]"),  # the skills list did not say: nothing to compare
    ],
)
def test_a_fitting_or_unknown_media_type_is_no_warning(route, voice_channels) -> None:
    (check,) = routes_of(f"voice_channels: {voice_channels}\nroutes:\n  r: {route}\n").values()

    assert check.status == OK, check.detail


def test_every_route_that_can_be_voice_shows_an_example_signal() -> None:
    routes = routes_of(
        'signal_params: ["{skill_id}", "{intent}", "{routing_id}", "{queue}", "{contact_id}"]\n'
        "voice_channels: [voiceGateway2]\n"
        "fallback: Sales Chat\n"
        "routes:\n"
        '  claims: {queue: Claims Voice, mode: voice, signal_params: ["Escalate", "{skill_id}"]}\n'
        "  vip: {skill_id: 1200042}\n"
        "  billing: {queue: Billing Mail, mode: digital}\n"
    )

    assert routes["claims"].signal_params == ["Escalate", "1200007"]
    assert routes["vip"].signal_params == ["1200042", "vip", "<routing id>", "skill 1200042", "<contact id>"]
    assert routes["<fallback>"].signal_params == [
        "1200001",
        "<intent>",
        "<routing id>",
        "Sales Chat",
        "<contact id>",
    ]
    assert routes["billing"].signal_params is None  # forced digital: never signalled


def test_the_text_report_shows_media_type_warning_and_signal_under_the_route() -> None:
    report = Report()
    table = RoutingTable.parse(
        "voice_channels: [voiceGateway2]\nroutes:\n  sales: {queue: Sales Chat, mode: voice}\n"
    )
    _check_routes(report, table, cast(Any, SKILLS), "unused")

    lines = render(report).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("INTENT"))
    assert "MEDIA TYPE" in lines[header]
    assert lines[header + 1].split()[:6] == ["sales", "Sales", "Chat", "1200001", "Chat", "(3)"]
    assert lines[header + 2].startswith("    -> voice route to skill 1200001")
    assert lines[header + 3] == "    signal: p1=1200001, p2=sales, p3=<routing id>, p4=Sales Chat"
    assert "ready for traffic: 0 problem(s), 1 warning(s)" in lines[-1]


def test_media_label() -> None:
    assert media_label(4, "Phone Call") == "Phone Call (4)"
    assert media_label(None, "Chat") == "Chat"
    assert media_label(7, None) == "(7)"
    assert media_label(None, None) == "-"
