"""Fixtures for the HL7 v2 mapper tests: the shared sample corpora (read by tests only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def hl7_data(shared_data: Path) -> Path:
    path = shared_data / "hl7v2"
    if not path.is_dir():
        pytest.skip("shared hl7v2 data not present")
    return path


def all_sample_paths(hl7_data: Path) -> list[Path]:
    """The 663 sample messages: FHIR-Converter inputs, LinuxForHealth messages and resources."""
    return sorted(
        [*(hl7_data / "fhir-converter" / "input" / "hl7v2").glob("*.hl7"),
         *(hl7_data / "linuxforhealth" / "test-messages").glob("*/*.hl7"),
         *(hl7_data / "linuxforhealth" / "test-resources").glob("*.hl7")]
    )


def read_message(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig", errors="replace")


@pytest.fixture(scope="session")
def samples(hl7_data: Path) -> list[Path]:
    return all_sample_paths(hl7_data)


@pytest.fixture(scope="session")
def lfh_index(hl7_data: Path) -> list[dict[str, Any]]:
    lines = (hl7_data / "linuxforhealth" / "test-messages" / "index.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ADT_A01 = "\r".join([
    "MSH|^~\\&|ADTApp|GHH^2.16.840.1.1^ISO|EHR|HOSP|20240105083000-0500||ADT^A01^ADT_A01|MSG001|P|2.5.1",
    "EVN|A01|20240105083000-0500",
    "PID|1||MRN123^^^GHH&2.16.840.1.1&ISO^MR||DOE^JANE^Q^^DR||19800214|F|||1 MAIN ST^^BOSTON^MA^02115^USA"
    "||^PRN^PH^^1^617^5551234~^NET^Internet^jane@example.org|||M",
    "PV1|1|I|W1^101^A^GHH||||1234^WELBY^MARCUS^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO||||||||||||V987^^^GHH&2.16.840.1.1&ISO^VN"
    "|||||||||||||||||||||||||20240105080000-0500",
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives",
    "ZPI|1|VIP^Very important",
])


@pytest.fixture
def adt_a01() -> str:
    return ADT_A01
