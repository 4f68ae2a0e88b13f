"""Vendor dialect ⇄ canonical R4, on the recorded vendor responses (sandbox_fixtures/recordings)."""
from __future__ import annotations

import copy
import json

from mappers.vendor.canonical import Dialect, to_canonical, to_vendor, vendor_id_from_source
from mappers.vendor.identifiers import MrnRule, find_mrn, remove_canonical_mrn
from mappers.vendor.launch import normalize_launch_context
from mappers.vendor.provenance import build_provenance
from mappers.vendor.references import hub_id, split_reference
from mappers.vendor.searchset import has_fatal, outcome_issues, split_searchset
from mappers.vendor.video import VIDEO_LINK, canonical_links, video_link_patch, video_links
from sandbox_fixtures.recordings import body

EPIC_BASE = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"
CERNER_BASE = "https://fhir-open.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d"
EPIC_CODES = r"^urn:oid:1\.2\.840\.114350\.1\.13\.[0-9.]+\.2\.657369$"
EPIC_MRN = MrnRule(system_regex=r"^urn:oid:1\.2\.840\.114350\.1\.13\.[0-9.]+\.7\.5\.737384\.14$", type_text="EPI")
CERNER_MRN = MrnRule(system="urn:oid:2.16.840.1.113883.6.1000", type_code="MR")
ROLES = {"patient": "Patient Virtual Meeting Room", "provider": "Provider Virtual Meeting Room"}


def test_epic_outcome_entries_become_warnings() -> None:
    page = split_searchset(body("epic", "allergyintolerance-eq081-VQEgP8drUUqCWzHfw3.json"), EPIC_CODES)
    assert [r["resourceType"] for r in page.resources] == ["AllergyIntolerance"]
    assert len(page.warnings) == 1
    warning = page.warnings[0]
    assert (warning.severity, warning.code, warning.vendor_code) == ("warning", "suppressed", "59204")
    assert not warning.fatal and page.next_url is None


def test_an_empty_epic_search_is_only_an_outcome() -> None:
    page = split_searchset(body("epic", "observation-lab.json"), EPIC_CODES)
    assert page.resources == [] and page.total == 0
    assert [w.vendor_code for w in page.warnings] == ["59204", "4101"]  # 4101: "returns no results"


def test_cerner_next_link_and_missing_total() -> None:
    page = split_searchset(body("cerner", "encounter-12724066.json"))
    assert len(page.resources) == 10 and page.total is None and page.warnings == []
    assert page.next_url is not None and "-pageContext=" in page.next_url


def test_error_outcomes_fatal_or_not() -> None:
    epic = outcome_issues(body("epic", "error-search-with-unsupported-param.json"), EPIC_CODES)
    assert [(i.severity, i.vendor_code) for i in epic] == [("information", "59100"), ("fatal", "59159")]
    assert has_fatal(epic) and not has_fatal(epic[:1])
    cerner = outcome_issues(body("cerner", "error-404-on-nonexistent-patient-id.json"))
    assert cerner[0].code == "not-found" and cerner[0].vendor_code is None and cerner[0].text == "Not Found"


def test_need_patient_banner_string_becomes_boolean() -> None:
    token = body("epic", "ehr-launch_token-response_apotti-production.json")
    assert token["need_patient_banner"] == "true"
    context = normalize_launch_context(token)
    assert context["need_patient_banner"] is True
    assert context["deptID"] == "490771" and "__epic.dstu2.patient" in context  # vendor keys pass through
    assert normalize_launch_context({"need_patient_banner": False})["need_patient_banner"] is False
    assert "need_patient_banner" not in normalize_launch_context({"need_patient_banner": "maybe"})


def test_epic_and_cerner_mrns() -> None:
    derrick = body("epic", "patient-eq081-VQEgP8drUUqCWzHfw3.json")
    assert find_mrn(derrick, [EPIC_MRN]) == "203711"  # vendor-notes §2.5: Derrick Lin, MRN 203711
    assert find_mrn(body("epic", "patient-erXuFYUfucBZaryVksYEcMg3.json"), [EPIC_MRN]) == "203713"
    cerner = body("cerner", "patient-12744580.json")
    assert find_mrn(cerner, [CERNER_MRN]) == "8230"
    assert find_mrn(cerner, [MrnRule(type_text="nothing")]) is None


