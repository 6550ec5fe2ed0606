"""The sandbox's HTTP face: CXone auth, discovery, skills and their activity, DFO and Signal, plus
controls."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import flask
from werkzeug.exceptions import HTTPException

from .activity import SETTABLE, parse_activity_update
from .config import SandboxConfig
from .contacts import parse_contact_update
from .faults import KNOB_HELP, KNOB_NAMES, parse_fault_update
from .seed import SeedSkill
from .state import HOLD_MAX_SECONDS, ApiError, SandboxState
from .timestamps import iso_timestamp
from .tokens import AREA, CLUSTER

ACD_BASE = "/inContactAPI/services/v30.0"
DFO_BASE = "/dfo/3.0"
MAX_SKILLS_PAGE = 100  # clients page with top <= 100; asking for more still gets 100
# NICE's agent SDK: "default routing queue response is of 50 records", so it asks for size=500
# (github.com/nice-devone/nice-cxone-agent-sdk, SkillService). No larger page is documented.
DEFAULT_ROUTING_QUEUE_PAGE = 50
MAX_ROUTING_QUEUE_PAGE = 500
SEED_UPDATE_TIME = "2024-01-15T09:30:00.000Z"  # fixed so skill listings are reproducible

# Views whose 401/429/5xx answers the stats count.
_COUNTED_VIEWS = frozenset(
    {
        "issue_token",
        "list_skills",
        "list_routing_queues",
        "change_routing_queue",
        "signal_contact",
        "get_contact",
        "all_skills_activity",
        "one_skill_activity",
    }
)


def create_app(config: SandboxConfig | None = None) -> flask.Flask:
    """A Flask app with fresh in-memory state: seed loaded, every knob at its default."""
    config = config or SandboxConfig()
    state = SandboxState(config)
    app = flask.Flask("cxone_sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep CXone's field order
    app.extensions["cxone_sandbox"] = state
    _register_discovery(app, state)
    _register_auth(app, state)
    _register_acd(app, state)
    _register_dfo(app, state)
    _register_controls(app, state)
    _register_error_handlers(app, state)
    return app


def sandbox_state(app: flask.Flask) -> SandboxState:
    """The state object behind an app made by create_app (for tests that inspect it directly)."""
    return app.extensions["cxone_sandbox"]


def _base_url() -> str:
    """The base URL to advertise: the configured public URL, else the one this request used."""
    config: SandboxConfig = sandbox_state(flask.current_app).config
    return (config.public_url or flask.request.host_url).rstrip("/")


def _bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _path_and_query() -> str:
    """This request's path with its query string, as a redirect's Location repeats it."""
    query = flask.request.query_string.decode("latin-1")
    return flask.request.path + (f"?{query}" if query else "")


def _int_arg(name: str, default: int, minimum: int) -> int:
    """An integer query parameter, or ApiError(400) naming it."""
    raw = flask.request.args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "InvalidParameter", f"{name} must be an integer", field=name) from None
    if value < minimum:
        raise ApiError(400, "InvalidParameter", f"{name} must be at least {minimum}", field=name)
    return value


def _api_call(state: SandboxState, endpoint: str) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a CXone API view with latency, outage, token, rate-limit and fault checks."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def gated(**kwargs: Any) -> Any:
            # Sleep before taking the lock so slow calls overlap, as they would on a real server.
            delay_ms = state.knobs.latency_ms
            if delay_ms:
                time.sleep(delay_ms / 1000)
            state.hold_if_asked(endpoint)
            state.admit_api_call(endpoint, _bearer_token(), _path_and_query())
            answer = view(**kwargs)
            state.hold_answer_if_asked(endpoint)  # carried out and recorded; the answer waits
            return answer

        return gated

    return decorate


def _register_discovery(app: flask.Flask, state: SandboxState) -> None:
    """OpenID and CXone discovery documents, answered without authentication. The
    ``discovery_*`` knobs make them name other endpoints (a tampered or misconfigured discovery)."""
    config = state.config

    @app.get("/.well-known/openid-configuration")
    def openid_configuration() -> Any:
        base = _base_url()
        token_endpoint, _api = state.advertised_endpoints()
        return {
            "issuer": base,
            "token_endpoint": token_endpoint or f"{base}/auth/token",
            "jwks_uri": f"{base}/auth/jwks",
            "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    @app.get("/auth/jwks")
    def jwks() -> Any:
        # Sandbox tokens carry random signatures, so there is no key to publish.
        return {"keys": []}

    @app.get("/.well-known/cxone-configuration")
    def cxone_configuration() -> Any:
        tenant_id = flask.request.args.get("tenantId", "")
        if tenant_id != config.tenant_id:
            raise ApiError(404, "not_found", f"Unknown tenant {tenant_id!r}")
        base = _base_url()
        _token, api_endpoint = state.advertised_endpoints()
        return {
            "area": AREA,
            "cluster": CLUSTER,
            "domain": "niceincontact.com",
            "api_endpoint": api_endpoint or base,
            "auth_endpoint": base,
            "ui_endpoint": base,
            "tenantId": tenant_id,
        }


def _register_auth(app: flask.Flask, state: SandboxState) -> None:
    """The OAuth2 token endpoint: password, client_credentials and refresh_token grants.

    Errors as RFC 6749 section 5.2 and NICE describe them: a wrong client is 401 invalid_client, a
    wrong access key 400 invalid_grant, a grant the application was not given 400 unauthorized_client.
    """
    config = state.config

    def client_credentials() -> tuple[str | None, str | None]:
        """HTTP Basic (client_secret_basic) wins over form fields (client_secret_post)."""
        auth = flask.request.authorization
        if auth is not None and auth.type == "basic":
            return auth.username, auth.password
        return flask.request.form.get("client_id"), flask.request.form.get("client_secret")

    @app.post("/auth/token")
    def issue_token() -> Any:
        form = flask.request.form
        grant_type = form.get("grant_type", "")
        state.admit_token_request(grant_type, _path_and_query())
        invalid_client, invalid_grant, client_credentials_grant = state.token_verdict()
        if invalid_client or client_credentials() != (config.client_id, config.client_secret):
            raise ApiError(
                401,
                "invalid_client",
                "Client authentication failed",
                headers={"WWW-Authenticate": 'Basic realm="cxone-sandbox"'},
            )
        if grant_type == "password":
            key = (form.get("username"), form.get("password"))
            if invalid_grant or key != (config.access_key_id, config.access_key_secret):
                raise ApiError(400, "invalid_grant", "Invalid access key id or access key secret")
            subject = f"user:{config.access_key_id}"
        elif grant_type == "client_credentials":
            if not client_credentials_grant:
                message = "The client is not authorized to use the client_credentials grant"
                raise ApiError(400, "unauthorized_client", message)
            subject = f"client:{config.client_id}"
        elif grant_type == "refresh_token":
            redeemed = state.redeem_refresh_token(form.get("refresh_token", ""))
            if redeemed is None:
                raise ApiError(400, "invalid_grant", "Refresh token is invalid, expired or revoked")
            subject = redeemed
        elif not grant_type:
            raise ApiError(400, "invalid_request", "grant_type is required (form-urlencoded body)")
        else:
            message = f"Grant type {grant_type!r} is not supported"
            raise ApiError(400, "unsupported_grant_type", message)
        response = flask.jsonify(state.issue_tokens(_base_url(), subject))
        response.headers["Cache-Control"] = "no-store"
        return response


def _skill_json(skill: SeedSkill) -> dict[str, Any]:
    """A skill as the ACD skills API lists it."""
    return {
        "skillId": skill.skill_id,
        "skillName": skill.skill_name,
        "mediaTypeId": skill.media_type_id,
        "mediaTypeName": skill.media_type_name,
        "workItemQueueType": None,
        "isActive": skill.is_active,
        "campaignId": 0,
        "campaignName": "",
        "notes": "",
        "isOutbound": False,
        "outboundStrategy": "",
        "isRunning": skill.is_active,
        "priorityBlending": False,
        "lastUpdateTime": SEED_UPDATE_TIME,
    }


def _register_acd(app: flask.Flask, state: SandboxState) -> None:
    """ACD (inContactAPI v30.0) endpoints: skill search and the Signal API."""

    @app.get(f"{ACD_BASE}/skills")
    @_api_call(state, "skills")
    def list_skills() -> Any:
        search = flask.request.args.get("searchString", "")
        skip = _int_arg("skip", 0, minimum=0)
        top = min(_int_arg("top", MAX_SKILLS_PAGE, minimum=1), MAX_SKILLS_PAGE)
        total, page = state.find_skills(search, skip, top)

        def page_url(page_skip: int) -> str:
            query = urlencode({"searchString": search, "skip": page_skip, "top": top})
            return f"{_base_url()}{flask.request.path}?{query}"

        return {
            "_links": {
                "self": page_url(skip),
                "next": page_url(skip + top) if skip + top < total else None,
                "previous": page_url(max(0, skip - top)) if skip > 0 else None,
            },
            "businessUnitId": state.config.business_unit_id,
            "lastPollTime": iso_timestamp(time.time()),
            "totalRecords": total,
            "skills": [_skill_json(skill) for skill in page],
        }

    @app.get(f"{ACD_BASE}/skills/activity")
    @_api_call(state, "skill_activity")
    def all_skills_activity() -> Any:
        return state.skill_activity()

    @app.get(f"{ACD_BASE}/skills/<int:skill_id>/activity")
    @_api_call(state, "skill_activity")
    def one_skill_activity(skill_id: int) -> Any:
        return state.skill_activity(skill_id)

    @app.post(f"{ACD_BASE}/interactions/<contact_id>/signal")
    @_api_call(state, "signal")
    def signal_contact(contact_id: str) -> Any:
        args = flask.request.args
        params = {f"p{n}": args[f"p{n}"] for n in range(1, 10) if f"p{n}" in args}
        state.record_signal(contact_id, params)
        return flask.Response(status=202)


def _register_dfo(app: flask.Flask, state: SandboxState) -> None:
    """Digital Engagement (DFO 3.0) endpoints: routing queue list and contact re-routing."""

    @app.get(f"{DFO_BASE}/routing-queues")
    @_api_call(state, "routing_queues")
    def list_routing_queues() -> Any:
        name_contains = flask.request.args.get("nameContains", "")
        size = _int_arg("size", DEFAULT_ROUTING_QUEUE_PAGE, minimum=1)
        hits, queues = state.find_routing_queues(name_contains, min(size, MAX_ROUTING_QUEUE_PAGE))
        return {
            "hits": hits,
            "data": [
                {
                    "id": skill.routing_queue_id,
                    "name": skill.skill_name,
                    "skillId": skill.skill_id,
                    "isSubqueue": False,
                    "isDeleted": False,
                }
                for skill in queues
            ],
        }

    @app.put(f"{DFO_BASE}/contacts/<contact_id>/routing-queue")
    @_api_call(state, "routing_put")
    def change_routing_queue(contact_id: str) -> Any:
        body = flask.request.get_json(silent=True)
        skill_id = body.get("skillId") if isinstance(body, dict) else None
        if isinstance(skill_id, bool) or not isinstance(skill_id, int):
            raise ApiError(
                400,
                "InvalidRequestBody",
                'Body must be JSON {"skillId": <integer>} sent as application/json',
                field="skillId",
            )
        return state.route_contact(contact_id, skill_id)

    @app.get(f"{DFO_BASE}/contacts/<contact_id>")
    @_api_call(state, "contact_get")
    def get_contact(contact_id: str) -> Any:
        return state.read_contact(contact_id)


def _register_controls(app: flask.Flask, state: SandboxState) -> None:
    """/sandbox/*: knobs, reset, stats and a short help page. Never rate limited nor faulted."""

    @app.get("/sandbox/faults")
    def get_faults() -> Any:
        return state.knobs_view()

    @app.post("/sandbox/faults")
    def set_faults() -> Any:
        try:
            update = parse_fault_update(flask.request.get_json(silent=True))
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error)) from None
        return state.update_knobs(update)

    @app.post("/sandbox/reset")
    def reset() -> Any:
        state.reset()
        return {"reset": True, "faults": state.knobs_view()}

    @app.get("/sandbox/calls")
    def calls() -> Any:
        return {"calls": state.calls_view()}

    @app.get("/sandbox/contacts/<contact_id>")
    def show_contact(contact_id: str) -> Any:
        return state.read_contact(contact_id)

    @app.post("/sandbox/contacts/<contact_id>")
    def set_contact(contact_id: str) -> Any:
        try:
            update = parse_contact_update(flask.request.get_json(silent=True))
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error)) from None
        return state.update_contact(contact_id, update)

    @app.get("/sandbox/skills/<int:skill_id>/activity")
    def show_skill_activity(skill_id: int) -> Any:
        return state.show_skill_activity(skill_id)

    @app.post("/sandbox/skills/<int:skill_id>/activity")
    def set_skill_activity(skill_id: int) -> Any:
        try:
            update = parse_activity_update(flask.request.get_json(silent=True))
        except ValueError as error:
            raise ApiError(400, "invalid_request", str(error)) from None
        return state.update_skill_activity(skill_id, update)

    @app.get("/sandbox/stats")
    def stats() -> Any:
        summary = flask.request.args.get("summary", "").lower() in ("1", "true", "yes")
        return state.stats_view(summary=summary)

    @app.get("/sandbox")
    def help_page() -> Any:
        skills = state.skills
        knobs = state.knobs_view()
        knob_lines = "\n".join(
            f"  {name} = {json.dumps(knobs[name]) if name in knobs else '(action)'}\n      {KNOB_HELP[name]}"
            for name in KNOB_NAMES
        )
        text = f"""CXone sandbox: tenant {state.config.tenant_id}, business unit \
{state.config.business_unit_id}
Seed: {len(skills)} skills, ids {skills[0].skill_id}..{skills[-1].skill_id}

CXone endpoints
  GET  /.well-known/openid-configuration
  GET  /.well-known/cxone-configuration?tenantId=...
  POST /auth/token
  GET  {ACD_BASE}/skills?searchString=&skip=&top=
  GET  {ACD_BASE}/skills/activity          every skill's live state (also skills/<id>/activity)
  POST {ACD_BASE}/interactions/<contactId>/signal?p1=..&p9=
  GET  {DFO_BASE}/routing-queues?nameContains=&size=
  PUT  {DFO_BASE}/contacts/<contactId>/routing-queue   {{"skillId": n}}
  GET  {DFO_BASE}/contacts/<contactId>
  (contact ids are numeric: any other id is an unknown contact, 404)

Controls
  GET  /sandbox/faults       current knobs
  POST /sandbox/faults       JSON partial update of: {", ".join(KNOB_NAMES)}
  POST /sandbox/reset        default knobs and skill activity, zero stats, no contacts
                             (seed and tokens kept)
  GET  /sandbox/stats        counters, routings and signals (?summary=1 omits the last two)
  GET  /sandbox/calls        every token and API request: arrival time, view, status answered
  GET  /sandbox/contacts/<id>   a contact as CXone returns it (not counted, no token)
  POST /sandbox/contacts/<id>   change it: {{"status", "assignee" (agent user id or null),
                                "skillId" (or null)}}; also `python -m cxone_sandbox contact`
  GET  /sandbox/skills/<id>/activity   a skill's live state (not counted, no token)
  POST /sandbox/skills/<id>/activity   change any of {", ".join(SETTABLE)}
                                (default: 5 agents logged in, 3 available, nobody waiting);
                                also `python -m cxone_sandbox skill-activity`

  hold_calls = N holds the next N contact calls (routing PUT, signal) until
  {{"release_held": true}} (or {HOLD_MAX_SECONDS:g} s): a slow CXone call at a chosen moment;
  stats show held_calls (held now) and held_calls_total.
  hold_answers = N carries out the next N contact calls (the contact moved, the call counted),
  then holds their answers the same way: CXone acted and the caller has not heard it yet;
  stats show held_answers and held_answers_total.

Knobs (current value, then what it does)
{knob_lines}
"""
        return flask.Response(text, mimetype="text/plain")


def _register_error_handlers(app: flask.Flask, state: SandboxState) -> None:
    """JSON error bodies everywhere, and the 401/429/5xx tallies of the stats."""

    @app.errorhandler(ApiError)
    def render_api_error(error: ApiError) -> Any:
        # DFO answers errors in its own shape; OAuth and the ACD API use error/error_description.
        if flask.request.path.startswith(f"{DFO_BASE}/") and error.status != 401:
            body: dict[str, Any] = {
                "errors": [
                    {
                        "message": error.message,
                        "field": error.field,
                        "errorCode": error.code,
                        "parameters": {},
                    }
                ],
                "uid": str(uuid.uuid4()),
            }
        else:
            body = {"error": error.code, "error_description": error.message}
        response = flask.jsonify(body)
        response.status_code = error.status
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def render_http_error(error: HTTPException) -> Any:
        response = error.get_response()  # keeps headers such as Allow on a 405
        name = (error.name or "error").lower().replace(" ", "_")
        response.set_data(json.dumps({"error": name, "error_description": error.description}))
        response.content_type = "application/json"
        return response

    @app.before_request
    def note_arrival() -> None:
        flask.g.arrived_at = time.time()

    @app.after_request
    def count_answer(response: flask.Response) -> flask.Response:
        if flask.request.endpoint in _COUNTED_VIEWS:
            state.count_answer(response.status_code)
            state.log_call(
                flask.request.endpoint, flask.g.get("arrived_at", time.time()), response.status_code
            )
        return response
