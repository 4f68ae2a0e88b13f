"""history at instance, type and system level (https://hl7.org/fhir/R4/http.html#history)."""
from __future__ import annotations

import time

from tests.fhir_gateway.conftest import Fhir, patient


def test_instance_type_and_system_history(fhir: Fhir) -> None:
    a = fhir.create(patient(family="A"))
    fhir.put(f"Patient/{a['id']}", {**a, "gender": "female"})
    fhir.create({"resourceType": "Organization", "name": "Org"})
    inst = fhir.get(f"Patient/{a['id']}/_history").get_json()
    assert inst["type"] == "history" and inst["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in inst["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in inst["entry"]] == ["PUT", "POST"]
    assert fhir.get("Patient/_history").get_json()["total"] == 2
    assert fhir.get("_history").get_json()["total"] == 3


def test_history_since_at_and_count(fhir: Fhir) -> None:
    a = fhir.create(patient())
    time.sleep(0.01)
    cut = fhir.put(f"Patient/{a['id']}", {**a, "gender": "female"}).get_json()["meta"]["lastUpdated"]
    time.sleep(0.01)
    fhir.put(f"Patient/{a['id']}", {**a, "gender": "other"})
    since = fhir.get(f"Patient/{a['id']}/_history?_since={cut.replace('+', '%2B')}").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in since["entry"]] == ["3", "2"]
    at = fhir.get(f"Patient/{a['id']}/_history?_at={cut.replace('+', '%2B')}").get_json()
    assert "2" in [e["resource"]["meta"]["versionId"] for e in at["entry"]]
    assert "3" not in [e["resource"]["meta"]["versionId"] for e in at["entry"]]
    page = fhir.get(f"Patient/{a['id']}/_history?_count=1").get_json()
    assert len(page["entry"]) == 1
    nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
    assert nxt
    second = fhir.get(nxt[0]).get_json()
    assert second["entry"][0]["resource"]["meta"]["versionId"] == "2"


def test_history_paging_is_stable_while_writing(fhir: Fhir) -> None:
    for i in range(5):
        fhir.create(patient(family=f"H{i}"))
    first = fhir.get("Patient/_history?_count=2").get_json()
    for i in range(3):
        fhir.create(patient(family=f"New{i}"))
    seen = [e["resource"]["name"][0]["family"] for e in first["entry"]]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while url:
        page = fhir.get(url).get_json()
        seen += [e["resource"]["name"][0]["family"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert sorted(seen) == [f"H{i}" for i in range(5)]


def test_history_rejects_bad_parameters(fhir: Fhir) -> None:
    assert fhir.get("_history?_since=yesterday").status_code == 400
    assert fhir.get("_history?_count=-1").status_code == 400
    assert fhir.get("_history?foo=bar").status_code == 400
    assert fhir.get("Patient/nope/_history").status_code == 404
