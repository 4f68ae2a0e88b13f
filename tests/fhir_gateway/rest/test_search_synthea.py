"""US Core 6.1.0 SHALL searches over the 10 Synthea patients, checked against an independent oracle.

The expected ids are computed in Python straight from the NDJSON, so a search
that drops or adds a resource fails. Each query also runs as POST ``_search``
and with ``patient=Patient/id``, and must give the same ids (what Inferno's
US Core tests probe, conformance-notes.md).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from tests.conftest import SHARED_DATA
from tests.fhir_gateway.conftest import Fhir

Resource = dict[str, Any]


@cache
def data(rtype: str) -> tuple[Resource, ...]:
    path = Path(SHARED_DATA) / "synthea/small/ndjson" / f"{rtype}.ndjson"
    return tuple(json.loads(line) for line in path.read_text().splitlines() if line.strip())


def ids(rtype: str, pred: Callable[[Resource], bool]) -> set[str]:
    return {r["id"] for r in data(rtype) if pred(r)}


def all_ids(fhir: Fhir, query: str) -> set[str]:
    """Follow every next link, collecting match ids (and checking no id appears twice)."""
    found: list[str] = []
    url: str | None = query + ("&" if "?" in query else "?") + "_count=17"
    while url:
        bundle = fhir.search(url)
        found += [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    assert len(found) == len(set(found)), "a resource appeared on two pages"
    return set(found)


def post_ids(fhir: Fhir, query: str) -> set[str]:
    rtype, _, qs = query.partition("?")
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in parse_qsl(qs))
    body += "&_count=1000"
    resp = fhir.request("POST", f"{rtype}/_search", raw=body.encode(),
                        content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {e["resource"]["id"] for e in resp.get_json().get("entry", []) if e["search"]["mode"] == "match"}


def codes(cc: Any) -> set[tuple[str | None, str | None]]:
    items = cc if isinstance(cc, list) else [cc]
    return {(c.get("system"), c.get("code")) for x in items if isinstance(x, dict) for c in x.get("coding", [])}


def subject(r: Resource, key: str = "subject") -> str | None:
    ref = r.get(key) or {}
    return ref.get("reference")


def busiest_patient() -> str:
    from collections import Counter

    counts = Counter(subject(o) for o in data("Observation"))
    return str(counts.most_common(1)[0][0]).split("/")[1]


def check(fhir: Fhir, query: str, expected: set[str]) -> None:
    assert expected, f"oracle found nothing for {query}; pick another value"
    assert all_ids(fhir, query) == expected, query
    assert post_ids(fhir, query) == expected, f"POST {query}"
    if "patient=" in query and "patient=Patient/" not in query:
        assert all_ids(fhir, query.replace("patient=", "patient=Patient/")) == expected


def test_patient_searches(synthea_fhir: Fhir) -> None:
    p = data("Patient")[0]
    ident = p["identifier"][1]
    family = p["name"][0]["family"]
    check(synthea_fhir, f"Patient?_id={p['id']}", {p["id"]})
    check(synthea_fhir, f"Patient?identifier={quote(ident['system'])}|{ident['value']}", {p["id"]})
    check(synthea_fhir, f"Patient?identifier={ident['value']}", {p["id"]})
    check(synthea_fhir, f"Patient?name={family[:4]}",
          ids("Patient", lambda r: any(n.get("family", "").lower().startswith(family[:4].lower())
                                       or any(g.lower().startswith(family[:4].lower()) for g in n.get("given", []))
                                       for n in r["name"])))
    check(synthea_fhir, f"Patient?birthdate={p['birthDate']}&name={family}",
          ids("Patient", lambda r: r["birthDate"] == p["birthDate"] and r["name"][0]["family"] == family))
    check(synthea_fhir, f"Patient?gender={p['gender']}&name={family}",
          ids("Patient", lambda r: r["gender"] == p["gender"] and r["name"][0]["family"] == family))


def test_observation_searches(synthea_fhir: Fhir) -> None:
    pid = busiest_patient()
    ref = f"Patient/{pid}"
    loinc = "http://loinc.org"
    cat = "http://terminology.hl7.org/CodeSystem/observation-category"
    check(synthea_fhir, f"Observation?patient={pid}&category=laboratory",
          ids("Observation", lambda o: subject(o) == ref and any(c == "laboratory" for _, c in codes(o["category"]))))
    check(synthea_fhir, f"Observation?patient={pid}&category={cat}|vital-signs",
          ids("Observation", lambda o: subject(o) == ref and (cat, "vital-signs") in codes(o["category"])))
    check(synthea_fhir, f"Observation?patient={pid}&code={loinc}|8302-2",
          ids("Observation", lambda o: subject(o) == ref and (loinc, "8302-2") in codes(o["code"])))
    sample = next(o for o in data("Observation") if subject(o) == ref and "effectiveDateTime" in o)
    day = sample["effectiveDateTime"][:10]
    check(synthea_fhir, f"Observation?patient={pid}&category=laboratory&date={day}",
          ids("Observation", lambda o: subject(o) == ref and any(c == "laboratory" for _, c in codes(o["category"]))
              and o.get("effectiveDateTime", "")[:10] == day))
    years = sorted({o["effectiveDateTime"][:4] for o in data("Observation")
                    if subject(o) == ref and "effectiveDateTime" in o})
    year = years[len(years) // 2]
    for prefix, pred in (("ge", lambda d: d[:4] >= year), ("lt", lambda d: d[:4] < year),
                         ("gt", lambda d: d[:4] > year), ("le", lambda d: d[:4] <= year)):
        check(synthea_fhir, f"Observation?patient={pid}&date={prefix}{year}",
              ids("Observation", lambda o, p=pred: subject(o) == ref and p(o.get("effectiveDateTime", "0000"))))
    check(synthea_fhir, f"Observation?patient={pid}&code={loinc}|8302-2,{loinc}|29463-7",
          ids("Observation", lambda o: subject(o) == ref and bool(
              {(loinc, "8302-2"), (loinc, "29463-7")} & codes(o["code"]))))


def test_condition_encounter_and_other_types(synthea_fhir: Fhir) -> None:
    pid = busiest_patient()
    ref = f"Patient/{pid}"
    from collections import Counter

    cond_patient = str(Counter(subject(c) for c in data("Condition")).most_common(1)[0][0])
    check(synthea_fhir, f"Condition?patient={cond_patient.split('/')[1]}",
          ids("Condition", lambda r: subject(r) == cond_patient))
    # Synthea's Conditions carry no category: clinical-status is the SHOULD combination they support
    check(synthea_fhir, f"Condition?patient={cond_patient.split('/')[1]}&clinical-status=active",
          ids("Condition", lambda r: subject(r) == cond_patient
              and any(c == "active" for _, c in codes(r.get("clinicalStatus", {})))))
    check(synthea_fhir, f"Encounter?patient={pid}", ids("Encounter", lambda r: subject(r) == ref))
    enc = next(e for e in data("Encounter") if subject(e) == ref)
    check(synthea_fhir, f"Encounter?_id={enc['id']}", {enc["id"]})
    year = enc["period"]["start"][:4]
    check(synthea_fhir, f"Encounter?date=ge{year}&patient={pid}",
          ids("Encounter", lambda r: subject(r) == ref and r["period"].get("end", r["period"]["start"])[:4] >= year))
    check(synthea_fhir, f"Immunization?patient={pid}", ids("Immunization", lambda r: subject(r, "patient") == ref))
    check(synthea_fhir, f"Procedure?patient={pid}", ids("Procedure", lambda r: subject(r) == ref))
    mr_patient = subject(data("MedicationRequest")[0]).split("/")[1]  # type: ignore[union-attr]
    mref = f"Patient/{mr_patient}"
    check(synthea_fhir, f"MedicationRequest?patient={mr_patient}&intent=order",
          ids("MedicationRequest", lambda r: subject(r) == mref and r["intent"] == "order"))
    statuses = ",".join(sorted({r["status"] for r in data("MedicationRequest")}))
    check(synthea_fhir, f"MedicationRequest?patient={mr_patient}&intent=order&status={statuses}",
          ids("MedicationRequest", lambda r: subject(r) == mref and r["intent"] == "order"))
    check(synthea_fhir, f"DiagnosticReport?patient={pid}", ids("DiagnosticReport", lambda r: subject(r) == ref))
    careplan = data("CarePlan")[0]
    cp_patient = subject(careplan).split("/")[1]  # type: ignore[union-attr]
    cp_code = careplan["category"][0]["coding"][0]["code"]
    check(synthea_fhir, f"CarePlan?patient={cp_patient}&category=http://snomed.info/sct|{cp_code}",
          ids("CarePlan", lambda r: subject(r) == f"Patient/{cp_patient}"
              and any(c == cp_code for _, c in codes(r.get("category", [])))))
    goal_patient = subject(data("Goal")[0]).split("/")[1]  # type: ignore[union-attr]
    check(synthea_fhir, f"Goal?patient={goal_patient}",
          ids("Goal", lambda r: subject(r) == f"Patient/{goal_patient}"))
    ai_patient = subject(data("AllergyIntolerance")[0], "patient").split("/")[1]  # type: ignore[union-attr]
    check(synthea_fhir, f"AllergyIntolerance?patient={ai_patient}",
          ids("AllergyIntolerance", lambda r: subject(r, "patient") == f"Patient/{ai_patient}"))
    org = data("Organization")[0]
    check(synthea_fhir, f"Organization?name={quote(org['name'])}",
          ids("Organization", lambda r: r["name"].lower().startswith(org["name"].lower())))
    prac = data("Practitioner")[0]
    pident = prac["identifier"][0]
    check(synthea_fhir, f"Practitioner?identifier={quote(pident['system'])}|{pident['value']}",
          ids("Practitioner", lambda r: any(i["value"] == pident["value"] for i in r["identifier"])))


def test_chained_reverse_chained_and_includes(synthea_fhir: Fhir) -> None:
    pid = busiest_patient()
    patient = next(p for p in data("Patient") if p["id"] == pid)
    family = patient["name"][0]["family"]
    expected = ids("Condition", lambda r: subject(r) == f"Patient/{pid}")
    assert all_ids(synthea_fhir, f"Condition?subject:Patient.name={quote(family)}") == expected
    assert all_ids(synthea_fhir, f"Condition?patient.family={quote(family)}") == expected
    code = next(iter(codes(next(c for c in data("Condition") if subject(c) == f"Patient/{pid}")["code"])))
    assert pid in all_ids(synthea_fhir, f"Patient?_has:Condition:patient:code={code[1]}")
    bundle = synthea_fhir.search(f"Encounter?patient={pid}&_count=5&_include=Encounter:patient")
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes.count("match") == 5 and modes.count("include") == 1
    bundle = synthea_fhir.search(f"Patient?_id={pid}&_revinclude=Encounter:patient")
    included = {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert included == ids("Encounter", lambda r: subject(r) == f"Patient/{pid}")
    assert synthea_fhir.get(f"Observation?patient={pid}&_revinclude=Provenance:target").status_code == 200


def test_sort_total_summary_and_elements(synthea_fhir: Fhir) -> None:
    # birthdate is a blinded (HMAC) index, so it cannot be sorted on: Encounter dates can
    bundle = synthea_fhir.search("Encounter?_sort=-date&_total=accurate&_count=200")
    # descending sorts on each resource's latest instant: the end of the period
    dates = [e["resource"]["period"].get("end", e["resource"]["period"]["start"]) for e in bundle["entry"]]
    assert dates == sorted(dates, reverse=True)
    assert bundle["total"] == 138
    multi = synthea_fhir.search("Encounter?_sort=status,-date&_count=200")
    keys = [(e["resource"]["status"], e["resource"]["period"].get("end", e["resource"]["period"]["start"]))
            for e in multi["entry"]]
    assert keys == sorted(keys, key=lambda k: (k[0], [-ord(c) for c in k[1]]))
    assert synthea_fhir.get("Patient?_sort=birthdate").status_code == 400
    count = synthea_fhir.search("Observation?_summary=count")
    assert count["total"] == 880
    assert not count.get("entry")
    none = synthea_fhir.search("Observation?_total=none&_count=1")
    assert "total" not in none
    elements = synthea_fhir.search("Patient?_elements=birthDate&_count=1")["entry"][0]["resource"]
    assert set(elements) <= {"resourceType", "id", "meta", "birthDate"}
    assert any(t.get("code") == "SUBSETTED" for t in elements["meta"].get("tag", []))


def test_paging_stays_stable_while_others_write(synthea_fhir: Fhir) -> None:
    first = synthea_fhir.search("Observation?category=vital-signs&_count=50")
    seen = [e["resource"]["id"] for e in first["entry"]]
    created = synthea_fhir.create({"resourceType": "Observation", "status": "final",
                                   "category": [{"coding": [{"code": "vital-signs"}]}], "code": {"text": "x"}})
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while url:
        page = synthea_fhir.search(url)
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    synthea_fhir.delete(f"Observation/{created['id']}")
    expected = ids("Observation", lambda o: any(c == "vital-signs" for _, c in codes(o["category"])))
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


@pytest.mark.parametrize("query", [
    "Patient?unknown-param=1", "Patient?birthdate=notadate", "Observation?value-quantity=abc",
    "Patient?name:nonsense=x", "Observation?subject:Patient.nope=1",
])
def test_bad_searches_are_400(synthea_fhir: Fhir, query: str) -> None:
    resp = synthea_fhir.get(query)
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_lenient_handling_ignores_unknown_parameters(synthea_fhir: Fhir) -> None:
    resp = synthea_fhir.get("Patient?unknown-param=1", headers={"Prefer": "handling=lenient"})
    assert resp.status_code == 200
    bundle = resp.get_json()
    assert len([e for e in bundle["entry"] if e["search"]["mode"] == "match"]) == 10
    assert any(e["search"]["mode"] == "outcome" for e in bundle["entry"])
