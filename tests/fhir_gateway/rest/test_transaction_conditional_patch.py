"""Conditional PATCH inside a transaction (https://hl7.org/fhir/R4/http.html#patch, #transaction).

``PATCH Patient?identifier=…`` resolves to its one match before the transaction runs, so
other entries can reference the patched resource through its fullUrl (the inbound ADT^A40
merge does exactly that); no match is 404, several are 412, and either rolls back all.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from mappers.hl7v2 import convert
from tests.fhir_gateway.conftest import Fhir, patient

SYS = "urn:oid:1.2.3.4"


def _binary(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(ops).encode()).decode()}


def _txn(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _patch_entry(query: str, ops: list[dict[str, Any]], full_url: str = "urn:uuid:old") -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": _binary(ops), "request": {"method": "PATCH", "url": f"Patient?{query}"}}


def _with_id(value: str, **extra: Any) -> dict[str, Any]:
    return patient(identifier=[{"system": SYS, "value": value}], **extra)


def test_conditional_patch_applies_and_its_full_url_resolves(fhir: Fhir) -> None:
    old = fhir.create(_with_id("OLD-1"))
    survivor = {**_with_id("NEW-1"), "link": [{"other": {"reference": "urn:uuid:old"}, "type": "replaces"}]}
    bundle = _txn(
        _patch_entry(f"identifier={SYS}|OLD-1", [{"op": "add", "path": "/active", "value": False}]),
        {"fullUrl": "urn:uuid:new", "resource": survivor,
         "request": {"method": "PUT", "url": f"Patient?identifier={SYS}|NEW-1"}},
    )
    resp = fhir.post("", bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    assert out["entry"][0]["response"]["status"] == "200 OK"
    patched = fhir.get(f"Patient/{old['id']}").get_json()
    assert patched["active"] is False
    assert patched["meta"]["versionId"] == "2"
    new_id = out["entry"][1]["resource"]["id"]
    stored = fhir.get(f"Patient/{new_id}").get_json()
    assert stored["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]


def test_conditional_patch_without_a_match_is_404_and_rolls_back(sqlite_fhir: Fhir) -> None:
    bundle = _txn(
        {"fullUrl": "urn:uuid:p", "resource": _with_id("KEEP-OUT"), "request": {"method": "POST", "url": "Patient"}},
        _patch_entry(f"identifier={SYS}|NOBODY", [{"op": "add", "path": "/active", "value": False}]),
    )
    resp = sqlite_fhir.post("", bundle)
    assert resp.status_code == 404
    outcome = resp.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[1]" in outcome["issue"][0]["expression"]
    assert sqlite_fhir.search_ids(f"Patient?identifier={SYS}|KEEP-OUT") == set()


def test_conditional_patch_matching_several_is_412(sqlite_fhir: Fhir) -> None:
    sqlite_fhir.create(_with_id("TWIN"))
    sqlite_fhir.create(_with_id("TWIN"))
    resp = sqlite_fhir.post("", _txn(_patch_entry(f"identifier={SYS}|TWIN",
                                                  [{"op": "add", "path": "/active", "value": False}])))
    assert resp.status_code == 412
    assert all(p.get("active") is None for p in
               (e["resource"] for e in sqlite_fhir.search(f"Patient?identifier={SYS}|TWIN")["entry"]))


def test_conditional_patch_and_update_of_the_same_resource_conflict(sqlite_fhir: Fhir) -> None:
    sqlite_fhir.create(_with_id("SAME"))
    bundle = _txn(
        _patch_entry(f"identifier={SYS}|SAME", [{"op": "add", "path": "/active", "value": False}]),
        {"resource": _with_id("SAME"), "request": {"method": "PUT", "url": f"Patient?identifier={SYS}|SAME"}},
    )
    assert sqlite_fhir.post("", bundle).status_code == 400


A04 = ("MSH|^~\\&|EHR|CLINIC|TELEHUB|HUB|20260101120000||ADT^A04^ADT_A01|A04-{n}|P|2.5.1\r"
       "EVN|A04|20260101120000\r"
       "PID|1||{mrn}^^^CLINIC&1.2.3&ISO^MR||Doe^Jane||19800101|F\r"
       "PV1|1|O\r")
A40 = ("MSH|^~\\&|EHR|CLINIC|TELEHUB|HUB|20260102120000||ADT^A40^ADT_A39|A40-1|P|2.5.1\r"
       "EVN|A40|20260102120000\r"
       "PID|1||KEEP^^^CLINIC&1.2.3&ISO^MR||Doe^Jane||19800101|F\r"
       "MRG|GONE^^^CLINIC&1.2.3&ISO^MR\r")


def test_inbound_a40_merge_retires_the_old_patient(sqlite_fhir: Fhir) -> None:
    for n, mrn in enumerate(("KEEP", "GONE")):
        resp = sqlite_fhir.post("", convert(A04.format(n=n, mrn=mrn)).bundle)
        assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = sqlite_fhir.post("", convert(A40).bundle)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    gone = sqlite_fhir.search("Patient?identifier=GONE")["entry"][0]["resource"]
    keep = sqlite_fhir.search("Patient?identifier=KEEP")["entry"][0]["resource"]
    assert gone["active"] is False
    assert gone["link"] == [{"other": {"reference": f"Patient/{keep['id']}"}, "type": "replaced-by"}]
    assert {"other": {"reference": f"Patient/{gone['id']}"}, "type": "replaces"} in keep["link"]
    assert gone["name"][0]["family"] == "Doe"  # patched, not replaced: demographics stay
    again = sqlite_fhir.post("", convert(A40).bundle)  # a re-sent merge changes nothing more
    assert again.status_code == 200, again.get_data(as_text=True)
    assert len(sqlite_fhir.search("Patient?identifier=GONE")["entry"]) == 1