def test_epic_patient_to_canonical() -> None:
    derrick = body("epic", "patient-eq081-VQEgP8drUUqCWzHfw3.json")
    original = copy.deepcopy(derrick)
    dialect = Dialect("epic", EPIC_BASE, (EPIC_MRN,), "urn:telehub:mrn:clinic-a", EPIC_CODES)
    out = to_canonical(derrick, dialect)
    assert derrick == original  # pure: the input is untouched
    assert out["id"] == hub_id(EPIC_BASE, "Patient", "eq081-VQEgP8drUUqCWzHfw3")
    assert out["meta"]["source"] == f"{EPIC_BASE}/Patient/eq081-VQEgP8drUUqCWzHfw3"
    mrn = [i for i in out["identifier"] if i["system"] == "urn:telehub:mrn:clinic-a"]
    assert [i["value"] for i in mrn] == ["203711"]
    assert len(out["identifier"]) == len(derrick["identifier"]) + 1
    assert to_canonical(derrick, dialect) == out  # deterministic
    assert vendor_id_from_source(out, dialect) == "eq081-VQEgP8drUUqCWzHfw3"
    assert remove_canonical_mrn(out, "urn:telehub:mrn:clinic-a")["identifier"] == derrick["identifier"]


def test_references_follow_the_hub_ids_and_back() -> None:
    bundle = body("epic", "encounter-eq081-VQEgP8drUUqCWzHfw3.json")
    encounter = split_searchset(bundle).resources[0]
    dialect = Dialect("epic", EPIC_BASE)
    out = to_canonical(encounter, dialect)
    patient_hub = hub_id(EPIC_BASE, "Patient", "eq081-VQEgP8drUUqCWzHfw3")
    assert out["subject"]["reference"] == f"Patient/{patient_hub}"
    assert "eq081-VQEgP8drUUqCWzHfw3" not in json.dumps({k: v for k, v in out.items() if k != "meta"})
    reverse = {(t, dialect.default_ids(t, v)): v for t, v in [("Patient", "eq081-VQEgP8drUUqCWzHfw3"),
                                                               ("Encounter", encounter["id"])]}
    back = to_vendor(out, dialect, lambda t, i: reverse.get((t, i)))
    assert back["id"] == encounter["id"] and "meta" not in back
    assert back["subject"]["reference"] == "Patient/eq081-VQEgP8drUUqCWzHfw3"
    assert split_reference(f"{EPIC_BASE}/Patient/abc.d-1", EPIC_BASE) == ("Patient", "abc.d-1")
    assert split_reference("#contained-1", EPIC_BASE) is None


def test_tenants_never_share_hub_ids() -> None:
    assert hub_id(CERNER_BASE, "Patient", "12724066") != hub_id(CERNER_BASE + "x", "Patient", "12724066")


def test_cerner_video_links_to_a_canonical_extension_and_back() -> None:
    appointment = body("cerner", "r4_appointment_video_visit_entry.json")
    links = video_links(appointment, ROLES)
    assert set(links) == {"patient", "provider"}
    dialect = Dialect("cerner", CERNER_BASE, video_roles=ROLES)
    out = to_canonical(appointment, dialect)
    ext = [e for e in out["extension"] if e["url"] == VIDEO_LINK]
    assert len(ext) == 2 and canonical_links(out) == links
    assert out["contained"] == appointment["contained"]
    # back: the patch finds each service by type.text; in this GET example index 0 is the *patient* room
    wanted = {"provider": {"url": "http://providerlink.vmr.net"}, "patient": {"url": "http://patientlink.vmr.net"}}
    ops = video_link_patch(appointment, wanted, ROLES)
    assert {"op": "add", "path": "/contained/1/telecom/0/value", "value": "http://providerlink.vmr.net"} in ops
    assert {"op": "add", "path": "/contained/0/telecom/0/value", "value": "http://patientlink.vmr.net"} in ops
    back = to_vendor(out, dialect, lambda t, i: None)
    assert all(e.get("url") != VIDEO_LINK for e in back.get("extension", []))


def test_provenance_is_deterministic() -> None:
    a = build_provenance(["Observation/b/_history/1", "Observation/a/_history/1"], [f"{EPIC_BASE}/Observation/x"],
                         "2026-01-01T00:00:00Z", vendor="epic", agent_display="Telehub sync", created=True)
    b = build_provenance(["Observation/a/_history/1", "Observation/b/_history/1"], [f"{EPIC_BASE}/Observation/x"],
                         "2026-01-01T00:00:00Z", vendor="epic", agent_display="Telehub sync", created=True)
    assert a == b and a["target"][0]["reference"] == "Observation/a/_history/1"
    assert a["entity"] == [{"role": "source", "what": {"reference": f"{EPIC_BASE}/Observation/x"}}]


def test_every_recorded_epic_resource_maps() -> None:
    dialect = Dialect("epic", EPIC_BASE, (EPIC_MRN,), "urn:telehub:mrn:c", EPIC_CODES)
    names = ["condition-problems.json", "condition-encounter-diag-eq081-VQEgP8drUUqCWzHfw3.json",
             "documentreference-eq081-VQEgP8drUUqCWzHfw3.json", "medicationrequest.json", "procedure.json",
             "observation-lab-erXuFYUfucBZaryVksYEcMg3.json"]
    for name in names:
        for resource in split_searchset(body("epic", name), EPIC_CODES).resources:
            out = to_canonical(resource, dialect)
            assert out["meta"]["source"].startswith(EPIC_BASE + "/") and len(out["id"]) == 36
