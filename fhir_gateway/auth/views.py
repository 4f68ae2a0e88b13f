"""The auth blueprint: one route table, thin handlers over :mod:`.server`, :mod:`.tokens` and :mod:`.launch`."""
from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from flask import Blueprint, Response, current_app, request

from fhir_gateway.auth import picker, ratelimit, style
from fhir_gateway.auth.discovery import openid_configuration, smart_configuration
from fhir_gateway.auth.errors import InvalidTokenError
from fhir_gateway.auth.launch import LaunchError, Launches, validate_context
from fhir_gateway.auth.pages import render_consent, render_login, render_too_many
from fhir_gateway.auth.scopes import describe, parse_scopes
from fhir_gateway.auth.server import SmartAuthorizationServer, stored_request
from fhir_gateway.auth.signin import sign_in
from fhir_gateway.auth.tokens import SESSION_KEY

EXT = "telehub.auth"
SESSION_COOKIE = "telehub_auth_sid"
SESSION_IDLE = 15 * 60
TXN_TTL = 600
REQUIRED_SCOPES = {"openid", "fhirUser", "launch", "launch/patient", "launch/encounter"}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _server() -> SmartAuthorizationServer:
    server: SmartAuthorizationServer = current_app.extensions[EXT]
    return server


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers or {})


def _cors(resp: Response) -> Response:
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def _html(body: str, status: int = 200) -> Response:
    csp = "default-src 'self'; style-src 'unsafe-inline'"
    return Response(body, status=status, content_type="text/html; charset=utf-8",
                    headers={**NO_STORE, "X-Frame-Options": "DENY", "Content-Security-Policy": csp})


def _session_user() -> Any:
    s = _server().services
    sid = request.cookies.get(SESSION_COOKIE)
    data = s.store.get(f"session:{sid}") if sid else None
    if not data:
        return None
    user = s.users.get(int(data["user_pk"]))
    if user is None or user.disabled:
        return None
    s.store.put(f"session:{sid}", data, SESSION_IDLE)  # idle timeout slides
    return user


def _consent_page(txn: str, data: dict[str, Any], user: Any) -> Response:
    server = _server()
    if picker.needs_patient(data, user):
        return _picker_page(txn, data)
    client = server.services.clients.query(data["params"]["client_id"])
    allowed = parse_scopes(data["allowed"])
    scopes = [{"value": s, "text": describe(s), "required": s in REQUIRED_SCOPES} for s in allowed.raw]
    page = render_consent(client_name=(client.name or client.client_id) if client else "", txn=txn,
                          action=server.services.endpoint("consent"), scopes=scopes,
                          offline_notice=allowed.has("offline_access") and user.role == "patient")
    return _html(page)


def _login_page(txn: str, data: dict[str, Any], error: str | None = None, status: int = 200) -> Response:
    server = _server()
    client = server.services.clients.query(data["params"]["client_id"])
    return _html(render_login(client_name=(client.name or client.client_id) if client else "", txn=txn,
                              action=server.services.endpoint("login"), error=error, ask_otp=True), status)


def _throttle() -> ratelimit.Throttle:
    throttle: ratelimit.Throttle = current_app.extensions[ratelimit.EXT]
    return throttle


def _too_many_logins(txn: str, data: dict[str, Any] | None, wait: int) -> Response:
    """429 for the login form: the form again (when the request is still pending) with a wait message."""
    text = f"Too many sign-in attempts. Wait {wait} seconds, then try again."
    resp = _login_page(txn, data, text, 429) if data else _html(render_too_many(text), 429)
    resp.headers["Retry-After"] = str(wait)
    return resp


def _token_client_id() -> str:
    """The client a token request claims to be, for rate limiting only (unverified: authentication comes later)."""
    if request.authorization is not None and request.authorization.username:
        return request.authorization.username
    if request.form.get("client_id"):
        return request.form["client_id"]
    try:  # private_key_jwt: the assertion's issuer, read without verifying
        payload = request.form.get("client_assertion", "").split(".")[1]
        return str(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("iss", ""))
    except (IndexError, ValueError, AttributeError, orjson.JSONDecodeError):
        return ""


