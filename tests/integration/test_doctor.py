"""``python -m ops doctor`` against the CXone sandbox and a real Redis, run as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import redis
import requests

from ops.doctor import Redactor, run_checks, safe_url
from tests.integration.stack import API_KEY, REPO, Stack

#: The sandbox's skill ids for the example routing table's queues (cxone_sandbox/seed.py).
EXAMPLE_SKILLS = {
    "sales_inquiry": ("Sales Support", 1200001),
    "support_ticket": ("Technical Support", 1200003),
    "billing_dispute": ("Billing Disputes", 1200006),
    "claims": ("Claims", 1200007),
    "cancel_subscription": ("Retention", 1200010),
    "billing_question": ("Billing", 1200005),
    "<fallback>": ("General Inquiry", 1200009),
}

BROKEN_ROUTES = """
fallback: General Inquiry
routes:
  sales_inquiry: Sales Support
  lost_luggage: Lost Luggage Desk
  duplicate: Duplicate Queue
  legacy: {queue: Legacy Sales, mode: voice}
  vip_callback: {skill_id: 1200042, mode: digital}
"""


def doctor(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops", "doctor", *args],
        cwd=REPO,
        env=stack.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def as_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout)


def secrets_of(stack: Stack) -> list[str]:
    values = stack.env()
    return [values["CXONE_CLIENT_SECRET"], values["CXONE_ACCESS_KEY_SECRET"], API_KEY]


def test_a_good_deployment_is_ready_and_every_queue_has_its_sandbox_skill_id(stack):
    result = doctor(stack)
    print(result.stdout)  # the report, for whoever reads the test log

    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout
    assert "ready for traffic: 0 problem(s)" in table
    for intent, (queue, skill_id) in EXAMPLE_SKILLS.items():
        line = next(line for line in table.splitlines() if line.startswith(intent + " "))
        assert queue in line and str(skill_id) in line and " found " in line, line
    vip = next(line for line in table.splitlines() if line.startswith("vip_callback"))
    assert "pinned, not looked up" in vip and "1200042" in vip
    assert "by channel: voice on voiceGateway2, voiceGateway, voice, phone" in vip
    token_line = next(line for line in table.splitlines() if line.startswith("cxone token"))
    assert "password grant" in token_line and "tenant " in token_line
    # The sandbox's well-known credentials are fine against the sandbox, and said to be demo values.
    demo_line = next(line for line in table.splitlines() if line.startswith("demo secrets"))
    assert " ok " in demo_line and "allowed because CXone is the sandbox" in demo_line
    assert f"API {stack.sandbox_url} (discovered for the tenant)" in token_line
    for secret in secrets_of(stack):
        assert secret not in result.stdout + result.stderr


MEDIA_ROUTES = """
voice_channels: [voiceGateway2]
signal_params: ["{skill_id}", "{queue}"]
routes:
  claims: {queue: Claims, mode: voice, signal_params: ["Escalate", "{skill_id}"]}
  sales_inquiry: {queue: Sales Support, mode: voice}
  billing_dispute: {queue: Billing Disputes, mode: digital}
  claims_escalations: {queue: Claims Escalations, mode: digital}
