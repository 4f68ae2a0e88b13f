"""A provider's Schedule and its generated Slots, kept in step with the availability rules.

``save_availability`` stores the rules on the provider's Schedule and regenerates; ``regenerate``
is idempotent (run it daily to roll the horizon forward). It only ever creates or deletes
*generated* slots that are not booked: a ``busy`` slot is never touched, a new slot that would
overlap a booked one is created ``busy-unavailable``, and every delete carries ``If-Match`` so a
slot booked meanwhile makes the transaction fail (and regeneration retries) instead of losing it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from smart_app.scheduling.availability import Availability
from smart_app.scheduling.codes import AVAILABILITY_EXT, MODALITY_DISPLAY, MODALITY_SYSTEM
from smart_app.scheduling.errors import NotFound
from smart_app.scheduling.ports import FhirPort, Resource, etag, http_status, update_versioned
from smart_app.scheduling.slotgen import generate, horizon
from smart_app.scheduling.slots import (
    BUSY,
    FREE,
    UNAVAILABLE,
    fhir_instant,
    is_generated,
    key_of,
    overlaps,
    slot_resource,
)

log = logging.getLogger("telehub.scheduling")
CHUNK = 200  # entries per transaction Bundle


@dataclass(frozen=True)
class RegenReport:
    created: int
    removed: int
    kept: int
    booked: int


def find_schedule(hub: FhirPort, practitioner_id: str) -> Resource | None:
    found = hub.search("Schedule", {"actor": f"Practitioner/{practitioner_id}", "_count": "10"})
    return found[0] if found else None


def rules_of(schedule: Resource) -> Availability | None:
    for ext in schedule.get("extension", []) or []:
        if ext.get("url") == AVAILABILITY_EXT and ext.get("valueString"):
            return Availability.from_json(ext["valueString"])
    return None


def practitioner_id_of(schedule: Resource) -> str:
    for actor in schedule.get("actor", []) or []:
        reference = str(actor.get("reference", ""))
        if reference.startswith("Practitioner/"):
            return reference.split("/", 1)[1]
    raise NotFound(f"Schedule/{schedule.get('id')} has no Practitioner actor")


def _schedule_body(practitioner_id: str, rules: Availability, now: datetime, base: Resource | None) -> Resource:
    body: Resource = dict(base or {"resourceType": "Schedule"})
    body["active"] = True
    body["actor"] = [{"reference": f"Practitioner/{practitioner_id}"}]
    modalities = sorted({v.modality for v in rules.visit_types})
    body["serviceType"] = [{"coding": [{"system": MODALITY_SYSTEM, "code": m, "display": MODALITY_DISPLAY[m]}]}
                           for m in modalities]
    start, end = horizon(rules, now)
    body["planningHorizon"] = {"start": fhir_instant(start), "end": fhir_instant(end)}
    others = [e for e in body.get("extension", []) or [] if e.get("url") != AVAILABILITY_EXT]
    body["extension"] = [*others, {"url": AVAILABILITY_EXT, "valueString": rules.to_json()}]
    return body


def save_availability(hub: FhirPort, practitioner_id: str, rules: Availability,
                      now: datetime) -> tuple[Resource, RegenReport]:
    """Store the rules on the provider's Schedule (creating it) and bring the slots in step."""
    hub.get(f"Practitioner/{practitioner_id}")  # 404 early for an unknown provider
    existing = find_schedule(hub, practitioner_id)
    body = _schedule_body(practitioner_id, rules, now, existing)
    schedule = update_versioned(hub, body, existing) if existing else hub.create(body)
    return schedule, regenerate(hub, schedule, now)


def schedule_slots(hub: FhirPort, schedule_id: str, since: datetime, until: datetime | None = None,
                   status: str | None = None) -> list[Resource]:
    params = [("schedule", f"Schedule/{schedule_id}"), ("_count", "500"), ("_sort", "start"),
              ("start", f"ge{fhir_instant(since)}")]
    if until:
        params.append(("start", f"lt{fhir_instant(until)}"))
    if status:
        params.append(("status", status))
    return hub.search("Slot", params)


def regenerate(hub: FhirPort, schedule: Resource, now: datetime, attempts: int = 3) -> RegenReport:
    """Create missing future slots, delete unbooked ones the rules no longer give; retry on a race."""
    rules = rules_of(schedule)
    if rules is None:
        return RegenReport(0, 0, 0, 0)
    for attempt in range(attempts):
        try:
            return _regenerate_once(hub, schedule["id"], rules, now)
        except Exception as exc:
            if http_status(exc) not in (409, 412) or attempt == attempts - 1:
                raise
            log.info("slot regeneration raced a booking on Schedule/%s; retrying", schedule["id"])
    raise AssertionError("unreachable")  # pragma: no cover


def _regenerate_once(hub: FhirPort, schedule_id: str, rules: Availability, now: datetime) -> RegenReport:
    start, end = horizon(rules, now)
    existing = schedule_slots(hub, schedule_id, start)
    desired = {spec.key: spec for spec in generate(rules, start, end)}
    booked = [s for s in existing if s.get("status") not in (FREE, UNAVAILABLE)]
    have = {key_of(s) for s in existing}
    entries: list[Resource] = []
    removed = 0
    for slot in existing:
        if is_generated(slot) and slot.get("status") in (FREE, UNAVAILABLE) and key_of(slot) not in desired:
            entries.append({"request": {"method": "DELETE", "url": f"Slot/{slot['id']}", "ifMatch": etag(slot)}})
            removed += 1
    created = 0
    for key, spec in desired.items():
        if key in have:
            continue
        candidate = slot_resource(schedule_id, spec)
        if any(overlaps(candidate, b, rules) for b in booked if b.get("status") == BUSY):
            candidate["status"] = UNAVAILABLE
        entries.append({"resource": candidate, "request": {"method": "POST", "url": "Slot"}})
        created += 1
    for i in range(0, len(entries), CHUNK):
        hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries[i:i + CHUNK]})
    return RegenReport(created, removed, len(existing) - removed, len(booked))


def regenerate_all(hub: FhirPort, now: datetime) -> dict[str, RegenReport]:
    """Roll every active schedule's horizon forward (run daily from the job runner)."""
    return {s["id"]: regenerate(hub, s, now) for s in hub.search("Schedule", {"active": "true", "_count": "200"})}
