"""Cerner video-visit links ⇄ one canonical Appointment extension.

Cerner keeps them in ``Appointment.contained`` HealthcareService resources named by ``type.text``
("Patient Virtual Meeting Room" / "Provider Virtual Meeting Room") with ``telecom.system = url``, and
sets them by JSON Patch on ``/contained/{i}/telecom/0/value``. The docs and the GET example disagree
on the index, so resolve by ``type.text``, never by index (vendor-notes §3.4).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]
VIDEO_LINK = "https://telehub.example/fhir/StructureDefinition/video-visit-link"


def _contained_index(appointment: JSON, type_text: str, contained_type: str) -> int | None:
    for i, item in enumerate(appointment.get("contained") or []):
        if isinstance(item, dict) and item.get("resourceType") == contained_type and any(
                isinstance(t, dict) and t.get("text") == type_text for t in item.get("type") or []):
            return i
    return None


def video_links(appointment: JSON, roles: Mapping[str, str], contained_type: str = "HealthcareService",
                telecom_system: str = "url") -> dict[str, JSON]:
    """role → {"url", "period"?} found in the contained services."""
    found: dict[str, JSON] = {}
    for role, type_text in roles.items():
        index = _contained_index(appointment, type_text, contained_type)
        if index is None:
            continue
        for telecom in appointment["contained"][index].get("telecom") or []:
            if isinstance(telecom, dict) and telecom.get("system") == telecom_system and telecom.get("value"):
                link: JSON = {"url": telecom["value"]}
                if isinstance(telecom.get("period"), dict):
                    link["period"] = telecom["period"]
                found[role] = link
                break
    return found


def add_video_extension(appointment: JSON, roles: Mapping[str, str], contained_type: str = "HealthcareService",
                        telecom_system: str = "url") -> JSON:
    """A copy with one canonical extension per link (role, url, period); ``contained`` is kept as is."""
    links = video_links(appointment, roles, contained_type, telecom_system)
    if not links:
        return dict(appointment)
    kept = [e for e in appointment.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == VIDEO_LINK)]
    for role in sorted(links):
        parts: list[JSON] = [{"url": "role", "valueCode": role}, {"url": "address", "valueUrl": links[role]["url"]}]
        if "period" in links[role]:
            parts.append({"url": "period", "valuePeriod": links[role]["period"]})
        kept.append({"url": VIDEO_LINK, "extension": parts})
    return {**appointment, "extension": kept}


def canonical_links(appointment: JSON) -> dict[str, JSON]:
    """role → {"url", "period"?} from the canonical extension."""
    out: dict[str, JSON] = {}
    for ext in appointment.get("extension") or []:
        if not (isinstance(ext, dict) and ext.get("url") == VIDEO_LINK):
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or [] if isinstance(p, dict)}
        role = (parts.get("role") or {}).get("valueCode")
        address = (parts.get("address") or {}).get("valueUrl")
        if isinstance(role, str) and isinstance(address, str):
            link: JSON = {"url": address}
            if "period" in parts:
                link["period"] = parts["period"].get("valuePeriod")
            out[role] = link
    return out


def video_link_patch(vendor_appointment: JSON, links: Mapping[str, JSON], roles: Mapping[str, str],
                     contained_type: str = "HealthcareService") -> list[JSON]:
    """Back-mapping: the JSON Patch that sets ``links`` on the vendor's Appointment, indexes found by type.text.

    Raises ``KeyError`` naming the role when the vendor's Appointment has no such contained service.
    """
    ops: list[JSON] = []
    for role in sorted(links):
        index = _contained_index(vendor_appointment, roles[role], contained_type)
        if index is None:
            raise KeyError(f"the Appointment has no contained {contained_type} for the {role} video link")
        base = f"/contained/{index}/telecom/0"
        ops.append({"op": "add", "path": f"{base}/value", "value": links[role]["url"]})
        period = links[role].get("period")
        if isinstance(period, dict):
            for key in ("start", "end"):
                if key in period:
                    ops.append({"op": "add", "path": f"{base}/period/{key}", "value": period[key]})
    return ops
