"""FHIR → v2 outbound messages: each built with hl7apy and valid under its strict validation.

Every message is re-parsed here with hl7apy STRICT (``find_groups``) and validated again,
independently of the builder, then its fields are checked against the source resources.
"""
from __future__ import annotations

from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from mappers.hl7v2 import convert
from mappers.hl7v2.outbound import (
    Change,
    OutboundConfig,
    OutboundError,
    build_message,
    build_messages,
    events_for,
)
from mappers.hl7v2.outbound.values import dtm, esc
from tests.mappers.hl7v2.outbound.conftest import change

NOW = "20260105120000+0000"


# hl7apy's own re-parser cannot read back everything its object model validates: its group
# finder puts RDE's encoded-timing TQ1 in the wrong group, its 2.6 tables lack XTN-1 and its 2.8
# parser refuses some elements. The builder validates every message strictly before returning it;
# this independent re-parse adds a second check where hl7apy can do it.
REPARSE_VERSIONS = ("2.5.1",)


def strict(er7: str) -> Any:
    if "|RDE^O11^" in er7 or er7.split("\r", 1)[0].rsplit("|", 1)[-1] not in REPARSE_VERSIONS:
        return None
    msg = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert msg.validate()
    return msg


def segments(er7: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for line in er7.split("\r"):
        if line:
            fields = line.split("|")
            out.setdefault(fields[0], []).append(fields)
    return out


def build(resource: dict[str, Any], related: dict[str, Any], event: str,
          config: OutboundConfig | None = None) -> tuple[str, dict[str, list[list[str]]]]:
    msg = build_message(change(resource, related), event, config or OutboundConfig(), control_id="C1", now=NOW)
    assert msg.er7.endswith("\r") and "\n" not in msg.er7
    strict(msg.er7)
    return msg.er7, segments(msg.er7)


def test_adt_a04_from_a_patient(patient: dict[str, Any], related: dict[str, Any], config: OutboundConfig) -> None:
    _er7, segs = build(patient, related, "ADT^A04", config)
    msh = segs["MSH"][0]
    assert msh[2:7] == ["TELEHUB", "TELEHUB", "EPIC", "CLINIC", NOW]
    assert msh[8:12] == ["ADT^A04^ADT_A01", "C1", "P", "2.5.1"]
    pid = segs["PID"][0]
    assert pid[3] == "MRN1^^^&1.2.3&ISO^MR"
    assert pid[5] == "Doe^Jane^Q^^^^L"
    assert (pid[7], pid[8]) == ("19800102", "F")
    assert pid[11] == "1 Main St^Apt 2^Town^MA^02100^^H"
    assert pid[13] == "^PRN^PH^^^^^^^^^555-1234~^NET^Internet^j@example.org"
    assert segs["PV1"][0][2] == "N"
    assert segs["EVN"][0][2] == NOW


def test_adt_round_trips_through_the_inbound_mapper(patient: dict[str, Any], related: dict[str, Any]) -> None:
    er7, _ = build(patient, related, "ADT^A08")
    back = next(e["resource"] for e in convert(er7).bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert back["name"][0]["family"] == "Doe" and back["name"][0]["given"][:1] == ["Jane"]
    assert back["birthDate"] == "1980-01-02" and back["gender"] == "female"
    assert {"system": "urn:oid:1.2.3", "value": "MRN1"}.items() <= back["identifier"][0].items()


@pytest.mark.parametrize(("event", "status", "filler"), [("SIU^S12", "booked", "Booked"),
                                                          ("SIU^S14", "booked", "Booked"),
                                                          ("SIU^S15", "cancelled", "Cancelled")])
def test_siu_from_an_appointment(appointment: dict[str, Any], related: dict[str, Any], event: str, status: str,
                                 filler: str) -> None:
    appointment["status"] = status
    if status == "cancelled":
        appointment["cancelationReason"] = {"coding": [{"code": "pat", "display": "Patient"}]}
    _er7, segs = build(appointment, related, event)
    assert segs["MSH"][0][8] == f"{event}^SIU_S12"
    sch = segs["SCH"][0]
    assert sch[2] == "a1^TELEHUB"
    assert sch[7] == "FOLLOWUP^^HL70276"
    assert sch[11] == "^^M30^20260201090000-0500^20260201093000-0500"
    assert sch[16] == sch[20] == "NPI1^Who^Doctor"
    assert sch[25] == f"{filler}^{filler}^HL70278"
    assert sch[6].startswith("pat^Patient") if status == "cancelled" else sch[6].startswith("11429006^")
    assert segs["PID"][0][3] == "MRN1^^^&1.2.3&ISO^MR"
    assert segs["AIS"][0][3] == "11429006^Consultation^SCT"
    assert segs["AIL"][0][3] == "^^^Virtual room"
    assert segs["AIP"][0][3] == "NPI1^Who^Doctor"


def test_rde_o11_from_a_signed_prescription(prescription: dict[str, Any], related: dict[str, Any]) -> None:
    _er7, segs = build(prescription, related, "RDE^O11")
    assert segs["ORC"][0][1:3] == ["NW", "m1^TELEHUB"]
    assert segs["ORC"][0][12] == "NPI1^Who^Doctor"
    rxe = segs["RXE"][0]
    assert rxe[2] == "197361^Amlodipine 5 MG Oral Tablet^RXNORM"
    assert (rxe[3], rxe[10], rxe[12]) == ("1", "30", "2")
    assert segs["RXR"][0][1] == "PO^^HL70162"
    assert segs["TQ1"][0][3] == "QD"
    assert segs["PV1"][0][2] == "O"  # Encounter.class VR (virtual) -> outpatient


def test_mdm_t02_from_a_signed_note(note: dict[str, Any], related: dict[str, Any]) -> None:
    _er7, segs = build(note, related, "MDM^T02")
    txa = segs["TXA"][0]
    assert (txa[2], txa[3], txa[12], txa[17]) == ("PN", "TX", "d1^TELEHUB", "LA")
    assert txa[22].startswith("NPI1^Who^Doctor^") and txa[22].endswith("^20260105100000+0000")
    obx = segs["OBX"][0]
    assert obx[2] == "TX" and obx[11] == "F"
    assert obx[5] == "S: cough \\F\\ 3 days~O: T 37.2\\S\\C~A/P: rest \\T\\ fluids"


def test_mdm_t02_carries_a_pdf_as_base64(note: dict[str, Any], related: dict[str, Any]) -> None:
    note["content"] = [{"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQK"}}]
    _, segs = build(note, related, "MDM^T02")
    assert segs["TXA"][0][3] == "AP"
    assert segs["OBX"][0][2] == "ED" and segs["OBX"][0][5] == "^AP^PDF^Base64^JVBERi0xLjQK"


def test_oru_r01_from_a_report_and_its_observations(report: dict[str, Any], related: dict[str, Any]) -> None:
    _er7, segs = build(report, related, "ORU^R01")
    obr = segs["OBR"][0]
    assert (obr[3], obr[4], obr[7], obr[22], obr[24], obr[25]) == (
        "r1^TELEHUB", "85353-1^Vitals panel^LN", "20260105100000+0000", "20260105110000+0000", "LAB", "F")
    obx = segs["OBX"][0]
    assert obx[2:8] == ["NM", "8867-4^Heart rate^LN", "1", "72", "/min^/min^UCUM", "60-100"]
    assert obx[11] == "F"
    assert segs["NTE"][0][3] == "Normal"


def test_oru_r01_from_one_observation(related: dict[str, Any]) -> None:
    _, segs = build(related["Observation/o1"], related, "ORU^R01")
    assert segs["OBR"][0][4] == segs["OBX"][0][3] == "8867-4^Heart rate^LN"


@pytest.mark.parametrize("version", ["2.5.1", "2.6", "2.8"])
@pytest.mark.parametrize("event", ["ADT^A08", "SIU^S12", "RDE^O11", "MDM^T02", "ORU^R01"])
def test_version_is_configurable(patient: dict[str, Any], related: dict[str, Any], appointment: dict[str, Any],
                                 prescription: dict[str, Any], note: dict[str, Any], report: dict[str, Any],
                                 version: str, event: str) -> None:
    focus = {"ADT^A08": patient, "SIU^S12": appointment, "RDE^O11": prescription, "MDM^T02": note,
             "ORU^R01": report}[event]
    _, segs = build(focus, related, event, OutboundConfig(version=version, sending_facility="TH"))
    assert segs["MSH"][0][11] == version and segs["MSH"][0][3] == "TH"


def test_config_refuses_unknown_settings() -> None:
    with pytest.raises(ValueError):
        OutboundConfig.from_mapping({"version": "2.5.1", "receving_application": "typo"})
    with pytest.raises(ValueError):
        OutboundConfig(version="2.7")
    assert OutboundConfig.from_mapping({"receiving_application": "EPIC"}).receiving_application == "EPIC"


def test_delimiters_in_data_are_escaped(patient: dict[str, Any], related: dict[str, Any]) -> None:
    patient["name"] = [{"family": "O|Brien^&~\\", "given": ["Ann"]}]
    _er7, segs = build(patient, related, "ADT^A08")
    assert segs["PID"][0][5] == "O\\F\\Brien\\S\\\\T\\\\R\\\\E\\^Ann"


def test_a_missing_patient_is_an_error_without_phi(appointment: dict[str, Any]) -> None:
    with pytest.raises(OutboundError) as info:
        build_message(Change(appointment), "SIU^S12", OutboundConfig(), control_id="C1", now=NOW)
    assert "Patient" in str(info.value)


def test_wrong_resource_for_event(patient: dict[str, Any]) -> None:
    with pytest.raises(OutboundError):
        build_message(Change(patient), "SIU^S12", OutboundConfig(), control_id="C1", now=NOW)


@pytest.mark.parametrize(("new", "old", "events"), [
    ({"resourceType": "Appointment", "status": "booked"}, None, ["SIU^S12"]),
    ({"resourceType": "Appointment", "status": "booked"}, {"status": "pending"}, ["SIU^S14"]),
    ({"resourceType": "Appointment", "status": "cancelled"}, {"status": "booked"}, ["SIU^S15"]),
    ({"resourceType": "Appointment", "status": "cancelled"}, {"status": "cancelled"}, []),
    ({"resourceType": "Patient"}, None, ["ADT^A04"]),
    ({"resourceType": "Patient"}, {}, ["ADT^A08"]),
    ({"resourceType": "MedicationRequest", "status": "draft", "intent": "order"}, None, []),
    ({"resourceType": "MedicationRequest", "status": "active", "intent": "order"}, {"status": "draft"}, ["RDE^O11"]),
    ({"resourceType": "MedicationRequest", "status": "active", "intent": "order"}, {"status": "active"}, []),
    ({"resourceType": "MedicationRequest", "status": "active", "intent": "proposal"}, None, []),
    ({"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary"}, None, []),
    ({"resourceType": "DocumentReference", "status": "current", "docStatus": "final"},
     {"status": "current", "docStatus": "preliminary"}, ["MDM^T02"]),
    ({"resourceType": "DiagnosticReport", "status": "final"}, {"status": "preliminary"}, ["ORU^R01"]),
    ({"resourceType": "Observation", "status": "preliminary"}, None, []),
    ({"resourceType": "Observation", "status": "amended"}, {"status": "final"}, ["ORU^R01"]),
    ({"resourceType": "Organization"}, None, []),
])
def test_which_changes_send_what(new: dict[str, Any], old: dict[str, Any] | None, events: list[str]) -> None:
    assert events_for(new, old) == events


def test_build_messages_follows_the_change(prescription: dict[str, Any], related: dict[str, Any]) -> None:
    out = build_messages(change(prescription, related, {"status": "draft"}), OutboundConfig(), control_id="X",
                         now=NOW)
    assert [(m.event, m.control_id) for m in out] == [("RDE^O11", "X")]


@pytest.mark.parametrize(("fhir", "v2"), [("2026", "2026"), ("2026-01", "202601"), ("2026-01-05", "20260105"),
                                          ("2026-01-05T10:00:00Z", "20260105100000+0000"),
                                          ("2026-01-05T10:00:00.123456+05:30", "20260105100000.1234+0530"),
                                          ("garbage", "")])
def test_dates(fhir: str, v2: str) -> None:
    assert dtm(fhir) == v2


def test_escape_line_breaks() -> None:
    assert esc("a\r\nb\nc") == "a\\.br\\b\\.br\\c"
