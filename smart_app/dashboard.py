"""Today's visits and the waiting room for one practitioner: a pure core over FHIR search results,
plus the two hub searches that feed it.

One search serves the whole page: ``Appointment?practitioner=…&date=ge{00:00}&date=lt{24:00}`` in the
practitioner's time zone, ``_include=Appointment:patient`` for names and ``_revinclude=Encounter:appointment``
for "waiting since" (the Encounter's arrival; else the Appointment's ``meta.lastUpdated`` when it
became ``arrived``). Times are shown in that same zone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smart_app.fhir_client import HubClient

STATUS_LABELS = {"proposed": "Proposed", "pending": "Pending", "booked": "Booked", "arrived": "Waiting",
                 "fulfilled": "Done", "cancelled": "Cancelled", "noshow": "No-show", "entered-in-error": "Error",
                 "checked-in": "Checked in", "waitlist": "Wait list"}


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def human_name(resource: dict[str, Any] | None) -> str:
    names = (resource or {}).get("name") or []
    if not names:
        return ""
    best = next((n for n in names if n.get("use") == "official"), names[0])
    if best.get("text"):
        return str(best["text"])
    parts = [*best.get("prefix", []), *best.get("given", []), best.get("family", "")]
    return " ".join(p for p in parts if p).strip()


def parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[str, str]:
    """[start, end) of ``day`` in ``tz``, as FHIR instants (DST days are 23 or 25 hours long)."""
    start = datetime.combine(day, time.min, tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tz)
    return start.isoformat(), end.isoformat()


@dataclass(frozen=True)
class Visit:
    id: str
    start: datetime | None
    end: datetime | None
    local_start: str
    local_end: str
    patient_id: str | None
    patient_name: str
    reason: str
    status: str
    status_label: str
    kind: str


@dataclass(frozen=True)
class Waiting:
    visit: Visit
    since: datetime | None
    local_since: str
    minutes: int | None


@dataclass(frozen=True)
class Dashboard:
    day: date
    tz: str
    visits: list[Visit]
    queue: list[Waiting]


def _text(concepts: list[dict[str, Any]] | None) -> str:
    for concept in concepts or []:
        if concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding", []):
            if coding.get("display"):
                return str(coding["display"])
    return ""


def _patient_ref(appointment: dict[str, Any]) -> str | None:
    for p in appointment.get("participant", []):
        ref = str((p.get("actor") or {}).get("reference", ""))
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def visit_of(appointment: dict[str, Any], patients: dict[str, dict[str, Any]], tz: ZoneInfo) -> Visit:
    start, end = parse_instant(appointment.get("start")), parse_instant(appointment.get("end"))
    pid = _patient_ref(appointment)
    display = next((str((p.get("actor") or {}).get("display", "")) for p in appointment.get("participant", [])
                    if str((p.get("actor") or {}).get("reference", "")).startswith("Patient/")), "")
    status = str(appointment.get("status", ""))
    return Visit(
        id=str(appointment.get("id")), start=start, end=end,
        local_start=start.astimezone(tz).strftime("%H:%M") if start else "—",
        local_end=end.astimezone(tz).strftime("%H:%M") if end else "",
        patient_id=pid, patient_name=human_name(patients.get(pid or "")) or display or "Unknown patient",
        reason=_text(appointment.get("reasonCode")) or str(appointment.get("description", "")) or "—",
        status=status, status_label=STATUS_LABELS.get(status, status.title()),
        kind=_text(appointment.get("serviceType")) or _text([appointment.get("appointmentType") or {}]) or "Visit")


def _arrival(encounter: dict[str, Any]) -> datetime | None:
    for item in encounter.get("statusHistory", []):
        if item.get("status") == "arrived":
            return parse_instant((item.get("period") or {}).get("start"))
    return parse_instant((encounter.get("period") or {}).get("start"))


def build(appointments: list[dict[str, Any]], included: list[dict[str, Any]], *, tz: ZoneInfo, now: datetime,
          day: date) -> Dashboard:
    """The dashboard from the search results (pure: unit-tested without a server)."""
    patients = {str(r["id"]): r for r in included if r.get("resourceType") == "Patient"}
    arrivals: dict[str, datetime] = {}
    for enc in included:
        if enc.get("resourceType") != "Encounter":
            continue
        when = _arrival(enc)
        for ref in enc.get("appointment", []):
            aid = str(ref.get("reference", "")).rpartition("/")[2]
            if when and aid:
                arrivals[aid] = min(when, arrivals.get(aid, when))
    visits = sorted((visit_of(a, patients, tz) for a in appointments),
                    key=lambda v: (v.start or datetime.max.replace(tzinfo=UTC), v.id))
    by_id = {a.get("id"): a for a in appointments}
    queue = []
    for v in visits:
        if v.status != "arrived":
            continue
        since = arrivals.get(v.id) or parse_instant(((by_id.get(v.id) or {}).get("meta") or {}).get("lastUpdated"))
        minutes = max(0, int((now - since).total_seconds() // 60)) if since else None
        queue.append(Waiting(v, since, since.astimezone(tz).strftime("%H:%M") if since else "—", minutes))
    queue.sort(key=lambda w: w.since or now)
    return Dashboard(day=day, tz=str(tz), visits=visits, queue=queue)


def load(hub: HubClient, practitioner: str, *, tz: ZoneInfo, now: datetime | None = None) -> Dashboard:
    """Today's dashboard for ``practitioner`` (one hub search, every page)."""
    now = now or datetime.now(UTC)
    day = now.astimezone(tz).date()
    start, end = day_bounds(day, tz)
    found = hub.search_with_includes("Appointment", [
        ("practitioner", practitioner), ("date", f"ge{start}"), ("date", f"lt{end}"),
        ("_include", "Appointment:patient"), ("_revinclude", "Encounter:appointment"), ("_count", "100")])
    return build(found.matches, found.included, tz=tz, now=now, day=day)


def load_visit(hub: HubClient, practitioner: str, visit_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(Appointment, Patient) when the visit is one of the practitioner's; None otherwise."""
    found = hub.search_with_includes("Appointment", [("_id", visit_id), ("_include", "Appointment:patient")])
    if not found.matches:
        return None
    appointment = found.matches[0]
    mine = any(str((p.get("actor") or {}).get("reference", "")) == f"Practitioner/{practitioner}"
               for p in appointment.get("participant", []))
    if not mine:
        return None
    patient = next((r for r in found.included if r.get("resourceType") == "Patient"), {})
    return appointment, patient
