"""Where the patient is: the state whose licence rules apply to a visit.

The practice of medicine occurs where the patient is at the time of the encounter (IMLC text,
clinical-notes §4), so a location the patient attests at booking or check-in wins over the
registration address; otherwise the current home address on the Patient resource is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from smart_app.scheduling.errors import InvalidInput

USPS_STATES = frozenset({
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
    "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
    "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
    "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
})

Source = Literal["attested", "address"]


@dataclass(frozen=True)
class PatientLocation:
    state: str
    source: Source


def normalise_state(value: str, names: dict[str, str] | None = None) -> str | None:
    """USPS code for a code or a full jurisdiction name (``"New York"`` → ``NY``); None if unknown."""
    text = value.strip()
    if text.upper() in USPS_STATES:
        return text.upper()
    for code, name in (names or {}).items():
        if name.lower() == text.lower():
            return code
    return None


def address_state(patient: dict[str, Any], on: date, names: dict[str, str] | None = None) -> str | None:
    """The state of the patient's current address (home first), valid on ``on``."""
    candidates = []
    for addr in patient.get("address", []) or []:
        if addr.get("use") == "old" or not addr.get("state"):
            continue
        period = addr.get("period") or {}
        if period.get("start") and date.fromisoformat(period["start"][:10]) > on:
            continue
        if period.get("end") and date.fromisoformat(period["end"][:10]) < on:
            continue
        rank = {"home": 0, None: 1, "temp": 2}.get(addr.get("use"), 3)
        candidates.append((rank, addr["state"]))
    for _, state in sorted(candidates, key=lambda c: c[0]):
        code = normalise_state(state, names)
        if code:
            return code
    return None


def patient_location(patient: dict[str, Any], on: date, attested: str | None = None,
                     names: dict[str, str] | None = None) -> PatientLocation | None:
    """The attested state if given (validated), else the address state; None when neither is known."""
    if attested:
        code = normalise_state(attested, names)
        if code is None:
            raise InvalidInput(f"unknown state {attested!r}: use a two-letter USPS code", "attested_state")
        return PatientLocation(code, "attested")
    state = address_state(patient, on, names)
    return PatientLocation(state, "address") if state else None
