"""Multi-state licensure: licences as ``Practitioner.qualification`` and the may-practise decision.

A licence is one qualification entry (clinical-notes §4):

- ``identifier``: licence number, with the US Core ``us-core-jurisdiction`` extension (USPS state);
- ``code``: the degree (v2 table 0360, e.g. MD, RN, PhD) plus a Telehub ``licence-kind`` coding:
  ``state-licence`` | ``nlc-multistate`` | ``psypact-apit``;
- ``period``: validity; ``issuer.display``: the board;
- the Da Vinci Plan-Net ``practitioner-qualification`` extension: ``status`` (active, inactive,
  suspended, revoked…) and ``whereValid`` (USPS state).

The rule: a provider may see a patient only if, on the visit date, they hold an active licence
valid in the state where the patient is — directly, or through a compact whose rules say so
(:mod:`smart_app.scheduling.compacts`). Pure functions; the reason strings name states and
dates only, never the patient.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from smart_app.scheduling.codes import (
    DEGREE_SYSTEM,
    LICENCE_KIND_SYSTEM,
    LICENCE_NUMBER_SYSTEM,
    PLANNET_QUALIFICATION,
    US_CORE_JURISDICTION,
    USPS_SYSTEM,
)
from smart_app.scheduling.compacts import CompactRules

STATE_LICENCE = "state-licence"
LICENCE_KINDS = (STATE_LICENCE, "nlc-multistate", "psypact-apit")


@dataclass(frozen=True)
class Licence:
    state: str  # USPS code where it was issued / is valid
    number: str
    kind: str = STATE_LICENCE
    status: str = "active"
    start: date | None = None
    end: date | None = None
    degree: str | None = None
    issuer: str | None = None

    def active_on(self, day: date) -> bool:
        return (self.status == "active" and (self.start is None or self.start <= day)
                and (self.end is None or day <= self.end))

    def to_qualification(self) -> dict[str, Any]:
        codings = [{"system": LICENCE_KIND_SYSTEM, "code": self.kind}]
        if self.degree:
            codings.insert(0, {"system": DEGREE_SYSTEM, "code": self.degree})
        where = {"coding": [{"system": USPS_SYSTEM, "code": self.state}]}
        out: dict[str, Any] = {
            "extension": [{"url": PLANNET_QUALIFICATION, "extension": [
                {"url": "status", "valueCode": self.status}, {"url": "whereValid", "valueCodeableConcept": where}]}],
            "identifier": [{"system": f"{LICENCE_NUMBER_SYSTEM}/{self.state}", "value": self.number,
                            "extension": [{"url": US_CORE_JURISDICTION, "valueCodeableConcept": where}]}],
            "code": {"coding": codings, "text": f"{self.degree or ''} {self.kind} {self.state}".strip()},
        }
        period = {k: v.isoformat() for k, v in (("start", self.start), ("end", self.end)) if v}
        if period:
            out["period"] = period
        if self.issuer:
            out["issuer"] = {"display": self.issuer}
        return out


def licences_of(practitioner: dict[str, Any]) -> list[Licence]:
    """Every qualification that names a state; others (board certifications…) are skipped."""
    out = []
    for q in practitioner.get("qualification", []) or []:
        lic = _parse(q)
        if lic is not None:
            out.append(lic)
    return out


def _parse(q: dict[str, Any]) -> Licence | None:
    status, state = "active", None
    for ext in q.get("extension", []) or []:
        if ext.get("url") != PLANNET_QUALIFICATION:
            continue
        for sub in ext.get("extension", []) or []:
            if sub.get("url") == "status":
                status = str(sub.get("valueCode", "active"))
            elif sub.get("url") == "whereValid":
                state = state or _usps(sub.get("valueCodeableConcept"))
    number = ""
    for ident in q.get("identifier", []) or []:
        number = number or str(ident.get("value", ""))
        for ext in ident.get("extension", []) or []:
            if ext.get("url") == US_CORE_JURISDICTION:
                state = state or _usps(ext.get("valueCodeableConcept"))
    if not state:
        return None
    codings = (q.get("code") or {}).get("coding", []) or []
    kind = next((c["code"] for c in codings if c.get("system") == LICENCE_KIND_SYSTEM), STATE_LICENCE)
    degree = next((c["code"] for c in codings if c.get("system", "").startswith(DEGREE_SYSTEM)), None)
    period = q.get("period") or {}
    return Licence(state, number, kind, status, _day(period.get("start")), _day(period.get("end")), degree,
                   (q.get("issuer") or {}).get("display"))


def _usps(concept: Any) -> str | None:
    for c in (concept or {}).get("coding", []) or []:
        if c.get("system") == USPS_SYSTEM and c.get("code"):
            return str(c["code"]).upper()
    return None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


@dataclass(frozen=True)
class Decision:
    """Whether a provider may see a patient located in ``state`` on ``day``, and why (for the user)."""

    allowed: bool
    state: str
    day: date
    reason: str
    basis: Licence | None = None
    compact: str | None = None


def may_practise(licences: Iterable[Licence], state: str, day: date, rules: CompactRules) -> Decision:
    lics = list(licences)
    for lic in lics:
        if lic.kind == STATE_LICENCE and lic.state == state and lic.active_on(day):
            return Decision(True, state, day, f"holds an active {state} licence", lic)
    for lic in lics:
        compact = rules.by_licence_kind(lic.kind)
        if compact is None or not lic.active_on(day) or state not in compact.honouring:
            continue
        if compact.kind == "multistate-licence" and lic.state in compact.issuing:
            return Decision(True, state, day, f"{compact.name} multistate licence (home state {lic.state}) is "
                                              f"honoured in {state}", lic, compact.key)
        if compact.kind == "practice-authority":
            home = [h for h in lics if h.kind == STATE_LICENCE and h.state in compact.issuing and h.active_on(day)]
            if home:
                return Decision(True, state, day, f"{compact.name} authority with an active {home[0].state} "
                                                  f"licence covers {state}", lic, compact.key)
    return Decision(False, state, day, _refusal(lics, state, day, rules))


def _refusal(lics: list[Licence], state: str, day: date, rules: CompactRules) -> str:
    base = f"This provider is not licensed to see patients located in {state} on {day.isoformat()}"
    here = [lic for lic in lics if lic.kind == STATE_LICENCE and lic.state == state]
    if here:
        lic = here[0]
        if lic.status != "active":
            base += f": their {state} licence is {lic.status}"
        elif lic.end and lic.end < day:
            base += f": their {state} licence expired on {lic.end.isoformat()}"
        elif lic.start and lic.start > day:
            base += f": their {state} licence starts on {lic.start.isoformat()}"
    held = sorted({lic.state for lic in lics if lic.active_on(day)})
    if held and not here:
        base += f" (active licences: {', '.join(held)})"
    pathways = [c for c in rules.of_kind("expedited-pathway") if state in c.honouring]
    note = "".join(f". {c.name} membership only speeds up getting a {state} licence; it does not replace one"
                   for c in pathways if any(lic.state in c.issuing for lic in lics))
    return base + note + "."
