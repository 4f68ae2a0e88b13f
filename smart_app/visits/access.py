"""Who may act on a visit: the app's session actor, or a patient holding the visit's join-link cookies.

The link token and the device secret live in HttpOnly, SameSite=Strict cookies scoped to the
blueprint's path; each request re-checks them against the hashes in the hub, so every worker agrees
and nothing is kept in the Flask session.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from smart_app.visits import join_links
from smart_app.visits.errors import LinkRefused
from smart_app.visits.machine import Visit
from smart_app.visits.ports import Actor, ActorSource, FhirPort

LINK_COOKIE = "tv_link"
DEVICE_COOKIE = "tv_device"


def normalise(found: Any) -> Actor | None:
    """Accept this package's Actor or any object with ``role``/``patient_id``/``practitioner_id``."""
    if found is None:
        return None
    role = getattr(found, "role", None)
    if role not in ("patient", "provider"):
        return None  # front desk and others do not take part in the visit
    return Actor(role, getattr(found, "patient_id", None), getattr(found, "practitioner_id", None))


def from_link(hub: FhirPort, now: datetime) -> tuple[Actor, str] | None:
    """The patient of the visit whose join link (and bound device) this browser holds."""
    token = request.cookies.get(LINK_COOKIE)
    if not token:
        return None
    try:
        found = join_links.redeem(hub, token, request.cookies.get(DEVICE_COOKIE), now=now, bind=False)
    except LinkRefused:
        return None
    patient = next((p["actor"]["reference"].split("/", 1)[1] for p in found.appointment.get("participant", [])
                    if p.get("actor", {}).get("reference", "").startswith("Patient/")), None)
    return (Actor("patient", patient_id=patient), str(found.appointment["id"])) if patient else None


def allowed(actor: Actor, visit: Visit) -> bool:
    if actor.role == "patient":
        return bool(actor.patient_id) and actor.patient_id == visit.participant("Patient")
    if actor.role == "provider":
        assigned = visit.participant("Practitioner")
        return actor.practitioner_id is None or assigned is None or actor.practitioner_id == assigned
    return False


def resolve(hub: FhirPort, source: ActorSource | None, visit: Visit, now: datetime) -> Actor | None:
    """The actor for this request on ``visit``, or None (the caller answers 403)."""
    session_actor = normalise(source()) if source else None
    if session_actor and allowed(session_actor, visit):
        return session_actor
    linked = from_link(hub, now)
    if linked and linked[1] == visit.id and allowed(linked[0], visit):
        return linked[0]
    return None
