"""FHIR Slot shapes and the overlap rule, shared by regeneration and booking (pure)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smart_app.scheduling.availability import Availability
from smart_app.scheduling.codes import (
    APPOINTMENT_TYPE_SYSTEM,
    GENERATED_TAG,
    GENERATED_TAG_SYSTEM,
    MODALITY_DISPLAY,
    MODALITY_SYSTEM,
    VISIT_TYPE_SYSTEM,
)
from smart_app.scheduling.ports import Resource
from smart_app.scheduling.slotgen import SlotSpec, slot_key

# Slot.status (R4 slotstatus): what each means here.
FREE, BUSY, UNAVAILABLE = "free", "busy", "busy-unavailable"  # busy = booked; unavailable = blocked by a booking


def instant(value: str) -> datetime:
    """Parse a FHIR instant (``Z`` or offset) to an aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def fhir_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_resource(schedule_id: str, spec: SlotSpec, status: str = FREE) -> Resource:
    vt = spec.visit_type
    return {
        "resourceType": "Slot",
        "meta": {"tag": [dict(GENERATED_TAG)]},
        "schedule": {"reference": f"Schedule/{schedule_id}"},
        "status": status,
        "start": fhir_instant(spec.start),
        "end": fhir_instant(spec.end),
        "serviceType": [{"coding": [{"system": MODALITY_SYSTEM, "code": vt.modality,
                                     "display": MODALITY_DISPLAY[vt.modality]}]}],
        "appointmentType": {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": vt.code, "display": vt.display},
                                       {"system": APPOINTMENT_TYPE_SYSTEM, "code": "ROUTINE"}],
                            "text": vt.display},
    }


def is_generated(slot: Resource) -> bool:
    tags = (slot.get("meta") or {}).get("tag", []) or []
    return any(t.get("system") == GENERATED_TAG_SYSTEM and t.get("code") == GENERATED_TAG["code"] for t in tags)


def visit_type_code(res: Resource) -> str:
    for c in (res.get("appointmentType") or {}).get("coding", []) or []:
        if c.get("system") == VISIT_TYPE_SYSTEM:
            return str(c.get("code"))
    return ""


def modality(res: Resource) -> str:
    for st in res.get("serviceType", []) or []:
        for c in st.get("coding", []) or []:
            if c.get("system") == MODALITY_SYSTEM:
                return str(c.get("code"))
    return ""


def key_of(slot: Resource) -> tuple[str, str]:
    return slot_key(visit_type_code(slot), instant(slot["start"]))


def occupied(slot: Resource, rules: Availability | None) -> tuple[datetime, datetime]:
    before = timedelta(minutes=rules.buffer_before if rules else 0)
    after = timedelta(minutes=rules.buffer_after if rules else 0)
    return instant(slot["start"]) - before, instant(slot["end"]) + after


def overlaps(a: Resource, b: Resource, rules: Availability | None) -> bool:
    """Two slots of one schedule cannot both be booked when their buffered intervals intersect."""
    a0, a1 = occupied(a, rules)
    b0, b1 = occupied(b, rules)
    return a0 < b1 and b0 < a1
