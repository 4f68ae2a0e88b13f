"""The inspector's routes: ``launch`` (from the EHR) → the authorize redirect → ``callback`` → the result page."""
from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from fhir_gateway.auth.clients import ClientError
from sandbox_fixtures.sandbox.chart import human_name
from sandbox_fixtures.sandbox.inspector import client as smart
from sandbox_fixtures.sandbox.inspector.transport import Transport

EXT = "sandbox.inspector"
CLIENT_ID = "telehub-launch-inspector"
CLIENT_NAME = "Launch inspector (sandbox demo app)"
COOKIE = "inspector_browser"
CONTEXT_KEYS = ("patient", "encounter", "need_patient_banner", "smart_style_url", "intent", "fhirContext",
                "tenant", "scope", "expires_in", "__epic.dstu2.patient", "deptID", "loginDepartment", "ah_practice")


@dataclass
class Inspector:
    """What the routes need: the client's credentials, its URLs, the transport and the pending launches."""

    secret: str
    origin: str
    http: Transport
    pending: smart.PendingLaunches

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}/sandbox/inspector/callback"

    @property
    def launch_uri(self) -> str:
        return f"{self.origin}/sandbox/inspector/launch"


def ensure_client(auth: Any, inspector: Inspector) -> None:
    """Register (or re-register, when the origin or secret changed) the inspector as a confidential client."""
    scope = f"{smart.SCOPE} launch/patient launch/encounter"
    found = auth.clients.get(CLIENT_ID)
    if found is not None and found.redirect_uris == [inspector.redirect_uri] and found.scope == scope \
            and found.launch_uri == inspector.launch_uri and found.check_client_secret(inspector.secret):
        return
    if found is not None:
        auth.clients.remove(CLIENT_ID)
    with contextlib.suppress(ClientError):  # another worker registered it at the same moment
        auth.clients.add(CLIENT_ID, client_type="symmetric", secret=inspector.secret, name=CLIENT_NAME,
                         redirect_uris=[inspector.redirect_uri], launch_uri=inspector.launch_uri, scope=scope)


def _inspector() -> Inspector:
    found: Inspector = current_app.extensions[EXT]
    return found


def _page(template: str, status: int = 200, **ctx: Any) -> Response:
    resp = make_response(render_template(template, **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def make_blueprint() -> Blueprint:
    bp = Blueprint("inspector", __name__)

    @bp.get("/inspector/launch")
    def launch() -> BaseResponse:
        ins = _inspector()
        iss, launch_id = request.args.get("iss", ""), request.args.get("launch", "")
        if not iss or not launch_id:
            return _page("inspector_error.html", 400, message="An EHR launch needs both iss and launch.")
        try:
            config = smart.discover(ins.http, iss)
        except smart.LaunchFailed as exc:
            return _page("inspector_error.html", 502, message=str(exc))
        browser = request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
        verifier, challenge = smart.pkce_pair()
        state = ins.pending.put(smart.Pending(
            iss=iss, token_endpoint=config["token_endpoint"], issuer=str(config.get("issuer", "")),
            jwks_uri=str(config.get("jwks_uri", "")), verifier=verifier, browser=browser,
            expires=time.time() + smart.PENDING_TTL))
        resp = redirect(smart.authorize_url(config, client_id=CLIENT_ID, redirect_uri=ins.redirect_uri, iss=iss,
                                            launch=launch_id, state=state, challenge=challenge))
        resp.set_cookie(COOKIE, browser, httponly=True, samesite="Lax", secure=request.is_secure, path="/sandbox")
        return resp

    @bp.get("/inspector/callback")
    def callback() -> Response:
        ins = _inspector()
        if request.args.get("error"):
            return _page("inspector_error.html", 400, message=f"The authorization server said: "
                         f"{request.args.get('error')} {request.args.get('error_description', '')}".strip())
        pending = ins.pending.take(request.args.get("state", ""), request.cookies.get(COOKIE, ""))
        if pending is None:
            return _page("inspector_error.html", 400, message="Unknown or expired state: start the launch again.")
        try:
            token = smart.exchange(ins.http, pending, code=request.args.get("code", ""), client_id=CLIENT_ID,
                                   secret=ins.secret, redirect_uri=ins.redirect_uri)
        except smart.LaunchFailed as exc:
            return _page("inspector_error.html", 502, message=str(exc))
        try:
            claims = smart.id_token_claims(ins.http, pending, token["id_token"], CLIENT_ID) \
                if token.get("id_token") else {}
        except smart.LaunchFailed as exc:
            return _page("inspector_error.html", 502, message=str(exc))
        access = token["access_token"]
        query = f"ah-practice=Organization/{token['ah_practice']}" if token.get("ah_practice") else ""
        patient = smart.read(ins.http, pending.iss, f"Patient/{token['patient']}", access, query) \
            if token.get("patient") else None
        encounter = smart.read(ins.http, pending.iss, f"Encounter/{token['encounter']}", access, query) \
            if token.get("encounter") else None
        context = [(k, token[k]) for k in CONTEXT_KEYS if k in token]
        return _page("inspector.html", iss=pending.iss, context=context,
                     patient_name=human_name(patient) if patient else None,
                     birth_date=(patient or {}).get("birthDate"),
                     encounter_status=(encounter or {}).get("status"), has_id_token="id_token" in token,
                     fhir_user=claims.get("fhirUser"))

    return bp
