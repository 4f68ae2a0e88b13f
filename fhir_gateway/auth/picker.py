# ruff: noqa: E501  (HTML template)
"""The patient picker of a provider's standalone launch (``launch/patient`` without an EHR context).

A patient user always gets their own record; a clinician who asks for ``launch/patient`` outside an
EHR chooses the patient here, between sign-in and consent. The search runs through the FHIR server's
own access decision as that user (role, compartment) and is audited like any search: names are PHI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, render_template_string

from fhir_gateway.access import RequestContext
from fhir_gateway.auth.pages import BASE
from fhir_gateway.auth.scopes import parse_scopes
from fhir_gateway.auth.users import User

MAX_RESULTS = 20
FHIR_EXT = "telehub.fhir"

PICKER = BASE.replace("{BODY}", """
<p>{{ client_name }} needs to know which patient's record to open.</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="get" action="{{ action }}" role="search"><input type="hidden" name="txn" value="{{ txn }}">
<label for="name">Patient name</label><input type="text" id="name" name="name" value="{{ name }}" autocomplete="off" required>
<button type="submit">Search</button></form>
{% if searched %}{% if patients %}<form method="post" action="{{ action }}"><input type="hidden" name="txn" value="{{ txn }}">
<fieldset><legend>Results</legend><ul>{% for p in patients %}<li><label><input type="radio" name="patient" value="{{ p.id }}" required{% if loop.first %} checked{% endif %}>
{{ p.name }}{% if p.birth_date %} (born {{ p.birth_date }}){% endif %}</label></li>{% endfor %}</ul></fieldset>
<button type="submit">Open this record</button></form>{% else %}<p role="status">No patient you may see matches that name.</p>{% endif %}{% endif %}""")


@dataclass(frozen=True)
class PatientChoice:
    id: str
    name: str
    birth_date: str | None


def needs_patient(data: dict[str, Any], user: User) -> bool:
    """A clinician's standalone launch asked for ``launch/patient`` and no patient is chosen yet."""
    return (FHIR_EXT in current_app.extensions and user.role != "patient"
            and parse_scopes(data.get("allowed")).has("launch/patient")
            and not data.get("context", {}).get("patient"))


def _context(user: User, ip: str | None, user_agent: str | None) -> RequestContext:
    return RequestContext(user=user.fhir_user or user.username, role=user.role, patient=user.patient, ip=ip,
                          user_agent=user_agent)


def _display(resource: dict[str, Any]) -> str:
    for name in resource.get("name") or []:
        text = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
        if text:
            return str(text)
    return f"Patient {resource.get('id')}"


def find_patients(name: str, user: User, ip: str | None, user_agent: str | None) -> list[PatientChoice]:
    """Patients this user may see whose name starts with ``name`` (audited as a Patient search)."""
    from fhir_gateway.audit.events import AuditInput

    services = current_app.extensions[FHIR_EXT]
    ctx = _context(user, ip, user_agent)
    services.access.check(ctx, "search-type", "Patient")
    request = services.search.parse("Patient", [("name", name), ("_count", str(MAX_RESULTS))])
    from fhir_gateway.storage.tables import resource as resource_table

    scope = services.access.scope(ctx, resource_table.c.rtype, resource_table.c.pk, resource_table.c.fid)
    with services.repository.transaction() as conn:
        result = services.search.execute(conn, request, scope)
    found = [s.resource for s in result.matches if s.resource and services.access.can_see(ctx, s.resource)]
    if services.audit is not None:
        data = AuditInput("search-type", 200, ctx, resource_type="Patient",
                          entities=[f"Patient/{r['id']}" for r in found], patients={str(r["id"]) for r in found},
                          query="Patient?name=" + name, description="standalone launch patient picker")
        with services.repository.transaction(write=True) as conn:
            services.audit.append(conn, data)
    return [PatientChoice(str(r["id"]), _display(r), r.get("birthDate")) for r in found]


def may_choose(patient_id: str, user: User) -> bool:
    """Whether the user may open this patient's record (it exists and the access decision allows it)."""
    services = current_app.extensions[FHIR_EXT]
    ctx = _context(user, None, None)
    with services.repository.transaction() as conn:
        stored = services.repository.read(conn, "Patient", patient_id)
    return bool(stored and not stored.deleted and stored.resource and services.access.can_see(ctx, stored.resource))


def render_picker(**ctx: Any) -> str:
    return render_template_string(PICKER, title="Choose a patient", **ctx)
