"""The onboarding run, step by step: discovery → CapabilityStatement → token → probes → connection file.

Each step adds checks to the :class:`~.report.Report` and the run goes as far as it can: without a
token there are no probes, but discovery is still reported. Everything time-dependent and the HTTP
session are passed in, so the same run works live, against the sandbox in-process, and offline.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from fhir_gateway.upstream import discovery
from fhir_gateway.upstream.audit import MemoryAuditor
from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.connection import Connection, SecretRef
from fhir_gateway.upstream.errors import UpstreamError
from fhir_gateway.upstream.factory import build_client
from fhir_gateway.upstream.onboard import connection_file
from fhir_gateway.upstream.onboard.compare import compare_capability, compare_smart
from fhir_gateway.upstream.onboard.plan import Probe, capability_plan, profile_plan
from fhir_gateway.upstream.onboard.probes import ProbeContext, run_probe
from fhir_gateway.upstream.onboard.report import Report, Status
from fhir_gateway.upstream.onboard.token_check import check_token, covers
from fhir_gateway.upstream.tokens import TokenSource
from vendor_profiles import ProfileRegistry, VendorProfile

JSON = dict[str, Any]
SLOW_P95_MS = 2000.0


@dataclass
class Options:
    vendor: str
    base_url: str
    tenant: str
    client_id: str | None = None
    key_file: str | None = None
    secret: str | None = None  # typed on stdin; never written anywhere
    key_id: str | None = None
    jku: str | None = None
    token_url: str | None = None
    practice: str | None = None
    patient: str | None = None
    scopes: list[str] | None = None
    page_size: int = 10
    max_pages: int = 3
    connections_dir: str | None = "var/connections"
    mode: str = "live"
    notes: list[str] = field(default_factory=list)


def make_connection(options: Options, profile: VendorProfile) -> Connection:
    key = SecretRef(f"file:{Path(options.key_file).resolve()}") if options.key_file else None
    secret = (connection_file.StdinSecret(options.secret, connection_file.secret_env_name(options.tenant))
              if options.secret is not None else None)
    return Connection(tenant=options.tenant, profile=profile, base_url=options.base_url.rstrip("/"),
                      client_id=options.client_id, private_key=key, key_id=options.key_id, jku=options.jku,
                      client_secret=secret, token_url=options.token_url,
                      scopes=tuple(options.scopes) if options.scopes else None, practice=options.practice)


def _discover(report: Report, session: requests.Session, conn: Connection,
              options: Options) -> tuple[JSON | None, JSON | None]:
    config: JSON | None = None
    capability: JSON | None = None
    try:
        config = discovery.smart_configuration(session, conn)
        report.add("discovery", "smart-configuration", "pass",
                   f"served at {conn.profile.discovery.smart_configuration} under the base")
        compare_smart(report, conn.profile, config, options.token_url, conn.tenant)
    except UpstreamError as exc:
        report.add("discovery", "smart-configuration", "fail", str(exc),
                   "check the base URL: it must be the clinic's FHIR R4 root (Cerner: with the tenant id; athena: "
                   "…/fhir/r4/), where .well-known/smart-configuration is served")
    try:
        capability = discovery.capability_statement(session, conn)
        report.add("discovery", "CapabilityStatement", "pass",
                   f"served at {conn.profile.discovery.capability_statement} under the base")
    except UpstreamError as exc:
        report.add("discovery", "CapabilityStatement", "fail", str(exc),
                   "check the base URL and that /metadata answers FHIR JSON")
    return config, capability


def _plan(report: Report, profile: VendorProfile, capability: JSON | None, patient: str) -> list[Probe]:
    if profile.name == "generic-r4" and capability is not None:
        return capability_plan(capability, patient)
    return profile_plan(profile, patient)


def _pick_patient(report: Report, client: UpstreamClient) -> str | None:
    """generic-r4 without --patient: the first patient the server lists (plain servers allow that)."""
    try:
        bundle = client.get(client.connection.url("Patient"), {"_count": "1", **client.tenancy_params()},
                            resource_type="Patient", search=True)
    except UpstreamError:
        return None
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
            report.add("probe", "test patient", "warn", "no --patient given: using the first patient the server "
                       "lists", "pass a known test patient with --patient for repeatable results")
            return str(resource["id"])
    return None


def _summary(report: Report, client: UpstreamClient) -> None:
    latency = report.latency_summary()
    if latency:
        status: Status = "warn" if latency["p95_ms"] > SLOW_P95_MS else "pass"
        report.add("performance", "latency", status, f"{int(latency['calls'])} calls: p50 {latency['p50_ms']} ms, "
                   f"p95 {latency['p95_ms']} ms, max {latency['max_ms']} ms",
                   "expect slow syncs; raise rate_limit.read_timeout_s if calls time out" if status == "warn" else "",
                   **latency)
    limit = client.profile.rate_limit
    waited = round(getattr(client.throttle, "waited", 0.0), 3)
    report.add("performance", "rate limit", "pass", f"self-throttled at {limit.requests_per_second}/s "
               f"(burst {limit.burst}); waited {waited} s", requests_per_second=limit.requests_per_second)


def _write_connection(report: Report, conn: Connection, options: Options) -> None:
    if options.connections_dir is None:
        return
    auth_failed = any(c.area in ("token",) and c.status == "fail" and c.name == "access token" for c in report.checks)
    if auth_failed and options.mode == "live":
        report.add("connection", "connection file", "fail", "not written: no token could be obtained",
                   "fix the token failure above and onboard again")
        return
    header = [f"Written by telehub onboard ({options.mode}) at {report.started_at}: {report.status.upper()}",
              f"{report.counts()['fail']} fail, {report.counts()['warn']} warn; see the onboarding report."]
    path = connection_file.write(conn, options.connections_dir, header=header)
    report.connection_file = str(path)
    step = ""
    if isinstance(conn.client_secret, connection_file.StdinSecret):
        step = f"set {conn.client_secret.ref[4:]} to the client secret before running telehub sync"
    elif options.mode == "replay":
        step = "replay run: point private_key / client_secret at the clinic's real credentials before syncing"
    report.add("connection", "connection file", "warn" if step else "pass",
               f"written to {path}; use it with: telehub sync --tenant {conn.tenant} --patient <id>", step)


def onboard(options: Options, *, session: requests.Session | None = None, profiles: ProfileRegistry | None = None,
            tokens: TokenSource | None = None, clock: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep, unrecorded: list[str] | None = None) -> Report:
    """Run every onboarding step; ``tokens`` replaces token acquisition (tests), ``unrecorded`` is the
    replay set's list of unanswered requests (so probes can tell "not recorded" from "no answer")."""
    session = session or requests.Session()
    profile = (profiles or ProfileRegistry.load()).get(options.vendor)
    report = Report(profile.name, options.base_url, options.tenant, options.mode,
                    datetime.now(UTC).isoformat(timespec="seconds"))
    conn = make_connection(options, profile)
    config, capability = _discover(report, session, conn, options)
    if options.token_url is None and config and isinstance(config.get("token_endpoint"), str):
        conn = dataclasses.replace(conn, token_url=config["token_endpoint"])  # the server's word wins
    client = build_client(conn, session=session, auditor=MemoryAuditor(), clock=clock, sleep=sleep)
    if tokens is not None:
        client.tokens = tokens
    patient = options.patient
    plan = _plan(report, profile, capability, patient or "?")
    if capability is not None:
        compare_capability(report, profile, capability, [p.resource_type for p in plan])
    granted = check_token(report, client, [p.resource_type for p in plan])
    if granted is not None:
        if patient is None and profile.name == "generic-r4":
            patient = _pick_patient(report, client)
        if patient is None:
            report.add("probe", "test patient", "warn", "no test patient: reads and searches were not probed",
                       "run again with --patient <id of a test patient in this EHR>")
        else:
            plan = _plan(report, profile, capability, patient)
            ctx = ProbeContext(report, client, options.page_size, options.max_pages,
                               unrecorded if unrecorded is not None else [], offline=options.mode == "replay")
            for probe in plan:
                if granted and not covers(granted, probe.resource_type):
                    report.add("probe", f"{probe.resource_type} search", "warn", "not probed: the token has no "
                               f"scope for {probe.resource_type}", "see the scope coverage check above")
                    continue
                run_probe(ctx, probe)
    report.calls = client.calls
    _summary(report, client)
    _write_connection(report, conn, options)
    return report
