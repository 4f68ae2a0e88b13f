"""The checked-in maps are exactly what the derivation from the IG tables produces."""

from __future__ import annotations

import json
from pathlib import Path

from mappers.hl7v2.maps import load
from mappers.hl7v2.tools import derive_maps


def test_checked_in_maps_match_the_ig_derivation(hl7_data: Path) -> None:
    built = derive_maps.build()
    for name, data in built.items():
        stale = f"{name} is stale: run python -m mappers.hl7v2.tools.derive_maps"
        assert json.loads(json.dumps(data)) == load(name), stale


def test_ig_maps_cover_the_segments_we_map() -> None:
    segments = load("ig_maps.json")["segments"]
    for key in ("PID[Patient]", "PV1[Encounter]", "OBX[Observation]", "OBR[DiagnosticReport]", "ORC[ServiceRequest]",
                "RXA[Immunization]", "SCH[Appointment]", "TXA[DocumentReference]", "AL1[AllergyIntolerance]",
                "DG1[Condition]", "IN1[Coverage]", "NK1[RelatedPerson]", "SPM[Specimen]", "RXO[MedicationRequest]"):
        assert segments[key]["rows"], key
    vocab = load("vocab.json")
    assert vocab["AdministrativeSex"]["F"][0] == "female"
    assert load("structures.json")["ADT_A08"] == "ADT_A01"
