"""``telehub import``: bundles, NDJSON, gzip, idempotence, resume and bad-line handling."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from fhir_gateway.app import build_services
from fhir_gateway.importer.run import run_import
from fhir_gateway.storage.tables import resource
from tests.fhir_gateway.conftest import make_settings


def counts(services: Any) -> dict[str, int]:
    with services.repository.transaction() as conn:
        rows = conn.execute(select(resource.c.rtype, func.count()).where(resource.c.deleted.is_(False))
                            .group_by(resource.c.rtype)).all()
    return {r[0]: int(r[1]) for r in rows}


def manifest_patients(shared: Path) -> int:
    return len((shared / "synthea/small/manifest.tsv").read_text().strip().splitlines()) - 1


def test_synthea_bundles_twice_in_any_order_create_no_duplicates(database_url: str, shared_data: Path,
                                                                  tmp_path: Path) -> None:
    settings = make_settings(database_url)
    services = build_services(settings)
    bundles = sorted((shared_data / "synthea/small/bundles").glob("*.json"))[:4]
    report = run_import(settings, bundles, progress=False, services=services, state_dir=tmp_path / "s1")
    assert not report.failed, report.failed
    first = counts(services)
    run_import(settings, list(reversed(bundles)), progress=False, services=services, state_dir=tmp_path / "s2")
    assert counts(services) == first
    ndjson_orgs = {json.loads(line)["id"] for line in
                   (shared_data / "synthea/small/ndjson/Organization.ndjson").read_text().splitlines()}
    assert first["Patient"] == 4
    assert first["Organization"] <= len(ndjson_orgs)
    # every reference inside the imported data resolves to a stored resource
    with services.repository.transaction() as conn:
        bodies = [services.repository._decode(r.rtype, r.fid, r.version, r.body)
                  for r in conn.execute(select(resource)).all()]
    stored = {f"{b['resourceType']}/{b['id']}" for b in bodies}
    refs = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "reference" and isinstance(x, str) and not x.startswith("#"):
                    refs.add(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for b in bodies:
        walk(b)
    assert refs <= stored
    services.repository.engine.dispose()


def test_ndjson_gz_and_directory_import_keeps_ids(sqlite_url: str, shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "synthea/small/ndjson/Patient.ndjson"
    gz = tmp_path / "in" / "Patient.ndjson.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(src.read_bytes()))
    settings = make_settings(sqlite_url)
    services = build_services(settings)
    report = run_import(settings, [gz.parent], progress=False, services=services, state_dir=tmp_path / "s")
    assert report.resources == 10 and not report.failed
    ids = {json.loads(line)["id"] for line in src.read_text().splitlines()}
    with services.repository.transaction() as conn:
        assert set(conn.execute(select(resource.c.fid).where(resource.c.rtype == "Patient")).scalars()) == ids
    services.repository.engine.dispose()


def _bad_ndjson(tmp_path: Path, shared_data: Path) -> Path:
    lines = (shared_data / "synthea/small/ndjson/Patient.ndjson").read_text().splitlines()
    bad = tmp_path / "bad.ndjson"
    broken = json.loads(lines[4])
    broken["birthDate"] = "not a date"
    bad.write_text("\n".join([*lines[:3], "{not json", json.dumps(broken), *lines[5:]]) + "\n")
    return bad


def test_bad_lines_are_reported_with_file_and_line_and_skipped(sqlite_url: str, shared_data: Path,
                                                               tmp_path: Path) -> None:
    bad = _bad_ndjson(tmp_path, shared_data)
    settings = make_settings(sqlite_url)
    services = build_services(settings)
    report = run_import(settings, [bad], on_error="skip", batch_size=3, progress=False, services=services,
                        state_dir=tmp_path / "s")
    assert [f.split(": ")[0] for f in report.failed] == [f"{bad}:4", f"{bad}:5"]
    assert "not a date" not in " ".join(report.failed)  # no PHI (values) in error reports
    assert counts(services)["Patient"] == 8
    services.repository.engine.dispose()


def test_stop_on_error_then_resume_after_fixing(sqlite_url: str, shared_data: Path, tmp_path: Path) -> None:
    bad = _bad_ndjson(tmp_path, shared_data)
    settings = make_settings(sqlite_url)
    services = build_services(settings)
    report = run_import(settings, [bad], on_error="stop", batch_size=2, progress=False, services=services,
                        state_dir=tmp_path / "s")
    assert report.failed == [f"{bad}:4: not valid JSON (character 1)"]
    assert counts(services)["Patient"] == 3
    # resuming skips what was committed and stops again at the same place
    again = run_import(settings, [bad], on_error="skip", batch_size=2, progress=False, services=services,
                       state_dir=tmp_path / "s")
    assert again.records == 6  # lines 5..10 minus the bad 5 counted as records: 4 good after it + the bad one
    assert counts(services)["Patient"] == 8
    services.repository.engine.dispose()


def test_interrupted_import_resumes_without_redoing_work(sqlite_url: str, shared_data: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_gateway.importer import run as run_module

    src = tmp_path / "obs.ndjson"
    shutil.copy(shared_data / "synthea/small/ndjson/Observation.ndjson", src)
    settings = make_settings(sqlite_url)
    services = build_services(settings)
    original = run_module.Importer._commit
    calls = {"n": 0}

    def crash_on_fifth(self, batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(run_module.Importer, "_commit", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        run_import(settings, [src], batch_size=100, progress=False, services=services, state_dir=tmp_path / "s")
    assert counts(services)["Observation"] == 400
    monkeypatch.setattr(run_module.Importer, "_commit", original)
    report = run_import(settings, [src], batch_size=100, progress=False, services=services,
                        state_dir=tmp_path / "s")
    assert report.records == 480
    assert counts(services)["Observation"] == 880
    services.repository.engine.dispose()


def test_cli_import_command(sqlite_url: str, shared_data: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_gateway.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEHUB_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(main, ["import", "--no-progress",
                                       str(shared_data / "synthea/small/ndjson/Practitioner.ndjson")])
    assert result.exit_code == 0, result.output
    assert "imported 14 resources" in result.output
    assert (tmp_path / "var/import-state").is_dir()


def test_import_is_audited_with_the_patients_it_touched(sqlite_url: str, shared_data: Path, tmp_path: Path) -> None:
    import os

    settings = make_settings(sqlite_url)
    services = build_services(settings, audit_key=os.urandom(32))
    run_import(settings, [shared_data / "synthea/small/ndjson/Patient.ndjson"], progress=False, services=services,
               state_dir=tmp_path / "s")
    assert services.audit is not None
    with services.repository.transaction() as conn:
        events = list(services.audit.entries(conn))
        assert services.audit.verify(conn).ok
    assert len(events) == 1 and events[0]["action"] == "C"
    patients = {e["what"]["reference"] for e in events[0]["entity"] if e["role"]["code"] == "1"}
    assert len(patients) == 10
    services.repository.engine.dispose()
