"""Per-clinic outbound settings and queueing a change inside the writing transaction."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from fhir_gateway.hl7.clinics import enqueue_change, load_clinics
from fhir_gateway.hl7.commands import hl7
from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.outbound_queue import OutboundQueue
from fhir_gateway.hl7.sealing import unseal
from fhir_gateway.hl7.tables import hl7_outbound
from mappers.hl7v2.outbound import Change

CLINICS = """
[clinics.north]
destination = "127.0.0.1:2599"
version = "2.6"
receiving_application = "EPIC"
receiving_facility = "NORTH"
namespaces = { "urn:oid:1.2.3" = "NORTH_MRN" }
"""
PATIENT = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:oid:1.2.3", "value": "7"}],
           "name": [{"family": "Doe"}]}


def test_load_clinics(tmp_path: Path) -> None:
    path = tmp_path / "clinics.toml"
    path.write_text(CLINICS)
    north = load_clinics(path)["north"]
    assert north.destination == "127.0.0.1:2599"
    assert (north.config.version, north.config.receiving_facility) == ("2.6", "NORTH")
    path.write_text('[clinics.bad]\ndestination = "127.0.0.1:1"\nversoin = "2.5.1"\n')
    with pytest.raises(ValueError):
        load_clinics(path)


def test_enqueue_change_queues_in_the_callers_transaction(sqlite_ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "clinics.toml"
    path.write_text(CLINICS)
    clinic = load_clinics(path)["north"]
    queue = OutboundQueue(sqlite_ingestor.services.repository)
    with queue.repository.transaction(write=True) as conn:
        ids = enqueue_change(conn, queue, clinic, Change(PATIENT, previous={"resourceType": "Patient"}))
        assert enqueue_change(conn, queue, clinic, Change({"resourceType": "Organization"})) == []
    with queue.repository.transaction() as conn:
        row = conn.execute(select(hl7_outbound)).one()
    assert [row.id] == ids and (row.event, row.destination, row.status) == ("ADT^A08", "127.0.0.1:2599", "pending")
    er7 = unseal(queue.repository.codec, row.payload, "hl7_outbound", row.id).decode()
    assert "|EPIC|NORTH|" in er7 and "|2.6\r" in er7 and "7^^^NORTH_MRN&1.2.3&ISO" in er7


def test_cli_enqueue_for_a_clinic(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fhir_gateway.conftest import kek_file_for_tests

    monkeypatch.setenv("TELEHUB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TELEHUB_KEK_FILE", kek_file_for_tests())
    monkeypatch.setenv("TELEHUB_ENV", "test")
    (tmp_path / "clinics.toml").write_text(CLINICS)
    (tmp_path / "p.json").write_text('{"resourceType": "Patient", "id": "p1", "identifier": '
                                     '[{"system": "urn:oid:1.2.3", "value": "7"}]}')
    result = CliRunner().invoke(hl7, ["outbound", "enqueue", str(tmp_path / "p.json"), "--clinic", "north",
                                      "--clinics", str(tmp_path / "clinics.toml")])
    assert result.exit_code == 0, result.output
    assert "queued 1 message(s) for 127.0.0.1:2599" in result.output
    listing = CliRunner().invoke(hl7, ["outbound", "list"])
    assert "127.0.0.1:2599 pending 1" in listing.output
