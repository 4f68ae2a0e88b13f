"""Demo providers licensed in different states, with schedules and open slots (for ``make run``, e2e tests).

Idempotent by NPI-like identifier: running it twice updates the same Practitioners. The demo
licence numbers and identifiers are fictitious.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from smart_app.scheduling.availability import Availability, VisitType, parse_hours
from smart_app.scheduling.licensure import Licence
from smart_app.scheduling.ports import FhirPort, Resource
from smart_app.scheduling.schedules import save_availability

DEMO_ID_SYSTEM = "https://telehub.example/fhir/sid/demo-provider"
VIDEO30 = VisitType("video-30", "Video visit", 30, "video")
PHONE15 = VisitType("phone-15", "Phone check-in", 15, "phone")
ASYNC = VisitType("async-20", "Async consult review", 20, "async")
HOURS = "mon 09:00-17:00\ntue 09:00-17:00\nwed 09:00-17:00\nthu 09:00-17:00\nfri 09:00-13:00"


@dataclass(frozen=True)
class DemoProvider:
    key: str
    given: str
    family: str
    degree: str
    timezone: str
    licences: tuple[Licence, ...]
    visit_types: tuple[VisitType, ...] = (VIDEO30, PHONE15)


def _lic(state: str, number: str, kind: str = "state-licence", degree: str = "MD") -> Licence:
    return Licence(state, number, kind, start=date(2022, 1, 1), end=date(2028, 12, 31), degree=degree)


DEMO_PROVIDERS: tuple[DemoProvider, ...] = (
    DemoProvider("ny-nj", "Amara", "Okafor", "MD", "America/New_York",
                 (_lic("NY", "NY-209311"), _lic("NJ", "25MA0884410"))),
    DemoProvider("ca", "Daniel", "Nguyen", "MD", "America/Los_Angeles", (_lic("CA", "A-178245"),)),
    DemoProvider("co-az", "Lena", "Fischer", "DO", "America/Denver",
                 (_lic("CO", "DR.0061230", degree="DO"), _lic("AZ", "DO-77120", degree="DO"))),
    DemoProvider("tx-nlc", "Marcus", "Bell", "RN", "America/Chicago",
                 (_lic("TX", "RN-884213", "nlc-multistate", degree="RN"),), (PHONE15, ASYNC)),
    DemoProvider("pa-psypact", "Priya", "Raman", "PhD", "America/New_York",
                 (_lic("PA", "PS-019922", degree="PhD"), _lic("PA", "APIT-8842", "psypact-apit", degree="PhD")),
                 (VIDEO30,)),
    DemoProvider("ny-expired", "Owen", "Price", "MD", "America/New_York",
                 (Licence("NY", "NY-100001", start=date(2015, 1, 1), end=date(2025, 6, 30), degree="MD"),)),
)


def practitioner_body(p: DemoProvider) -> Resource:
    return {"resourceType": "Practitioner", "active": True,
            "identifier": [{"system": DEMO_ID_SYSTEM, "value": p.key}],
            "name": [{"family": p.family, "given": [p.given], "suffix": [p.degree]}
                     | ({"prefix": ["Dr."]} if p.degree in ("MD", "DO", "PhD") else {})],
            "qualification": [lic.to_qualification() for lic in p.licences]}


def seed_demo_providers(hub: FhirPort, now: datetime, horizon_days: int = 14) -> dict[str, str]:
    """Create or update the demo providers and their schedules; return ``key → Practitioner id``."""
    out = {}
    for p in DEMO_PROVIDERS:
        existing = hub.search("Practitioner", {"identifier": f"{DEMO_ID_SYSTEM}|{p.key}"})
        body = practitioner_body(p)
        practitioner = hub.update({**body, "id": existing[0]["id"]}) if existing else hub.create(body)
        rules = Availability(timezone=p.timezone, hours=parse_hours(HOURS), visit_types=p.visit_types,
                             buffer_after=5, horizon_days=horizon_days)
        save_availability(hub, practitioner["id"], rules, now)
        out[p.key] = practitioner["id"]
    return out
