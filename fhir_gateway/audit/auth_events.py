"""Auditing the authorization server: logins, consent decisions, token issue/refresh/revoke,
introspection and EHR launches each write an AuditEvent (never the tokens, codes or passwords)."""
from __future__ import annotations

import logging

from flask import Flask, Response, request

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput
from fhir_gateway.audit.trail import AuditTrail
from fhir_gateway.storage.repository import Repository

log = logging.getLogger("telehub.audit")

# blueprint endpoint -> (audit interaction, PHI-free description)
AUDITED = {
    "telehub_auth.login": ("login", "user login"),
    "telehub_auth.consent": ("login", "authorization consent decision"),
    "telehub_auth.token": ("token", "token request"),
    "telehub_auth.revoke": ("token", "token revocation"),
    "telehub_auth.introspect": ("token", "token introspection"),
    "telehub_auth.create_launch": ("token", "EHR launch context created"),
    "telehub_auth.select_patient": ("login", "standalone launch patient chosen"),
    "telehub_auth.logout": ("login", "user logout"),
    "telehub_registration.register": ("token", "dynamic client registration"),
    "telehub_registration.manage": ("token", "client registration read or removed"),
}
AUDITED_METHODS = frozenset({"POST", "DELETE"})
SECURITY_STATUSES = frozenset({400, 401, 403, 429})  # refused: a Security Alert in the trail


def _client_id() -> str | None:
    if request.authorization is not None and request.authorization.username:
        return request.authorization.username[:255]
    value = request.form.get("client_id") if request.method == "POST" else request.args.get("client_id")
    return value[:255] if value else None


def init_app(app: Flask, trail: AuditTrail, repository: Repository) -> None:
    def _audit_auth(response: Response) -> Response:
        if request.method not in AUDITED_METHODS:
            return response
        what = AUDITED.get(request.endpoint or "")
        if what is None:
            return response
        interaction, description = what
        ctx = RequestContext(client_id=_client_id(), user=request.form.get("username") or None,
                             ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))
        data = AuditInput(interaction, response.status_code, ctx,
                          description=f"{description}: {request.form.get('grant_type') or 'n/a'}"[:120],
                          security=response.status_code in SECURITY_STATUSES)
        try:
            with repository.transaction(write=True) as conn:
                trail.append(conn, data)
        except Exception:  # the response stands; the missing entry is logged loudly
            log.exception("could not audit an authorization-server request")
        return response

    # registered for the authorization server's blueprints only (Flask runs them for those blueprints'
    # requests), not as an app-wide hook that every FHIR request would pass through
    for blueprint in sorted({endpoint.split(".", 1)[0] for endpoint in AUDITED}):
        app.after_request_funcs.setdefault(blueprint, []).append(_audit_auth)
