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
}


def _client_id() -> str | None:
    if request.authorization is not None and request.authorization.username:
        return request.authorization.username[:255]
    value = request.form.get("client_id") if request.method == "POST" else request.args.get("client_id")
    return value[:255] if value else None


def init_app(app: Flask, trail: AuditTrail, repository: Repository) -> None:
    @app.after_request
    def _audit_auth(response: Response) -> Response:
        what = AUDITED.get(request.endpoint or "")
        if what is None or request.method != "POST":
            return response
        interaction, description = what
        ctx = RequestContext(client_id=_client_id(), user=request.form.get("username") or None,
                             ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))
        data = AuditInput(interaction, response.status_code, ctx,
                          description=f"{description}: {request.form.get('grant_type') or 'n/a'}"[:120],
                          security=response.status_code in (400, 401, 403))
        try:
            with repository.transaction(write=True) as conn:
                trail.append(conn, data)
        except Exception:  # the response stands; the missing entry is logged loudly
            log.exception("could not audit an authorization-server request")
        return response
