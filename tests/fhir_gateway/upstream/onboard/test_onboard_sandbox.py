"""Onboarding runs against the vendor-flavoured sandbox (each flavour) and the hub itself (generic-r4),
asserting the checks, their statuses and the next-step texts, then using the written connection file."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway.app import build_services
from fhir_gateway.rest.context import Validator
from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.connection import load_connection
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.onboard.report import Report
from fhir_gateway.upstream.onboard.runner import Options, onboard
from fhir_gateway.upstream.sync import sync_patient
from tests.fhir_gateway.conftest import make_settings
from tests.fhir_gateway.upstream.onboard.conftest import (
    BACKEND_CLIENT,
    HUB_TOKEN,
    TOKEN_HOST,
    Keys,
    VendorTokenAdapter,
    base_of,
    session_for,
)
from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox

CORE = ["AllergyIntolerance", "Condition", "DiagnosticReport", "DocumentReference", "Encounter", "Immunization",
        "MedicationRequest", "Observation", "Procedure"]


def run(sandbox: Sandbox, vendor: str, tmp: Path, keys: Keys, *, base: str | None = None,
        grant: Any = None, **extra: Any) -> tuple[Report, VendorTokenAdapter | None]:
    """One onboarding run of ``vendor`` against the sandbox; secrets for Cerner/athena, a key otherwise."""
    vendor_tokens = None
    options = Options(vendor=vendor, base_url=base or base_of(sandbox, vendor), tenant=f"sb-{vendor}",
                      client_id=BACKEND_CLIENT, patient=sandbox.patients["Hintz"], connections_dir=str(tmp / "conn"),
                      page_size=7)
    if vendor in ("cerner", "athena"):
        vendor_tokens = VendorTokenAdapter(sandbox.token, grant or (lambda requested: requested))
        options.secret, options.token_url = "s3cret", f"{TOKEN_HOST}/token"
        options.practice = "195900" if vendor == "athena" else None
    else:
        options.key_file, options.key_id = str(keys.pem_file), "onboard-1"
        if vendor == "epic":  # Epic grants what the registration lists; the sandbox's server needs a scope
            options.jku, options.token_url = "https://hub.example/.well-known/jwks.json", HUB_TOKEN
            options.scopes = [f"system/{t}.rs" for t in ["Patient", *CORE]]
    for key, value in extra.items():
        setattr(options, key, value)
    return onboard(options, session=session_for(sandbox, vendor_tokens), sleep=lambda _s: None), vendor_tokens


def statuses(report: Report, area: str) -> dict[str, str]:
    return {c.name: c.status for c in report.checks if c.area == area}


@pytest.mark.parametrize("vendor", ["epic", "cerner", "athena"])
def test_each_vendor_flavour_onboards(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys, vendor: str) -> None:
    report, tokens = run(sandbox, vendor, tmp_path, backend_keys)
    assert report.find("discovery", "smart-configuration").status == "pass"  # type: ignore[union-attr]
    assert report.find("discovery", "CapabilityStatement").status == "pass"  # type: ignore[union-attr]
    token = report.find("token", "access token")
    assert token is not None and token.status == "pass", token
    probes = statuses(report, "probe")
    assert probes["Patient read"] == "pass"
    for rtype in ("Encounter", "Observation", "Immunization"):
        assert probes[f"{rtype} search"] == "pass", report.find("probe", f"{rtype} search")
        assert probes[f"{rtype} read"] == "pass"
    condition = report.find("probe", "Condition search")
    assert condition is not None
    if vendor == "epic":  # the demo Conditions carry no category, and Epic needs one: every variant was tried
        assert condition.status == "warn" and "found no Condition" in condition.reason
        assert "pick a test patient with data" in condition.next_step
    else:
        assert condition.status == "pass"
    observation = report.find("probe", "Observation search")
    assert observation is not None and observation.metrics["first_page"] == 7
    if vendor == "epic":  # the profile's category is sent, so Epic's 59108 never happens
        assert "category" in observation.metrics["params"]
        assert "outcome entr" in observation.reason  # Epic's 59204 entry is kept as a warning, not a resource
    paging = report.find("paging", "Observation")
    assert paging is not None and paging.status == "pass" and paging.metrics["pages"] >= 2
    expected_style = {"epic": "sessionID", "cerner": "-pageContext", "athena": "cursor"}[vendor]
    assert paging.metrics["style"] == expected_style and paging.metrics["duplicates"] == 0
    assert report.find("token", "granted scopes").status == "pass"  # type: ignore[union-attr]
    assert report.status != "fail", [c for c in report.checks if c.status == "fail"]
    assert report.latencies_ms and report.page_sizes and report.calls > 10
    if tokens is not None:  # client_secret_basic with the profile's explicit scopes
        assert tokens.requests[0]["grant_type"] == "client_credentials"
        assert tokens.requests[0]["authorization"].startswith("Basic ")
        assert "system/Observation." in tokens.requests[0]["scope"]
    written = tomllib.loads(Path(report.connection_file or "").read_text())
    assert written["vendor"] == vendor and written["client_id"] == BACKEND_CLIENT
    if vendor == "epic":
        assert written["private_key"].startswith("file:") and written["jku"].startswith("https://")
    else:
        assert written["client_secret"] == f"env:TELEHUB_SECRET_SB_{vendor.upper()}"
        assert "s3cret" not in Path(report.connection_file or "").read_text()
        check = report.find("connection", "connection file")
        assert check is not None and f"set TELEHUB_SECRET_SB_{vendor.upper()}" in check.next_step


def test_cerner_dropped_v1_scopes_fail_with_advice(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    """Cerner silently drops v1 .read scopes for a v2 client (vendor-notes §6.4)."""
    report, _ = run(sandbox, "cerner", tmp_path, backend_keys, scopes=["system/Patient.read", "system/Observation.rs"],
                    grant=lambda requested: [s for s in requested if not s.endswith(".read")])
    scopes = report.find("token", "granted scopes")
    assert scopes is not None and scopes.status == "fail"
    assert "system/Patient.read" in scopes.reason and "silently drops" in scopes.reason
    assert scopes.metrics["missing"] == ["system/Patient.read"]
    coverage = report.find("token", "scope coverage")
    assert coverage is not None and coverage.status == "warn" and "system/Encounter.rs" in coverage.next_step


def test_generic_r4_against_the_hub_itself(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    """An unknown plain R4 server (the hub, auth=smart): capability-driven probes, token discovered."""
    report, _ = run(sandbox, "generic-r4", tmp_path, backend_keys, base=f"{ORIGIN}/fhir")
    assert report.find("discovery", "token endpoint").reason.endswith("/fhir/auth/token")  # type: ignore[union-attr]
    assert report.find("discovery", "client authentication").status == "pass"  # type: ignore[union-attr]
    assert report.find("token", "granted scopes").status == "pass"  # type: ignore[union-attr]
    probes = statuses(report, "probe")
    assert probes["Patient read"] == "pass"
    # capability-driven: US Core types the hub serves beyond the profile's list are probed too
    assert {"CarePlan search", "Observation search", "Encounter search"} <= set(probes)
    assert all(s in ("pass", "warn") for s in probes.values()), probes
    careplan = report.find("probe", "CarePlan search")  # the hub serves it; generic-r4 requests no scope for it
    assert careplan is not None and careplan.status == "warn" and "no scope for CarePlan" in careplan.reason
    assert probes["Observation search"] == probes["Encounter search"] == "pass"
    paging = report.find("paging", "Observation")
    assert paging is not None and paging.status == "pass" and paging.metrics["style"] == "_offset"  # the hub's links
    assert report.status in ("pass", "warn")


def test_generic_r4_finds_epic_required_category(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    """Against a server the profile knows nothing about, the refusal is read and the next step named."""
    report, _ = run(sandbox, "generic-r4", tmp_path, backend_keys, base=base_of(sandbox, "epic"), token_url=HUB_TOKEN)
    observation = report.find("probe", "Observation search")
    assert observation is not None and observation.status == "warn"
    assert observation.next_step.startswith("Observation search needs category (or code): add it to the app's "
                                            "requests")
    assert "category" in observation.metrics["params"] and observation.metrics["first_page"] == 7


def test_missing_patient_and_bad_credentials(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    report, _ = run(sandbox, "epic", tmp_path, backend_keys, patient="no-such-patient")
    patient = report.find("probe", "Patient read")
    assert patient is not None and patient.status == "fail"
    assert "test patient does not exist" in patient.next_step
    report, _ = run(sandbox, "epic", tmp_path, backend_keys, client_id="not-registered")
    token = report.find("token", "access token")
    assert token is not None and token.status == "fail" and "invalid_client" in token.reason
    assert "12 h" in token.next_step
    assert report.find("connection", "connection file").status == "fail"  # type: ignore[union-attr]
    assert not statuses(report, "probe")


def test_written_connection_file_is_usable_by_sync(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    report, _ = run(sandbox, "generic-r4", tmp_path, backend_keys, base=f"{ORIGIN}/fhir")
    assert report.connection_file == str(tmp_path / "conn" / "sb-generic-r4.toml")
    connection = load_connection("sb-generic-r4", tmp_path / "conn")
    assert connection.token_url == HUB_TOKEN and connection.private_key is not None
    client = build_client(connection, session=session_for(sandbox), auditor=MemoryAuditor())
    built = build_services(make_settings(f"sqlite:///{tmp_path / 'target.sqlite3'}"), audit_key=os.urandom(32))
    target = dataclasses.replace(built, validator=Validator(r4b_models=False))
    try:
        result = sync_patient(target, client, sandbox.patients["Hintz"])
    finally:
        built.repository.engine.dispose()
    assert not result.skipped and result.created > 10 and result.fetched["Observation"] > 7
    assert client.tokens.acquired == 1  # type: ignore[attr-defined]


def test_generic_r4_without_a_patient_picks_one(sandbox: Sandbox, tmp_path: Path, backend_keys: Keys) -> None:
    report, _ = run(sandbox, "generic-r4", tmp_path, backend_keys, base=f"{ORIGIN}/fhir", patient=None,
                    connections_dir=None)
    picked = report.find("probe", "test patient")
    assert picked is not None and picked.status == "warn" and "--patient" in picked.next_step
    assert report.find("probe", "Patient read").status == "pass"  # type: ignore[union-attr]
    assert report.connection_file is None and report.find("connection", "connection file") is None
