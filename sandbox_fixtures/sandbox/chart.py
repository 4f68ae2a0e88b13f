"""What the sandbox EHR lists: practitioners, patients and encounters, read from the hub's FHIR API.

Pure helpers turn resources into picker options; :func:`load_chart` does the reading.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox_fixtures.sandbox.hub import Hub

PAGE = 100


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    detail: str = ""


@dataclass(frozen=True)
class Chart:
    practitioners: list[Option]
    patients: list[Option]
    encounters: dict[str, list[Option]] = field(default_factory=dict)  # by patient id


def human_name(resource: dict[str, Any]) -> str:
    """``Given Family`` from the first usable HumanName (Synthea adds digits to names; kept as they are)."""
    for name in resource.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("prefix", [])[:1], *name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')}"


def encounter_option(enc: dict[str, Any]) -> Option:
    period = enc.get("period") or {}
    when = str(period.get("start", ""))[:10]
    kinds = [c.get("display") or c.get("code") for t in enc.get("type") or [] for c in t.get("coding") or []]
    label = f"{when} {kinds[0] if kinds else (enc.get('class') or {}).get('code', 'encounter')}".strip()
    return Option(enc["id"], label, str(enc.get("status", "")))


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or []
            if (e.get("search") or {}).get("mode", "match") == "match" and "resource" in e]


def load_chart(hub: Hub) -> Chart:
    """Everything the launcher page offers (first page of each; the demo data is small)."""
    # sorted here: name search values are blind-indexed (HMAC) in the hub, so it cannot sort by them
    practitioners = sorted((Option(r["id"], human_name(r)) for r in _entries(
        hub.read_json("Practitioner", f"_count={PAGE}"))), key=lambda o: o.label)
    patients = sorted((Option(r["id"], human_name(r), f"born {r.get('birthDate', '?')}") for r in _entries(
        hub.read_json("Patient", f"_count={PAGE}"))), key=lambda o: o.label)
    encounters: dict[str, list[Option]] = {}
    for enc in _entries(hub.read_json("Encounter", f"_count={PAGE}&_sort=-date")):
        ref = str((enc.get("subject") or {}).get("reference", ""))
        if ref.startswith("Patient/"):
            encounters.setdefault(ref.split("/", 1)[1], []).append(encounter_option(enc))
    return Chart(practitioners, patients, encounters)