def _picker_page(txn: str, data: dict[str, Any], *, name: str = "", patients: list[Any] | None = None,
                 error: str | None = None) -> Response:
    s = _server().services
    client = s.clients.query(data["params"]["client_id"])
    return _html(picker.render_picker(client_name=(client.name or client.client_id) if client else "", txn=txn,
                                      action=s.endpoint("select-patient"), name=name, patients=patients or [],
                                      searched=patients is not None, error=error))


def make_blueprint() -> Blueprint:
    bp = Blueprint("telehub_auth", __name__)

    @bp.get("/.well-known/smart-configuration")
    def smart_config() -> Response:
        return _cors(_json(smart_configuration(_server())))

    @bp.get("/.well-known/openid-configuration")
    def openid_config() -> Response:
        return _cors(_json(openid_configuration(_server())))

    @bp.get(style.PATH)
    def smart_style() -> Response:
        return _cors(_json(style.STYLE, headers={"Cache-Control": "public, max-age=3600"}))

    @bp.get("/auth/jwks")
    def jwks() -> Response:
        return _cors(_json(_server().services.keys.jwks(), headers={"Cache-Control": "public, max-age=300"}))

    @bp.route("/auth/authorize", methods=["GET", "POST"])
    def authorize() -> Response:
        server = _server()
        s = server.services
        try:
            grant = server.get_consent_grant()
        except OAuth2Error as error:
            resp: Response = server.handle_error_response(None, error)
            return resp
        params = {k: request.values[k] for k in request.values}
        state = params.get("state")
        if params.get("aud", "").rstrip("/") != s.issuer:
            err = InvalidRequestError("'aud' must be this FHIR server's base URL", redirect_uri=grant.redirect_uri)
            err.state = state
            out: Response = server.handle_error_response(None, err)
            return out
        context: dict[str, Any] = {}
        if params.get("launch"):
            launched = Launches(s.store).take(params["launch"])
            if launched is None:
                err = InvalidRequestError("unknown or expired 'launch'", redirect_uri=grant.redirect_uri)
                err.state = state
                out = server.handle_error_response(None, err)
                return out
            context = launched
        txn = secrets.token_urlsafe(24)
        data = {"params": params, "context": context, "allowed": grant.request.scope or "", "uri": request.base_url}
        s.store.put(f"txn:{txn}", data, TXN_TTL)
        user = _session_user()
        return _consent_page(txn, data, user) if user else _login_page(txn, data)

    @bp.post("/auth/login")
    def login() -> Response:
        s = _server().services
        txn = request.form.get("txn", "")
        username = request.form.get("username", "")
        data = s.store.get(f"txn:{txn}")
        wait = _throttle().login(request.remote_addr or "", username)
        if wait:
            return _too_many_logins(txn, data, wait)
        if data is None:
            return _html("<p>This sign-in request has expired. Return to the app and start again.</p>", 400)
        result = sign_in(s.users, s.mfa, username, request.form.get("password", ""), request.form.get("otp", ""))
        user = result.user
        if user is None:
            return _login_page(txn, data, result.message, 401)
        sid = secrets.token_urlsafe(32)
        s.store.put(f"session:{sid}", {"user_pk": user.pk}, SESSION_IDLE)
        resp = _consent_page(txn, data, user)
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Lax", secure=request.is_secure,
                        max_age=SESSION_IDLE)
        return resp

    @bp.post("/auth/consent")
    def consent() -> Response:
        server = _server()
        s = server.services
        user = _session_user()
        txn = request.form.get("txn", "")
        data = s.store.take(f"txn:{txn}") if user else None
        if data is None or user is None:
            return _html("<p>This request has expired or you are signed out. Return to the app.</p>", 400)
        if request.form.get("decision") == "allow" and picker.needs_patient(data, user):
            s.store.put(f"txn:{txn}", data, TXN_TTL)  # no consent to launch/patient before a patient is chosen
            return _picker_page(txn, data)
        req = stored_request(data["uri"], data["params"])
        try:
            grant = server.get_consent_grant(req, end_user=user)
        except OAuth2Error as error:
            resp: Response = server.handle_error_response(req, error)
            return resp
        if request.form.get("decision") != "allow":
            out: Response = server.create_authorization_response(req, grant_user=None, grant=grant)
            return out
        allowed = parse_scopes(data["allowed"]).raw
        chosen = set(request.form.getlist("scope"))
        granted = [sc for sc in allowed if sc in REQUIRED_SCOPES or sc in chosen]
        context = dict(data["context"])
        scopes = parse_scopes(" ".join(granted))
        if scopes.has("launch/patient") and "patient" not in context and user.patient:
            context["patient"] = user.patient
        if user.role == "patient" and user.patient:
            context["patient"] = user.patient  # a patient only ever gets their own record
        if scopes.has("online_access") and not scopes.has("offline_access"):
            context[SESSION_KEY] = request.cookies.get(SESSION_COOKIE)  # the refresh token ends with the session
        req.granted_scope = " ".join(granted)
        req.smart_context = context
        out = server.create_authorization_response(req, grant_user=user, grant=grant)
        return out

    @bp.post("/auth/logout")
    def logout() -> Response:
        """End the sign-in session: ``online_access`` refresh tokens bound to it stop working."""
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            _server().services.store.delete(f"session:{sid}")
        resp = _html("<p>You are signed out.</p>")
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    @bp.route("/auth/select-patient", methods=["GET", "POST"])
    def select_patient() -> Response:
        """The provider's patient picker (standalone ``launch/patient``): search by name, then choose."""
        s = _server().services
        user = _session_user()
        txn = request.values.get("txn", "")
        data = s.store.get(f"txn:{txn}") if user else None
        if data is None or user is None:
            return _html("<p>This request has expired or you are signed out. Return to the app.</p>", 400)
        if request.method == "GET":
            name = request.args.get("name", "").strip()[:100]
            found = picker.find_patients(name, user, request.remote_addr, request.user_agent.string) if name else None
            return _picker_page(txn, data, name=name, patients=found)
        chosen = request.form.get("patient", "")
        if not chosen or not picker.may_choose(chosen, user):
            return _picker_page(txn, data, error="Choose a patient from the search results.")
        data["context"] = {**data.get("context", {}), "patient": chosen}
        s.store.put(f"txn:{txn}", data, TXN_TTL)
        return _consent_page(txn, data, user)

    @bp.post("/auth/token")
    def token() -> Response:
        wait = _throttle().token(request.remote_addr or "", _token_client_id())
        if wait:
            return _cors(_json({"error": "invalid_request", "error_description": "too many requests"}, 429,
                               {**NO_STORE, "Retry-After": str(wait)}))
        resp: Response = _server().create_token_response()
        resp.headers.update(NO_STORE)
        return _cors(resp)

    @bp.post("/auth/introspect")
    def introspect() -> Response:
        resp: Response = _server().create_endpoint_response("introspection")
        resp.headers.update(NO_STORE)
        return resp

    @bp.post("/auth/revoke")
    def revoke() -> Response:
        resp: Response = _server().create_endpoint_response("revocation")
        resp.headers.update(NO_STORE)
        return resp

    @bp.post("/auth/launch")
    def create_launch() -> Response:
        s = _server().services
        header = request.headers.get("Authorization", "")
        bearer = "Bearer realm=\"telehub\""
        if not header.lower().startswith("bearer "):
            return _json({"error": "invalid_token"}, 401, {"WWW-Authenticate": bearer})
        try:
            claims = s.tokens.verify(header[7:].strip())
        except InvalidTokenError:
            return _json({"error": "invalid_token"}, 401, {"WWW-Authenticate": bearer + ', error="invalid_token"'})
        if not claims.is_system or not claims.scopes.has("launch"):
            return _json({"error": "insufficient_scope", "error_description": "a system token with 'launch' is needed"},
                         403)
        try:
            context = validate_context(request.get_json(silent=True))
        except LaunchError as exc:
            return _json({"error": "invalid_request", "error_description": str(exc)}, 400)
        launch = Launches(s.store).create(context)
        return _json({"launch": launch, "expires_in": Launches(s.store).ttl}, 201, NO_STORE)

    return bp
