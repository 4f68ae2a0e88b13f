"""From a finished interaction to an AuditInput: the one place the request pipeline audits.

Success is recorded in the request's own transaction (so a change and its audit
entry commit or roll back together). A failure — a denied request, a bad
request, a tampered row — is recorded after the rollback, in a transaction of
its own, because the request's transaction is gone.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput, entities_from_response, patients_in
from fhir_gateway.audit.trail import AuditTrail
from fhir_gateway.rest.messages import FhirRequest, FhirResponse

log = logging.getLogger("telehub.audit")

NOT_AUDITED = frozenset({"capabilities", "operation:$capabilities"})
SEARCHES = frozenset({"search-type", "search-system"})


def audit_input(interaction: str | None, rtype: str | None, fid: str | None, req: FhirRequest,
                ctx: RequestContext, status: int, response: FhirResponse | None,
                payload: bytes | None = None) -> AuditInput | None:
    """``payload``: the response body already serialised as compact JSON, if it is (cheaper to scan)."""
    interaction = interaction or "unknown"
    if interaction in NOT_AUDITED:
        return None
    data = AuditInput(interaction=interaction, status=status, ctx=ctx, resource_type=rtype)
    if interaction.startswith("operation:"):
        data.interaction, data.operation = "operation", interaction.split(":", 1)[1]
    if response is not None and response.body is not None and status < 400:
        refs, patients = entities_from_response(response.body, payload=payload)
        data.entities, data.patients = refs, patients
    elif rtype and fid:
        data.entities = [f"{rtype}/{fid}"]
    if rtype == "Patient" and fid:
        data.patients.add(fid)
    if req.body is not None and status < 400 and req.method in ("POST", "PUT", "PATCH"):
        patients_in(req.body, data.patients)
    if interaction in SEARCHES or req.params:
        query = urlencode(sorted(req.params))
        if query:
            data.query = f"{rtype or ''}?{query}"
    return data


def record(trail: AuditTrail, conn: object, data: AuditInput | None) -> None:
    if data is not None:
        trail.append(conn, data)  # type: ignore[arg-type]
