"""``telehub hl7 convert`` both ways and ``send`` (the click group, run with CliRunner)."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fhir_gateway.hl7.commands import hl7
from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.server import ListenerConfig
from tests.fhir_gateway.hl7.conftest import adt
from tests.fhir_gateway.hl7.test_server import Running


def test_convert_prints_the_bundle(tmp_path: Path) -> None:
    path = tmp_path / "m.hl7"
    path.write_bytes(adt("C-1", "M1").replace(b"\r", b"\n"))
    result = CliRunner().invoke(hl7, ["convert", str(path)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    assert bundle["type"] == "transaction"
    assert "Patient" in {e["resource"]["resourceType"] for e in bundle["entry"]}


def test_convert_reads_stdin_and_reports_refusals_without_a_traceback() -> None:
    result = CliRunner().invoke(hl7, ["convert", "-"], input="MSH|^~\\&|A|B|||2026||ZZZ^Z01|1|P|2.5.1\r")
    assert result.exit_code == 1
    assert "UnsupportedMessage (AR 200)" in result.output


def test_convert_to_v2(tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:oid:1.2", "value": "7"}],
                      "name": [{"family": "Doe"}]}},
        {"resource": {"resourceType": "Appointment", "id": "a1", "status": "cancelled",
                      "participant": [{"actor": {"reference": "Patient/p1"}, "status": "declined"}]}}]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    result = CliRunner().invoke(hl7, ["convert", str(path), "--to", "v2", "--receiving-application", "EPIC"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "|SIU^S15^SIU_S12|" in lines[0] and "|EPIC|" in lines[0]
    assert any(line.startswith("PID|1||7^^^&1.2&ISO") for line in lines)
    forced = CliRunner().invoke(hl7, ["convert", str(path), "--to", "v2", "--focus", "Patient/p1", "--event",
                                      "ADT^A08"])
    assert forced.exit_code == 0 and "|ADT^A08^ADT_A01|" in forced.output


def test_send_prints_each_ack(sqlite_ingestor: Ingestor, tmp_path: Path) -> None:
    running = Running(sqlite_ingestor, ListenerConfig(port=0, threads=2))
    try:
        path = tmp_path / "two.hl7"
        path.write_bytes(adt("C-1", "M1") + b"\n" + b"MSH|^~\\&|EHR|CLINIC|||2026||ZZZ^Z01|C-2|P|2.5.1\r")
        result = CliRunner().invoke(hl7, ["send", str(path), "--to", f"127.0.0.1:{running.server.port}"])
        assert result.output.splitlines() == ["message 1: AA", "message 2: AR"]
        assert result.exit_code == 1
    finally:
        running.close()
