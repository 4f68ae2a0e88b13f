"""Message → transaction Bundle: structure, conditional requests, events, merge, errors, R4 validity."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from mappers.hl7v2 import HL7v2Error, MappingError, Options, UnsupportedMessage, convert
from mappers.hl7v2.segments.zsegment import URL as Z_URL
from tests.mappers.hl7v2.conftest import ADT_A01, read_message


def by_type(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry)
    return out


def resolve(bundle: dict[str, Any], reference: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference)


def test_adt_a01_bundle(adt_a01: str) -> None:
    bundle = convert(adt_a01).bundle
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    kinds = by_type(bundle)
    patient = kinds["Patient"][0]
    assert patient["request"] == {"method": "PUT", "url": "Patient?identifier=urn:oid:2.16.840.1.1|MRN123"}
    p = patient["resource"]
    assert p["name"][0]["family"] == "DOE" and p["name"][0]["given"] == ["JANE", "Q"]
    assert p["gender"] == "female" and p["birthDate"] == "1980-02-14"
    assert {"system": "email", "value": "jane@example.org"} in p["telecom"]
    encounter = kinds["Encounter"][0]
    e = encounter["resource"]
    assert encounter["request"]["url"] == "Encounter?identifier=urn:oid:2.16.840.1.1|V987"
    assert e["class"]["code"] == "IMP" and e["status"] == "in-progress"
    assert e["subject"]["reference"] == patient["fullUrl"]
    assert e["period"]["start"] == "2024-01-05T08:00:00-05:00"
    doctor = resolve(bundle, e["participant"][0]["individual"]["reference"])
    assert doctor["resourceType"] == "Practitioner" and doctor["name"][0]["family"] == "WELBY"
    practitioner_entry = kinds["Practitioner"][0]
    assert practitioner_entry["request"]["method"] == "POST"
    assert practitioner_entry["request"]["ifNoneExist"].startswith("identifier=")
    allergy = kinds["AllergyIntolerance"][0]["resource"]
    assert allergy["patient"]["reference"] == patient["fullUrl"]
    assert allergy["code"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    prov = kinds["Provenance"][0]["resource"]
    assert {t["reference"] for t in prov["target"]} >= {patient["fullUrl"], encounter["fullUrl"]}


def test_same_message_twice_gives_the_same_conditional_bundle(adt_a01: str) -> None:
    first, second = convert(adt_a01).bundle, convert(adt_a01).bundle
    assert first == second
    for entry in first["entry"]:
        request = entry["request"]
        assert "?" in request["url"] or "ifNoneExist" in request, request
    urls = [e["request"]["url"] + e["request"].get("ifNoneExist", "") for e in first["entry"]]
    assert len(urls) == len(set(urls))


def test_resource_without_identifier_is_keyed_by_tag() -> None:
    msg = ADT_A01 + "\rOBX|1|NM|8867-4^Heart rate^LN||72|/min^^UCUM|||||F"
    obs = by_type(convert(msg).bundle)["Observation"][0]
    assert obs["request"]["url"].startswith("Observation?_tag=urn:telehub:hl7v2:key|")
    assert obs["resource"]["meta"]["tag"][0]["system"] == "urn:telehub:hl7v2:key"
    assert obs["resource"]["valueQuantity"] == {"value": 72, "unit": "/min", "code": "/min",
                                                "system": "http://unitsofmeasure.org"}


def test_z_segment_kept_as_extension(adt_a01: str) -> None:
    allergy = by_type(convert(adt_a01).bundle)["AllergyIntolerance"][0]["resource"]
    ext = next(e for e in allergy["extension"] if e["url"] == Z_URL)
    assert {"url": "segment", "valueString": "ZPI"} in ext["extension"]
    assert {"url": "field-2", "valueString": "VIP^Very important"} in ext["extension"]


@pytest.mark.parametrize(("trigger", "status"), [("A03", "finished"), ("A11", "cancelled"), ("A13", "in-progress")])
def test_trigger_event_sets_encounter_status(trigger: str, status: str) -> None:
    msg = ADT_A01.replace("ADT^A01^ADT_A01", f"ADT^{trigger}").replace("EVN|A01", f"EVN|{trigger}")
    enc = by_type(convert(msg).bundle)["Encounter"][0]["resource"]
    assert enc["status"] == status


def test_a40_merge_links_survivor_and_patches_the_old_patient() -> None:
    msg = "\r".join([
        "MSH|^~\\&|A|F|B|G|20240101120000+0000||ADT^A40^ADT_A39|M40|P|2.5",
        "EVN|A40|20240101120000+0000",
        "PID|1||NEW1^^^H&1.2.3&ISO^MR||DOE^JOHN",
        "MRG|OLD9^^^H&1.2.3&ISO^MR",
    ])
    bundle = convert(msg).bundle
    survivor = next(e for e in bundle["entry"] if e["request"]["method"] == "PUT"
                    and e["resource"]["resourceType"] == "Patient")
    retired = next(e for e in bundle["entry"] if e["request"]["method"] == "PATCH")
    assert retired["request"]["url"] == "Patient?identifier=urn:oid:1.2.3|OLD9"
    ops = json.loads(base64.b64decode(retired["resource"]["data"]))
    assert {"op": "add", "path": "/active", "value": False} in ops
    link = next(op for op in ops if op["path"] == "/link")["value"][0]
    assert link == {"other": {"reference": survivor["fullUrl"]}, "type": "replaced-by"}
    assert survivor["resource"]["link"] == [{"other": {"reference": retired["fullUrl"]}, "type": "replaces"}]


def test_oru_report_links_results_and_order() -> None:
    msg = "\r".join([
        "MSH|^~\\&|LAB|F|B|G|20240101120000+0000||ORU^R01^ORU_R01|R1|P|2.5.1",
        "PID|1||P1^^^H&1.2.3&ISO^MR||DOE^JOHN",
        "ORC|RE|PL1^EHR|FL1^LAB",
        "OBR|1|PL1^EHR|FL1^LAB|24331-1^Lipid panel^LN|||20240101110000+0000|||||||||||||||20240101115900+0000|||F",
        "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL^^UCUM|<200|N|||F|||20240101110000+0000",
        "OBX|2|ST|8251-1^Comment^LN||fasting\\.br\\sample||||||F",
    ])
    bundle = convert(msg).bundle
    kinds = by_type(bundle)
    report = kinds["DiagnosticReport"][0]["resource"]
    order = kinds["ServiceRequest"][0]
    assert report["status"] == "final" and report["code"]["coding"][0]["code"] == "24331-1"
    assert report["basedOn"] == [{"reference": order["fullUrl"]}]
    results = {r["reference"] for r in report["result"]}
    assert results == {e["fullUrl"] for e in kinds["Observation"]}
    values = [e["resource"].get("valueString") for e in kinds["Observation"]]
    assert "fasting\nsample" in values
    ids = {i["type"]["coding"][0]["code"]: i["value"] for i in order["resource"]["identifier"]}
    assert ids == {"PLAC": "PL1", "FILL": "FL1"}


def test_siu_cancel_sets_appointment_status(hl7_data: Path) -> None:
    text = read_message(hl7_data / "fhir-converter" / "input" / "hl7v2" / "SIU-S15-01.hl7")
    appt = by_type(convert(text).bundle)["Appointment"][0]["resource"]
    assert appt["status"] == "cancelled"
    assert any(p["actor"]["reference"].startswith("urn:uuid:") for p in appt["participant"])


def test_vxu_immunization(hl7_data: Path) -> None:
    text = read_message(hl7_data / "fhir-converter" / "input" / "hl7v2" / "VXU.hl7")
    imms = [e["resource"] for e in by_type(convert(text).bundle)["Immunization"]]
    assert len(imms) == 3
    systems = {i["vaccineCode"]["coding"][0]["system"] for i in imms}
    assert systems == {"http://hl7.org/fhir/sid/cvx", "http://hl7.org/fhir/sid/ndc"}
    assert all("occurrenceDateTime" in i for i in imms)


def test_mdm_document_carries_the_text(hl7_data: Path) -> None:
    text = read_message(hl7_data / "v2-to-fhir-ig" / "samples" / "messages" / "Message.hl7_MDM_T02.txt")
    doc = by_type(convert(text).bundle)["DocumentReference"][0]["resource"]
    data = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert len(data) > 20 and doc["status"] == "current"


def test_rde_medication_request(hl7_data: Path) -> None:
    text = read_message(hl7_data / "fhir-converter" / "input" / "hl7v2" / "RDE-O11-02.hl7")
    meds = [e["resource"] for e in by_type(convert(text).bundle)["MedicationRequest"]]
    assert meds and all(m["intent"] == "order" and "medicationCodeableConcept" in m for m in meds)


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"])
def test_versions_2_3_to_2_8_map_alike(version: str) -> None:
    msg = ADT_A01.replace("|P|2.5.1", f"|P|{version}", 1)
    patient = by_type(convert(msg).bundle)["Patient"][0]["resource"]
    assert patient["identifier"][0]["value"] == "MRN123" and patient["birthDate"] == "1980-02-14"


def test_unsupported_type_is_an_ar_error_without_phi() -> None:
    msg = ADT_A01.replace("ADT^A01^ADT_A01", "BAR^P01")
    with pytest.raises(UnsupportedMessage) as info:
        convert(msg)
    assert info.value.ack_code == "AR" and info.value.error_code == "200" and info.value.location == "MSH^1^9"
    assert "DOE" not in str(info.value)


def test_missing_required_segment_is_a_mapping_error() -> None:
    msg = "\r".join(line for line in ADT_A01.split("\r") if not line.startswith("PID"))
    with pytest.raises(MappingError) as info:
        convert(msg)
    assert info.value.ack_code == "AE" and info.value.segment == "PID"


def test_every_supported_sample_converts_to_valid_r4(samples: list[Path]) -> None:
    """Every output resource validates with fhir.resources' R4B models (nearest to R4 4.0.1)."""
    converted = Counter[str]()
    for path in samples:
        try:
            conversion = convert(read_message(path), Options(default_offset="-05:00"))
        except HL7v2Error as exc:
            assert exc.ack_code in ("AR", "AE")
            continue
        converted[conversion.message_type] += 1
        for entry in conversion.bundle["entry"]:
            resource = entry["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert sum(converted.values()) >= 460, converted


def test_mutated_messages_raise_only_hl7v2_errors(samples: list[Path]) -> None:
    """Damaged input must become a NAK-able HL7v2Error, never another exception (fixed seed)."""
    rng = random.Random(7)
    texts = [read_message(p) for p in samples[::7]]
    alphabet = "|^~\\&\r\n\"0123456789ABCXZ .-+"
    for _ in range(1500):
        chars = list(rng.choice(texts))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                chars[pos] = rng.choice(alphabet)
            elif op < 0.7:
                del chars[pos]
            else:
                chars.insert(pos, rng.choice(alphabet))
        with contextlib.suppress(HL7v2Error):
            convert("".join(chars))