"""


def test_each_route_shows_the_sandbox_skills_media_type_and_its_example_signal(stack, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(MEDIA_ROUTES)

    result = doctor(stack, "--json", ROUTES_FILE=str(routes))
    print(result.stdout)

    by_intent = {r["intent"]: r for r in as_json(result)["routes"]}
    # The media types are the sandbox's skills list (cxone_sandbox/seed.py): Claims is a phone skill.
    assert (by_intent["claims"]["media_type_id"], by_intent["claims"]["media_type_name"]) == (4, "Phone Call")
    assert by_intent["claims"]["status"] == "ok"
    assert by_intent["claims"]["signal_params"] == ["Escalate", "1200007"]
    # A voice route to a chat skill, and a digital route to a phone skill: warnings, not failures.
    assert by_intent["sales_inquiry"]["status"] == "warn"
    assert "voice route to skill 1200001, media type Chat (3)" in by_intent["sales_inquiry"]["detail"]
    assert by_intent["sales_inquiry"]["signal_params"] == ["1200001", "Sales Support"]
    assert by_intent["claims_escalations"]["status"] == "warn"
    assert (
        "digital route to skill 1200008, media type Phone Call (4)"
        in by_intent["claims_escalations"]["detail"]
    )
    assert by_intent["billing_dispute"]["status"] == "ok"
    assert by_intent["billing_dispute"]["signal_params"] is None
    assert result.returncode == 0  # warnings only
    assert doctor(stack, "--strict", ROUTES_FILE=str(routes)).returncode == 1

    text = doctor(stack, ROUTES_FILE=str(routes)).stdout
    claims = text.splitlines().index(next(line for line in text.splitlines() if line.startswith("claims ")))
    assert "Phone Call (4)" in text.splitlines()[claims]
    assert text.splitlines()[claims + 1] == "    signal: p1=Escalate, p2=1200007"


def test_json_output_lists_every_check_and_route(stack):
    result = doctor(stack, "--json")

    report = as_json(result)
    assert result.returncode == 0 and report["ok"] is True
    assert [c["name"] for c in report["checks"]] == [
        "settings",
        "demo secrets",
        "webhook auth",
        "cxone credentials",
        "cxone hosts",
        "routing table",
        "redis",
        "redis durability",
        "redis topology",
        "cxone pauses",
        "cxone token",
        "cxone skill activity",
    ]
    found = {r["intent"]: r["skill_id"] for r in report["routes"]}
    assert found == {**{i: s for i, (_q, s) in EXAMPLE_SKILLS.items()}, "vip_callback": 1200042}


def test_missing_ambiguous_and_inactive_queues_each_give_their_reason(stack, tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(BROKEN_ROUTES)

    result = doctor(stack, ROUTES_FILE=str(routes))
    print(result.stdout)

    assert result.returncode == 1
    assert "NOT READY: 3 problem(s)" in result.stdout
    assert "missing: no CXone skill has this exact name" in result.stdout
    assert "ambiguous: 2 active skills have this exact name (ids 1200012, 1200013)" in result.stdout
    assert "inactive: skill 1200011 has this name but is not active" in result.stdout
    routes_by_intent = {
        r["intent"]: r for r in as_json(doctor(stack, "--json", ROUTES_FILE=str(routes)))["routes"]
    }
    assert routes_by_intent["lost_luggage"]["lookup"] == "missing"
    assert routes_by_intent["duplicate"]["lookup"] == "ambiguous"
    assert routes_by_intent["legacy"]["lookup"] == "inactive"
    assert routes_by_intent["legacy"]["mode"] == "voice (forced)"
    assert routes_by_intent["vip_callback"]["mode"] == "digital (forced)"
    assert routes_by_intent["sales_inquiry"]["skill_id"] == 1200001


def test_a_wrong_client_secret_fails_the_token_check_clearly(stack):
    result = doctor(stack, CXONE_CLIENT_SECRET="not-the-sandbox-secret")
    print(result.stdout)

    assert result.returncode == 1
    token_line = next(line for line in result.stdout.splitlines() if line.startswith("cxone token"))
    assert "FAIL" in token_line
    assert "CXone rejected the credentials (invalid_client): check CXONE_CLIENT_ID/SECRET" in token_line
    assert "(CXone's OAuth error: invalid_client, HTTP 401)" in token_line
    assert "skipped: no CXone token" in result.stdout
    assert "not-the-sandbox-secret" not in result.stdout + result.stderr


def test_the_doctor_leaves_the_workers_token_and_skill_caches_alone(stack):
    client = stack.redis()
    client.set("router:cxone:token", "the workers' token")

    assert doctor(stack).returncode == 0

    assert client.get("router:cxone:token") == "the workers' token"
    assert client.keys("router:cxone:skill:*") == []
    # Its skill searches do count against the shared CXone call budget.
    assert client.llen("router:cxone:rate-limit") >= len(EXAMPLE_SKILLS)


def test_bad_settings_and_a_broken_routing_table_are_reported_not_raised(stack, tmp_path):
    bad = doctor(stack, PORT="eighty", WEBHOOK_API_KEYS="")
    assert bad.returncode == 1
    assert "PORT='eighty' is not an integer" in bad.stdout

    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  vip: {skill_id: abc}\n")
    broken = doctor(stack, ROUTES_FILE=str(routes))
    assert broken.returncode == 1
    assert "routes.vip.skill_id: must be a positive integer" in broken.stdout

    no_keys = as_json(doctor(stack, "--json", WEBHOOK_API_KEYS=""))
    assert {c["name"]: c["status"] for c in no_keys["checks"]}["webhook auth"] == "fail"


def test_unreachable_redis_fails_and_skips_the_lookups(stack):
    result = doctor(stack, "--json", REDIS_URL="redis://:hunter2hunter2@127.0.0.1:1/0")

    report = as_json(result)
    assert result.returncode == 1
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["redis"]["status"] == "fail"
    assert "redis://:***@127.0.0.1:1/0" in checks["redis"]["detail"]
    assert checks["cxone token"]["status"] == "ok"  # the token needs no Redis
    assert {r["lookup"] for r in report["routes"]} == {"skipped: Redis unreachable", "pinned, not looked up"}
    assert "hunter2hunter2" not in result.stdout


def test_signing_settings_and_weak_keys_are_reported_without_their_values(stack):
    env = {
        "WEBHOOK_API_KEYS": "short-key,a-long-enough-webhook-key",
        "WEBHOOK_SIGNING_SECRETS": "whsec-one-0123456789,whsec-two-0123456789",
        "WEBHOOK_SIGNATURE_REQUIRED": "true",
    }
    result = doctor(stack, **env)

    line = next(line for line in result.stdout.splitlines() if line.startswith("webhook auth"))
    assert "warn" in line and "key #1 is shorter than 16" in line
    assert "signatures required (2 secret(s))" in line
    assert result.returncode == 0  # a warning: still ready
    assert doctor(stack, "--strict", **env).returncode == 1
    for value in ("short-key", "whsec-one-0123456789", "a-long-enough-webhook-key"):
        assert value not in result.stdout


class ManagedRedis(redis.Redis):
    """Like a managed Redis that refuses CONFIG (and, with ``no_info``, INFO sections too)."""

    no_info = False

    def config_get(self, *args, **kwargs):
        raise redis.ResponseError("unknown command 'CONFIG'")

    def info(self, section=None, *args, **kwargs):
        if self.no_info and section in ("memory", "persistence"):
            raise redis.ResponseError("unknown command 'INFO'")
        return super().info(section, *args, **kwargs)


def test_durability_falls_back_to_info_then_says_unknown(stack):
    env = stack.env()

    via_info = run_checks(
        env, redis_factory=lambda s: ManagedRedis.from_url(s.redis_url, decode_responses=True)
    )
    durability = next(c for c in via_info.checks if c.name == "redis durability")
    assert "maxmemory-policy noeviction" in durability.detail  # read from INFO memory

    class Locked(ManagedRedis):
        no_info = True

    unknown = run_checks(env, redis_factory=lambda s: Locked.from_url(s.redis_url, decode_responses=True))
    durability = next(c for c in unknown.checks if c.name == "redis durability")
    assert durability.status == "warn"
    assert "maxmemory-policy unknown" in durability.detail
    assert "appendonly unknown" in durability.detail
    assert unknown.problems() == 0
    # A warning, the only one among the checks (the example table's routes add media type warnings).
    assert [c.status for c in unknown.checks].count("warn") == 1


def test_safe_url_and_redactor():
    assert safe_url("rediss://user:pw@host:6380/1") == "rediss://user:***@host:6380/1"
    assert safe_url("redis://host:6379/0") == "redis://host:6379/0"
    redactor = Redactor.from_environ(
        {
            "CXONE_CLIENT_SECRET": "s3cr3t-value",
            "WEBHOOK_API_KEYS": "k1-aaaa, k2-bbbb",
            "REDIS_URL": "redis://:redispw@h/0",
            "FLOWER_BASIC_AUTH": "admin:flowerpw",
        }
    )
    text = redactor.scrub("s3cr3t-value k1-aaaa k2-bbbb redispw flowerpw admin")
    assert text == "*** *** *** *** *** admin"


def test_ops_help_lists_doctor():
    result = subprocess.run(
        [sys.executable, "-m", "ops", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "PYTHONPATH": str(REPO)},
    )
    assert "doctor" in result.stdout


# ------------------------------------------------------------------------------ --contact


def contact_line(result: subprocess.CompletedProcess) -> str:
    return next(line for line in result.stdout.splitlines() if line.startswith("cxone contact"))


def test_doctor_contact_reads_an_existing_contact_back(stack):
    result = doctor(stack, "--contact", "7100001")
    print(result.stdout)

    assert result.returncode == 0, result.stdout + result.stderr
    line = contact_line(result)
    assert " ok " in line
    assert (
        "7100001: a digital contact of this tenant; status new; no routing queue; no agent assigned" in line
    )
    assert "contact 7100001 as CXone returned it" in result.stdout
    assert '"interactionId": ' in result.stdout and '"createdAt": ' in result.stdout
    # The sandbox returns the customer with the contact, as CXone does: none of it is printed.
    for customer_data in ("Sandbox Customer", "customer-7100001@example.com", "ACCT-7100001"):
        assert customer_data not in result.stdout
    assert "endUser.firstName" in result.stdout  # named as left out, without its value
    assert stack.sandbox_stats()["api_calls_by_endpoint"]["contact_get"] == 1


def test_doctor_contact_shows_the_queue_by_skill_name_and_the_assigned_agent(stack):
    sales = 1200001
    # An agent took the contact from the Sales Support queue (the sandbox's control API).
    assigned = requests.post(
        stack.sandbox_url + "/sandbox/contacts/7100002", json={"skillId": sales, "assignee": 4242}, timeout=5
    )
    assert assigned.status_code == 200

    result = doctor(stack, "--contact", "7100002", "--json")

    report = as_json(result)
    assert result.returncode == 0, result.stdout
    contact = report["contact"]
    assert (contact["exists"], contact["status"], contact["assignee"]) == (True, "open", "4242")
    assert (contact["routing_queue"], contact["skill_id"]) == ("Sales Support", sales)
    assert contact["routing_queue_id"] == assigned.json()["routingQueueId"]
    assert contact["returned"]["inboxAssigneeUser"] == {
        "id": 4242,
        "incontactId": assigned.json()["inboxAssigneeUser"]["incontactId"],
        "isBotUser": False,
    }
    assert "inboxAssigneeUser.emailAddress" in contact["omitted"]
    assert "agent4242@sandbox.example" not in result.stdout
    check = next(c for c in report["checks"] if c["name"] == "cxone contact")
    assert check["status"] == "ok"
    assert "= skill 1200001 'Sales Support'; assigned to agent 4242" in check["detail"]


def test_doctor_contact_says_an_unknown_contact_is_not_a_digital_contact(stack):
    # Every numeric id is a contact of the sandbox tenant; CXone (and the sandbox) answer 404 to
    # other ids, which a deployment with a looser CONTACT_ID_PATTERN lets through to CXone.
    unknown = doctor(stack, "--contact", "chat-7100003", CONTACT_ID_PATTERN="^[a-z0-9-]{1,40}$")

    assert unknown.returncode == 1
    line = contact_line(unknown)
    assert " FAIL " in line
    assert "not a digital contact of this tenant (CXone answered 404)" in line
    assert "check that the bot sends the DFO contact id" in line
    assert (
        as_json(doctor(stack, "--json", "--contact", "chat-7100003", CONTACT_ID_PATTERN="^[a-z0-9-]{1,40}$"))[
            "contact"
        ]["exists"]
        is False
    )


def test_doctor_contact_warns_about_a_closed_contact_and_refuses_a_non_id(stack):
    stack.set_faults(closed_contacts=["7100004"])

    closed = doctor(stack, "--contact", "7100004")
    not_an_id = doctor(stack, "--contact", "session-42")

    assert closed.returncode == 0 and " warn " in contact_line(closed)
    assert "status closed" in contact_line(closed)
    assert "CXone does not move a closed contact" in contact_line(closed)
    assert not_an_id.returncode == 1
    assert "'session-42' is not a CXone contact id (CONTACT_ID_PATTERN" in contact_line(not_an_id)
    assert stack.sandbox_stats()["api_calls_by_endpoint"]["contact_get"] == 1  # the closed one only


def test_doctor_contact_warns_when_the_tenant_names_a_contact_field_otherwise(stack):
    # The field names come from NICE's specification, unconfirmed on live tenants: a wrong one
    # must show up before a routing depends on it.
    result = doctor(stack, "--contact", "7100005", CXONE_CONTACT_QUEUE_FIELD="routingQueue.id")

    line = contact_line(result)
    assert result.returncode == 0 and " warn " in line
    assert "the contact has no field routingQueue.id (CXONE_CONTACT_QUEUE_FIELD)" in line
    assert '"routingQueueId": null' in result.stdout  # the name the tenant uses, shown below
    assert doctor(stack, "--strict", "--contact", "7100005", CXONE_CONTACT_QUEUE_FIELD="x").returncode == 1


def test_each_routed_queue_shows_its_live_state_and_one_skills_activity_fields(stack):
    response = requests.post(
        f"{stack.sandbox_url}/sandbox/skills/1200005/activity",
        json={"agentsAvailable": 0, "queueCount": 4, "longestQueueTimeInSeconds": 70},
        timeout=5,
    )
    response.raise_for_status()

    result = doctor(stack, "--json")

    report = as_json(result)
    assert result.returncode == 0, result.stdout + result.stderr
    queues = {q["queue"]: q for q in report["queues"]}
    billing = queues["Billing"]  # billing_question's queue in the example table
    assert (billing["skill_id"], billing["agents_available"], billing["queue_count"]) == (1200005, 0, 4)
    assert billing["longest_wait_seconds"] == 70 and billing["status"] == "ok"
    assert billing["overflow"][0] == "-> General Inquiry if agents_available_below 1"
    assert queues["Sales Support"]["agents_available"] == 3  # the sandbox's default
    assert report["activity"]["skillId"] in {q["skill_id"] for q in report["queues"]}
    assert {"skillId", "agentsAvailable", "queueCount", "longestQueueTimeInSeconds"} <= set(
        report["activity"]["fields"]
    )
    text = doctor(stack).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("Billing ")]
    assert ["Billing", "1200005", "0", "4", "70s", "ok"] in rows  # (Billing Disputes has a row too)
    assert "as CXone returned it (compare the names with the CXone supervisor view)" in text


def test_doctor_contact_shows_what_a_routing_reads_back_and_which_setting_names_it(stack):
    # A routing whose earlier attempt's outcome is unknown reads status, queue and assignee: the
    # doctor names each field with its setting, so an operator can check them on a live tenant.
    sandbox_contact = requests.post(
        stack.sandbox_url + "/sandbox/contacts/7100006",
        json={"skillId": 1200001, "assignee": 4242},
        timeout=5,
    ).json()

    text = doctor(stack, "--contact", "7100006", CXONE_CONTACT_ASSIGNEE_FIELD="inboxAssignee")
    report = as_json(doctor(stack, "--contact", "7100006", "--json"))

    print(text.stdout)
    assert (
        "what a routing reads back from it before repeating a call whose outcome is unknown:" in text.stdout
    )
    lines = text.stdout.splitlines()
    row = {
        line.split()[0]: line for line in lines if line.startswith(("  status ", "  queue ", "  assignee "))
    }
    assert "CXONE_CONTACT_STATUS_FIELD=status" in row["status"] and row["status"].rstrip().endswith(" open")
    assert "CXONE_CONTACT_QUEUE_FIELD=routingQueueId" in row["queue"]
    assert row["queue"].rstrip().endswith(sandbox_contact["routingQueueId"])
    assert (
        "CXONE_CONTACT_ASSIGNEE_FIELD=inboxAssignee" in row["assignee"]
        and "(no such field)" in row["assignee"]
    )
    meaning = (
        "so, with status open: waiting: "
        "a repeated routing moves it unless it is in that queue or an agent has it"
    )
    assert meaning in text.stdout
    assert report["contact"]["read_back"] == [
        {
            "reads": "status",
            "field": "status",
            "setting": "CXONE_CONTACT_STATUS_FIELD",
            "present": True,
            "value": "open",
        },
        {
            "reads": "queue",
            "field": "routingQueueId",
            "setting": "CXONE_CONTACT_QUEUE_FIELD",
            "present": True,
            "value": sandbox_contact["routingQueueId"],
        },
        {
            "reads": "assignee",
            "field": "inboxAssigneeUser",
            "setting": "CXONE_CONTACT_ASSIGNEE_FIELD",
            "present": True,
            "value": "4242",
        },
    ]
