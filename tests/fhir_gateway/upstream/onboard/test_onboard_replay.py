"""``telehub onboard --replay``: fully offline runs against the shipped replay sets (built from
sandbox_fixtures/recordings), the Epic RS384 assertion shape, and the JSON/HTML/terminal reports."""
from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner

from fhir_gateway.upstream.onboard import render
from fhir_gateway.upstream.onboard.command import onboard as onboard_command
from fhir_gateway.upstream.onboard.replay import load_replay, serving
from fhir_gateway.upstream.onboard.report import Report
from fhir_gateway.upstream.onboard.runner import Options, onboard
from fhir_gateway.upstream.onboard.testkeys import throwaway_key

REPLAYS = Path(__file__).resolve().parents[4] / "sandbox_fixtures" / "onboard_replay"


def cli(tmp: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp / "report.json"
    result = CliRunner().invoke(onboard_command, [*args, "--connections-dir", str(tmp / "conn"), "--out", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output, json.loads(out.read_text())


def by_name(report: dict[str, Any], area: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["area"] == area}


def test_epic_replay(tmp_path: Path) -> None:
    code, output, report = cli(tmp_path, "--vendor", "epic", "--replay", str(REPLAYS / "epic"))
    assert code == 0 and report["mode"] == "replay" and report["status"] == "warn"
    assert report["server"]["name"] == "Epic" and report["server"]["fhirVersion"] == "4.0.1"
    assert all(c["status"] == "pass" for c in report["checks"] if c["area"] in ("discovery", "capability"))
    token = by_name(report, "token")
    assert token["access token"]["status"] == "pass"
    assert token["granted scopes"]["metrics"]["granted_count"] == 151  # the recorded backend-token scope list
    probes = by_name(report, "probe")
    for rtype in ("AllergyIntolerance", "Condition", "Encounter", "MedicationRequest", "DocumentReference"):
        assert probes[f"{rtype} search"]["status"] == "pass"
        assert probes[f"{rtype} read"]["status"] == "pass"  # answered with the searchset's own entry
    assert probes["Condition search"]["metrics"]["outcome_entries"] == 1  # Epic's outcome entry, kept apart
    assert probes["DiagnosticReport search"]["status"] == "warn"
    assert probes["DiagnosticReport search"]["reason"] == "this call is not in the replay set"
    assert "DocumentReference page size" not in by_name(report, "paging")  # replay sizes prove nothing about _count
    assert "telehub onboard: epic" in output and "WARN" in output


def test_cerner_replay_pages_and_discovered_token_url(tmp_path: Path) -> None:
    code, _, report = cli(tmp_path, "--vendor", "cerner", "--replay", str(REPLAYS / "cerner"))
    assert code == 0
    endpoint = by_name(report, "discovery")["token endpoint"]
    assert endpoint["status"] == "warn" and "/hosts/fhir-ehr-code.cerner.com/" in endpoint["reason"]
    assert "connection file uses the advertised URL" in endpoint["next_step"]
    paging = by_name(report, "paging")["Encounter"]
    assert paging["status"] == "warn" and "-pageContext" in paging["reason"]
    assert "not in the replay set" in paging["reason"]
    assert by_name(report, "probe")["Encounter search"]["metrics"]["first_page"] == 10
    written = tomllib.loads(Path(report["connection_file"]).read_text())
    assert written["token_url"].endswith("/hosts/fhir-ehr-code.cerner.com/protocols/oauth2/profiles/smart-v1/token")
    assert written["client_secret"].startswith("env:TELEHUB_SECRET_") and "replay-secret" not in str(written)


def test_athena_replay_has_discovery_only(tmp_path: Path) -> None:
    code, _, report = cli(tmp_path, "--vendor", "athena", "--replay", str(REPLAYS / "athena"))
    assert code == 0
    assert by_name(report, "discovery")["client authentication"]["status"] == "pass"
    probes = by_name(report, "probe")
    assert probes and all(p["status"] == "warn" and "replay set" in p["reason"] for p in probes.values())
    assert tomllib.loads(Path(report["connection_file"]).read_text())["practice"] == "195900"


def test_epic_replay_sends_an_rs384_assertion_with_jku(tmp_path: Path) -> None:
    replay = load_replay(REPLAYS / "epic")
    manifest = replay.manifest
    options = Options(vendor="epic", base_url=manifest["base_url"], tenant="t", client_id=manifest["client_id"],
                      key_file=throwaway_key(tmp_path / "k.pem"), key_id="kid-1", jku=manifest["jku"],
                      patient=manifest["patient"], connections_dir=None, mode="replay")
    with serving(replay):
        report = onboard(options, sleep=lambda _s: None, unrecorded=replay.unmatched)
    assert report.find("token", "access token").status == "pass"  # type: ignore[union-attr]
    posts = [(url, body) for method, url, body in replay.seen if method == "POST"]
    assert len(posts) == 1 and posts[0][0].endswith("/oauth2/token")
    form = dict(parse_qsl(posts[0][1].decode()))
    assert form["grant_type"] == "client_credentials" and "scope" not in form  # Epic grants the registration's
    header_b64, claims_b64, _ = form["client_assertion"].split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    assert header["alg"] == "RS384" and header["kid"] == "kid-1" and header["jku"] == manifest["jku"]
    assert claims["iss"] == claims["sub"] == manifest["client_id"] and claims["aud"] == posts[0][0]
    assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["jti"]
    assert replay.unmatched  # DiagnosticReport, Immunization: not recorded, reported as such


def test_replay_directory_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(onboard_command, ["--vendor", "epic", "--replay", str(tmp_path)])
    assert result.exit_code == 1 and "no request/response pairs" in result.output
    (tmp_path / "01-x.json").write_text('{"request": {}}')
    result = CliRunner().invoke(onboard_command, ["--vendor", "epic", "--replay", str(tmp_path)])
    assert result.exit_code == 1 and "01-x.json: not a request/response pair" in result.output


def sample_report() -> Report:
    report = Report("epic", "https://ehr.example/<b>", "clinic", "live", "2026-01-01T00:00:00+00:00")
    report.add("probe", "Observation search", "warn", "refused without category; <script>alert(1)</script>",
               "Observation search needs category: add it to the app's requests")
    report.add("token", "access token", "fail", "token request refused (401): invalid_client", "check the client id")
    report.add("discovery", "smart-configuration", "pass", "ok")
    report.latencies_ms += [10.0, 20.0, 400.0]
    report.page_sizes += [7, 4]
    return report


def test_html_report_is_escaped_and_self_contained() -> None:
    page = render.to_html(sample_report())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "https://ehr.example/&lt;b&gt;" in page
    assert "src=" not in page and "<link" not in page  # nothing fetched: one self-contained file
    assert "Next step: Observation search needs category: add it to the app&#x27;s requests" in page
    assert '<td class="fail">FAIL</td>' in page and "1 pass, 1 warn, 1 fail" in page


def test_json_and_terminal_reports() -> None:
    report = sample_report()
    data = json.loads(render.to_json(report))
    assert data["status"] == "fail" and data["counts"] == {"pass": 1, "warn": 1, "fail": 1}
    assert data["latency"]["p50_ms"] == 20.0 and data["latency"]["max_ms"] == 400.0
    assert data["page_sizes"] == {"pages": 2, "min": 4, "max": 7}
    assert data["checks"][0]["next_step"].startswith("Observation search needs category")
    coloured = render.to_terminal(report, colour=True)
    plain = render.to_terminal(report, colour=False)
    assert "\x1b[" in coloured and "\x1b[" not in plain
    assert "→ Observation search needs category" in plain and "overall FAIL" in plain


@pytest.mark.parametrize("args,message", [
    (["--vendor", "epic"], "--base-url is required"),
    (["--vendor", "epic", "--base-url", "https://x", "--out", "r.txt"], "must end in .html or .json"),
    (["--vendor", "epic", "--base-url", "https://x", "--key", "k", "--secret-stdin"], "not both"),
])
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(onboard_command, args)
    assert result.exit_code == 2 and message in result.output


def test_cli_secret_from_stdin_and_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(onboard_command, [
        "--vendor", "cerner", "--replay", str(REPLAYS / "cerner"), "--tenant", "clinic-b", "--secret-stdin",
        "--connections-dir", str(tmp_path / "conn"), "--out", str(out)], input="typed-secret-value\n")
    assert result.exit_code == 0, result.output
    written = (tmp_path / "conn" / "clinic-b.toml").read_text()
    assert 'client_secret = "env:TELEHUB_SECRET_CLINIC_B"' in written and "typed-secret-value" not in written
    assert written.startswith("# Written by telehub onboard (replay)")
    page = out.read_text()
    assert "Onboarding report: cerner" in page and "typed-secret-value" not in page
    assert "set TELEHUB_SECRET_CLINIC_B to the client secret" in page
    assert "typed-secret-value" not in result.output
