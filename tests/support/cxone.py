"""Two fakes of CXone: its HTTP endpoints (for the real client) and a client (for the worker).

:class:`FakeCXoneAuth` answers CXone's discovery, token and configuration endpoints through
``responses``, so the real ``CXoneClient`` and its ``requests`` session run unchanged.
:class:`FakeCXone` stands in for the ``CXoneClient`` itself where the worker's decisions are under
test: it records every call and raises whatever error a test queues for the next one.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import responses

from shared.cxone.contact import ContactFields, ContactState, contact_state, unknown_contact
from shared.settings import Settings

AUTH_URL = "https://cxone.example.test"
DISCOVERY_URL = AUTH_URL + "/.well-known/openid-configuration"
CONFIGURATION_URL = AUTH_URL + "/.well-known/cxone-configuration"
TOKEN_URL = AUTH_URL + "/auth/token"
API_URL = "https://api-na1.example.test"
TENANT_ID = "11eb5a3e-tenant-0001"


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` as payload (base64url without padding, as CXone sends)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def make_settings(**overrides: Any) -> Settings:
    """Settings for a password-grant tenant on the fake CXone, with short HTTP timeouts."""
    values: dict[str, Any] = {
        "cxone_auth_url": AUTH_URL,
        "cxone_client_id": "client-id",
        "cxone_client_secret": "client-secret",
        "cxone_access_key_id": "key-id",
        "cxone_access_key_secret": "sandbox/key+secret=",
        # The fake CXone lives under example.test: trusted here as NICE's domains are by default.
        "cxone_trusted_hosts": ("example.test",),
        "cxone_connect_timeout_seconds": 0.5,
        "cxone_read_timeout_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


class FakeCXoneAuth:
    """CXone's discovery, token and configuration endpoints on a ``RequestsMock``.

    Each token request issues a new JWT (``issued`` keeps them in order) carrying ``tenant_id``.
    """

    def __init__(
        self,
        mock: responses.RequestsMock,
        *,
        expires_in: float = 3600,
        tenant_id: str = TENANT_ID,
        api_url: str = API_URL,
        delay: float = 0.0,
    ):
        self.expires_in = expires_in
        self.tenant_id = tenant_id
        self.delay = delay
        self.token_status = 200
        #: The OAuth error code answered with a ``token_status`` other than 200.
        self.token_error = "invalid_client"
        #: Called with no arguments while a token request is being answered (to look at Redis).
        self.on_request: Callable[[], None] | None = None
        self.issued: list[str] = []
        self.token_bodies: list[str] = []
        self._lock = threading.Lock()
        mock.add(responses.GET, DISCOVERY_URL, json={"issuer": AUTH_URL, "token_endpoint": TOKEN_URL})
        mock.add_callback(responses.POST, TOKEN_URL, callback=self._token, content_type="application/json")
        # A trailing slash, as some tenants answer: the client must not produce "//inContactAPI".
        mock.add(
            responses.GET,
            CONFIGURATION_URL,
            json={
                "area": "na1",
                "cluster": "B32",
                "domain": "example.test",
                "api_endpoint": api_url + "/",
                "tenantId": tenant_id,
            },
        )

    @property
    def token_requests(self) -> int:
        return len(self.token_bodies)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.on_request is not None:
            self.on_request()
        if self.delay:
            time.sleep(self.delay)  # widens the race between workers missing the cache together
        with self._lock:
            self.token_bodies.append(request.body)
            if self.token_status != 200:
                return (
                    self.token_status,
                    {},
                    json.dumps({"error": self.token_error, "error_description": "Bad client credentials"}),
                )
            token = make_jwt({"tenantId": self.tenant_id, "icBUId": 4600001, "n": len(self.issued) + 1})
            self.issued.append(token)
        return (
            200,
            {},
            json.dumps(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "refresh_token": "refresh",
                    "id_token": token,
                    "issued_token_type": "access_token",
                }
            ),
        )


#: Exact skill names the fake tenant knows, with a near-miss to prove only exact names match.
SKILLS = {
    "Sales Support": 1100001,
    "Sales Support Overflow": 1100002,
    "Billing Disputes": 1203344,
    "Claims": 1300077,
}


def routing_queue_of(skill_id: int) -> str:
    """The id of the digital routing queue the fake tenant lists for ``skill_id``."""
    return f"rq-{skill_id}"


class FakeCXone:
    """Records every call; ``fail_next(method, exc, …)`` makes the next calls of ``method`` raise.

    It keeps each digital contact as CXone returns it (``contacts``: id → DFO body, created ``new``
    on first use), so a routing-queue PUT moves the contact and ``get_contact`` reads it back.
    ``answer_lost_next(method, exc, …)`` makes the next calls take effect and *then* raise: CXone
    acted, and the answer never arrived.
    """

    timeout = (0.5, 0.5)  # read by QueueDirectory to size its lock

    def __init__(self, skills: dict[str, int] | None = None):
        self.skills = dict(SKILLS if skills is None else skills)
        #: What ``skill_activity`` answers for each skill id (CXone's field names); a skill not
        #: listed here has no activity entry.
        self.activity: dict[int, dict[str, Any]] = {}
        self.calls: list[tuple] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        #: Ids CXone answers 404 for.
        self.unknown_contacts: set[str] = set()
        self._failures: dict[str, list[BaseException]] = {}
        self._lost_answers: dict[str, list[BaseException]] = {}

    def fail_next(self, method: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of ``method`` raise these, in order, doing nothing."""
        self._failures.setdefault(method, []).extend(errors)

    def answer_lost_next(self, method: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of ``method`` take effect, then raise these, in order."""
        self._lost_answers.setdefault(method, []).extend(errors)

    def _maybe_fail(self, method: str) -> None:
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def _maybe_lose_answer(self, method: str) -> None:
        pending = self._lost_answers.get(method)
        if pending:
            raise pending.pop(0)

    def contact(self, contact_id: str) -> dict[str, Any]:
        """The contact's body as CXone would return it (created ``new``, in no queue, on first use)."""
        return self.contacts.setdefault(
            contact_id,
            {"id": contact_id, "status": "new", "routingQueueId": None, "inboxAssigneeUser": None},
        )

    def calls_to(self, method: str) -> list[tuple]:
        return [call[1:] for call in self.calls if call[0] == method]

    # The CXoneClient surface the worker uses.
    def api_base(self) -> str:
        return "https://api-test.example.invalid"

    def token(self):
        self.calls.append(("token",))
        self._maybe_fail("token")
        return "fake-token"

    def search_skills(self, search: str, skip: int = 0, top: int = 100) -> dict:
        self.calls.append(("search_skills", search, skip, top))
        self._maybe_fail("search_skills")
        matches = [
            {"skillId": sid, "skillName": name, "isActive": True}
            for name, sid in self.skills.items()
            if search in name
        ]
        return {"skills": matches[skip : skip + top], "totalRecords": len(matches)}

    def skill_activity(self) -> dict:
        self.calls.append(("skill_activity",))
        self._maybe_fail("skill_activity")
        return {"skillActivity": [{"skillId": sid, **fields} for sid, fields in self.activity.items()]}

    def route_digital(self, contact_id: str, skill_id: int) -> None:
        self.calls.append(("route_digital", contact_id, skill_id))
        self._maybe_fail("route_digital")
        self.contact(contact_id)["routingQueueId"] = routing_queue_of(skill_id)
        self._maybe_lose_answer("route_digital")

    def get_contact(self, contact_id: str, fields: ContactFields | None = None) -> ContactState:
        self.calls.append(("get_contact", contact_id))
        self._maybe_fail("get_contact")
        if contact_id in self.unknown_contacts:
            return unknown_contact(contact_id)
        return contact_state(contact_id, dict(self.contact(contact_id)), fields or ContactFields())

    def list_routing_queues(self, size: int = 500) -> dict:
        self.calls.append(("list_routing_queues", size))
        self._maybe_fail("list_routing_queues")
        queues = [
            {
                "id": routing_queue_of(sid),
                "name": name,
                "skillId": sid,
                "isSubqueue": False,
                "isDeleted": False,
            }
            for name, sid in self.skills.items()
        ]
        return {"hits": len(queues), "data": queues[:size]}

    def signal(self, contact_id: str, params: list[str]) -> None:
        self.calls.append(("signal", contact_id, list(params)))
        self._maybe_fail("signal")
        self._maybe_lose_answer("signal")
