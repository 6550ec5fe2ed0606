"""Skill activity: each skill's live state served in CXone's shape, and the controls that set it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cxone_sandbox import SEED_SKILLS, SandboxServer
from cxone_sandbox.control import skill_activity_command

from .cxone_calls import routing_path

ACTIVITY_PATH = "/inContactAPI/services/v30.0/skills/activity"
BILLING = next(s for s in SEED_SKILLS if s.skill_name == "Billing")
GENERAL = next(s for s in SEED_SKILLS if s.skill_name == "General Inquiry")
LEGACY_SALES = next(s for s in SEED_SKILLS if s.skill_name == "Legacy Sales")  # inactive
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def control_path(skill_id: int) -> str:
    return f"/sandbox/skills/{skill_id}/activity"


def entry_of(body: dict, skill_id: int) -> dict:
    (entry,) = [e for e in body["skillActivity"] if e["skillId"] == skill_id]
    return entry


def test_every_skill_is_listed_with_some_agents_available(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get(ACTIVITY_PATH, headers=auth)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"businessUnitId", "lastPollTime", "skillActivity"}
    assert [e["skillId"] for e in body["skillActivity"]] == [s.skill_id for s in SEED_SKILLS]
    billing = entry_of(body, BILLING.skill_id)
    assert (billing["skillName"], billing["mediaTypeId"]) == ("Billing", BILLING.media_type_id)
    assert (billing["agentsLoggedIn"], billing["agentsAvailable"]) == (5, 3)
    assert (billing["queueCount"], billing["longestQueueTimeInSeconds"], billing["earliestQueueTime"]) == (
        0,
        0,
        None,
    )
    assert entry_of(body, LEGACY_SALES.skill_id)["agentsLoggedIn"] == 0  # nobody on a retired skill


def test_one_skills_activity_and_an_unknown_skill(client: FlaskClient, auth: dict[str, str]) -> None:
    one = client.get(f"/inContactAPI/services/v30.0/skills/{BILLING.skill_id}/activity", headers=auth)
    assert [e["skillId"] for e in one.get_json()["skillActivity"]] == [BILLING.skill_id]

    assert client.get("/inContactAPI/services/v30.0/skills/999/activity", headers=auth).status_code == 404


def test_it_needs_a_token_and_is_counted_like_any_api_call(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get(ACTIVITY_PATH).status_code == 401
    client.get(ACTIVITY_PATH, headers=auth)
    client.get(ACTIVITY_PATH, headers=auth)
    client.get(control_path(BILLING.skill_id))  # the controls are not CXone calls

    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["api_calls_by_endpoint"]["skill_activity"] == 3
    assert stats["accepted_api_calls"] == 2 and stats["answered_401"] == 1


def test_the_rate_limit_applies_to_it(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post("/sandbox/faults", json={"rate_limit_per_minute": 1})

    assert client.get(ACTIVITY_PATH, headers=auth).status_code == 200
    assert client.get(ACTIVITY_PATH, headers=auth).status_code == 429


def test_the_controls_change_one_skills_numbers(client: FlaskClient, auth: dict[str, str]) -> None:
    changed = client.post(
        control_path(BILLING.skill_id),
        json={"agentsAvailable": 0, "queueCount": 4, "longestQueueTimeInSeconds": 95},
    )

    assert changed.status_code == 200
    served = entry_of(client.get(ACTIVITY_PATH, headers=auth).get_json(), BILLING.skill_id)
    assert (served["agentsAvailable"], served["queueCount"], served["longestQueueTimeInSeconds"]) == (
        0,
        4,
        95,
    )
    assert served["agentsWorking"] == 5 and served["earliestQueueTime"] is not None
    assert (
        entry_of(client.get(ACTIVITY_PATH, headers=auth).get_json(), GENERAL.skill_id)["agentsAvailable"] == 3
    )
    # More agents available than logged in makes no sense: more are logged in.
    more = client.post(control_path(BILLING.skill_id), json={"agentsAvailable": 9}).get_json()
    assert (more["agentsLoggedIn"], more["agentsAvailable"]) == (9, 9)
    # Nobody waiting: nobody has waited long either.
    emptied = client.post(control_path(BILLING.skill_id), json={"queueCount": 0}).get_json()
    assert (emptied["queueCount"], emptied["longestQueueTimeInSeconds"]) == (0, 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "one or more of"),
        ({"agentsAvailable": -1}, "agentsAvailable must be a whole number from 0"),
        ({"queueCount": 1.5}, "queueCount must be a whole number from 0"),
        ({"queueCount": True}, "queueCount must be a whole number from 0"),
        ({"agents": 1}, "unknown key(s) ['agents']"),
    ],
)
def test_bad_control_bodies_are_refused(client: FlaskClient, body: dict, message: str) -> None:
    response = client.post(control_path(BILLING.skill_id), json=body)

    assert response.status_code == 400
    assert message in response.get_json()["error_description"]


def test_an_unknown_skill_cannot_be_changed(client: FlaskClient) -> None:
    assert client.post(control_path(999), json={"queueCount": 1}).status_code == 404


def test_a_reset_brings_back_the_defaults(client: FlaskClient, auth: dict[str, str]) -> None:
    client.post(control_path(BILLING.skill_id), json={"agentsAvailable": 0})
    client.post("/sandbox/reset")

    assert (
        entry_of(client.get(ACTIVITY_PATH, headers=auth).get_json(), BILLING.skill_id)["agentsAvailable"] == 3
    )


def test_an_activity_outage_refuses_only_the_activity(client: FlaskClient, auth: dict[str, str]) -> None:
    knobs = client.post("/sandbox/faults", json={"skill_activity_outage_seconds": 60}).get_json()
    assert knobs["skill_activity_outage_remaining_seconds"] == pytest.approx(60, abs=1)

    refused = client.get(ACTIVITY_PATH, headers=auth)
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "ServiceUnavailable"
    moved = client.put(routing_path("7000001"), json={"skillId": BILLING.skill_id}, headers=auth)
    assert moved.status_code == 200

    client.post("/sandbox/faults", json={"skill_activity_outage_seconds": 0})
    assert client.get(ACTIVITY_PATH, headers=auth).status_code == 200


def test_fields_can_be_left_out_as_a_tenant_that_names_them_otherwise(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    client.post("/sandbox/faults", json={"skill_activity_omit_fields": ["agentsAvailable", "queueCount"]})

    entry = entry_of(client.get(ACTIVITY_PATH, headers=auth).get_json(), BILLING.skill_id)
    assert "agentsAvailable" not in entry and "queueCount" not in entry
    assert entry["skillId"] == BILLING.skill_id and "longestQueueTimeInSeconds" in entry
    assert client.get(control_path(BILLING.skill_id)).get_json()["agentsAvailable"] == 3  # still held


def test_the_command_sets_a_skill_by_name_or_id(live_sandbox: SandboxServer) -> None:
    out = io.StringIO()
    status = skill_activity_command(
        ["Billing", "--agents-available", "0", "--queue-count", "7", "--longest-wait", "120"],
        {"SANDBOX_PUBLIC_URL": live_sandbox.url},
        out,
    )

    assert status == 0, out.getvalue()
    shown = json.loads(out.getvalue())
    assert (shown["skillId"], shown["agentsAvailable"], shown["queueCount"]) == (BILLING.skill_id, 0, 7)
    again = io.StringIO()
    assert skill_activity_command([str(BILLING.skill_id), "--url", live_sandbox.url], {}, again) == 0
    assert json.loads(again.getvalue())["longestQueueTimeInSeconds"] == 120
    with pytest.raises(SystemExit):  # two skills have this name: say so rather than pick one
        skill_activity_command(["Duplicate Queue", "--url", live_sandbox.url], {}, io.StringIO())
    refused = io.StringIO()
    assert skill_activity_command(["999", "--queue-count", "1", "--url", live_sandbox.url], {}, refused) == 1


def test_the_module_runs_the_command(live_sandbox: SandboxServer) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cxone_sandbox",
            "skill-activity",
            "General Inquiry",
            "--agents-available",
            "1",
        ],
        cwd=PROJECT_ROOT,
        env={"SANDBOX_PUBLIC_URL": live_sandbox.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["agentsAvailable"] == 1
