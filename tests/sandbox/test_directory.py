"""Seed data, skill search and paging, and the DFO routing-queue list."""

from __future__ import annotations

from flask.testing import FlaskClient

from cxone_sandbox import SEED_SKILLS

from .cxone_calls import ROUTING_QUEUES_PATH, SKILLS_PATH

REQUIRED_ACTIVE_NAMES = {
    "Sales Support",
    "Sales Support Overflow",
    "Technical Support",
    "Technical Support Tier 2",
    "Billing",
    "Billing Disputes",
    "Claims",
    "Claims Escalations",
    "General Inquiry",
    "Retention",
    "Duplicate Queue",
}


def test_seed_is_deterministic_and_complete() -> None:
    ids = [skill.skill_id for skill in SEED_SKILLS]
    assert ids == list(range(1200001, 1200001 + len(SEED_SKILLS)))
    assert 240 <= len(SEED_SKILLS) <= 260
    by_name = {skill.skill_name: skill for skill in SEED_SKILLS}
    assert REQUIRED_ACTIVE_NAMES <= set(by_name)
    assert all(by_name[name].is_active for name in REQUIRED_ACTIVE_NAMES)
    assert not by_name["Legacy Sales"].is_active
    assert by_name["Claims"].media_type_name == "Phone Call"
    assert by_name["Sales Support"].media_type_id == 3
    duplicates = [skill for skill in SEED_SKILLS if skill.skill_name == "Duplicate Queue"]
    assert len(duplicates) == 2 and all(skill.is_active for skill in duplicates)


def test_search_is_a_case_insensitive_substring_match(client: FlaskClient, auth: dict[str, str]) -> None:
    body = client.get(SKILLS_PATH, query_string={"searchString": "sales support"}, headers=auth)
    assert body.status_code == 200
    listing = body.get_json()
    assert [skill["skillName"] for skill in listing["skills"]] == [
        "Sales Support",
        "Sales Support Overflow",
    ]
    assert listing["totalRecords"] == 2
    assert listing["businessUnitId"] and listing["lastPollTime"].endswith("Z")
    assert listing["_links"]["next"] is None
    skill = listing["skills"][0]
    assert skill["mediaTypeName"] == "Chat" and skill["isActive"] and not skill["isOutbound"]


def test_search_for_a_duplicated_name_returns_both(client: FlaskClient, auth: dict[str, str]) -> None:
    listing = client.get(
        SKILLS_PATH, query_string={"searchString": "Duplicate Queue"}, headers=auth
    ).get_json()
    ids = [skill["skillId"] for skill in listing["skills"]]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_paging_covers_every_match_once_in_skill_id_order(client: FlaskClient, auth: dict[str, str]) -> None:
    expected = [s.skill_id for s in SEED_SKILLS if "sales" in s.skill_name.lower()]
    assert len(expected) > 100
    collected: list[int] = []
    pages = 0
    while True:
        query = {"searchString": "Sales", "skip": len(collected), "top": 100}
        listing = client.get(SKILLS_PATH, query_string=query, headers=auth).get_json()
        assert listing["totalRecords"] == len(expected)
        collected += [skill["skillId"] for skill in listing["skills"]]
        pages += 1
        if len(collected) >= listing["totalRecords"]:
            break
    assert pages == 2
    assert collected == expected
    assert listing["_links"]["next"] is None and listing["_links"]["previous"]


def test_top_is_capped_at_100_and_defaults_to_100(client: FlaskClient, auth: dict[str, str]) -> None:
    capped = client.get(SKILLS_PATH, query_string={"top": 1000}, headers=auth).get_json()
    assert len(capped["skills"]) == 100 and capped["totalRecords"] == len(SEED_SKILLS)
    assert "top=100" in capped["_links"]["next"]
    default = client.get(SKILLS_PATH, headers=auth).get_json()
    assert len(default["skills"]) == 100


def test_invalid_paging_parameters_are_400(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get(SKILLS_PATH, query_string={"top": "ten"}, headers=auth).status_code == 400
    assert client.get(SKILLS_PATH, query_string={"skip": -1}, headers=auth).status_code == 400


def test_routing_queues_list_digital_skills_only(client: FlaskClient, auth: dict[str, str]) -> None:
    listing = client.get(
        ROUTING_QUEUES_PATH, query_string={"nameContains": "claims"}, headers=auth
    ).get_json()
    assert listing == {"hits": 0, "data": []}  # Claims skills are phone skills
    listing = client.get(
        ROUTING_QUEUES_PATH, query_string={"nameContains": "technical", "size": 1}, headers=auth
    ).get_json()
    assert listing["hits"] == 2 and len(listing["data"]) == 1
    queue = listing["data"][0]
    assert queue["name"] == "Technical Support" and queue["skillId"] == 1200003
    assert (queue["isSubqueue"], queue["isDeleted"]) == (False, False)
    assert len(queue["id"]) == 36


def test_routing_queues_page_as_nice_documents_50_by_default_and_500_on_request(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    digital = [s for s in SEED_SKILLS if s.is_digital]
    assert len(digital) > 100  # so that a page of 100 would miss some

    default = client.get(ROUTING_QUEUES_PATH, headers=auth).get_json()
    everything = client.get(ROUTING_QUEUES_PATH, query_string={"size": 500}, headers=auth).get_json()

    assert default["hits"] == everything["hits"] == len(digital)
    assert len(default["data"]) == 50
    assert [q["skillId"] for q in everything["data"]] == [s.skill_id for s in digital]


def test_api_calls_are_counted_per_endpoint(client: FlaskClient, auth: dict[str, str]) -> None:
    client.get(SKILLS_PATH, headers=auth)
    client.get(ROUTING_QUEUES_PATH, headers=auth)
    client.get(ROUTING_QUEUES_PATH, headers=auth)
    stats = client.get("/sandbox/stats?summary=1").get_json()
    assert stats["api_calls"] == 3
    assert stats["api_calls_by_endpoint"] == {
        "skills": 1,
        "routing_queues": 2,
        "routing_put": 0,
        "signal": 0,
        "contact_get": 0,
        "skill_activity": 0,
    }
