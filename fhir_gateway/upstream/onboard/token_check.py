"""Get a system token the way the hub will (the profile's auth style) and compare what was granted
with what was requested: vendors drop scopes without saying so (vendor-notes §6.4), and every later
call then fails with 403/404, so onboarding names the missing scopes up front.
"""
from __future__ import annotations

import time
from typing import Any

from fhir_gateway.upstream.client import UpstreamClient
from fhir_gateway.upstream.errors import UpstreamAuthError, UpstreamConfigError
from fhir_gateway.upstream.onboard.report import Report
from fhir_gateway.upstream.scopes import compare


def _next_step_for(error: str, profile_name: str) -> str:
    if "invalid_scope" in error:
        return ("request scopes the registration allows, in the vendor's syntax (Cerner: v2 .rs scopes, no "
                "wildcards); check scopes.request in the profile")
    if "invalid_client" in error or "unauthorized_client" in error:
        hint = " Epic: new client ids take up to 12 h to reach a customer, and backend apps need a JKU." \
            if profile_name == "epic" else ""
        return "check the client id and that its key or secret is the one registered with the vendor." + hint
    if "access_denied" in error:
        return "the vendor refused the request: send explicit scopes (athena has no defaults)"
    return "check the token URL, the client id and the credentials, then onboard again"


def check_token(report: Report, client: UpstreamClient, probe_types: list[str]) -> list[str] | None:
    """The granted scopes when a token was obtained ([] when unknown), None when no token (no probes)."""
    profile = client.profile
    if profile.auth.style == "none":
        report.add("token", "access token", "pass", "the profile needs no token")
        return []
    started = time.perf_counter()
    try:
        client.tokens.token()
    except UpstreamConfigError as exc:
        report.add("token", "access token", "fail", str(exc),
                   "give the credentials: --client-id with --key FILE (private_key_jwt) or --secret-stdin")
        return None
    except UpstreamAuthError as exc:
        report.add("token", "access token", "fail", str(exc), _next_step_for(str(exc), profile.name))
        return None
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    granted_fn: Any = getattr(client.tokens, "granted", None)
    granted: str | None = granted_fn() if callable(granted_fn) else None
    report.add("token", "access token", "pass", f"token obtained with {profile.auth.client_auth}", latency_ms=elapsed)
    requested = client.connection.scope_list()
    if granted is None:
        report.add("token", "granted scopes", "warn", "the token came from the caller; granted scopes unknown",
                   "run onboarding with the app's own credentials to see what the vendor grants")
        return []
    given = granted.split()
    if requested:
        scopes = compare(profile, requested, granted)
        if scopes.ok:
            report.add("token", "granted scopes", "pass", f"all {len(requested)} requested scopes granted",
                       requested=requested, granted=given)
        else:
            report.add("token", "granted scopes", "fail", scopes.advice(),
                       "fix the app registration or request the scopes the vendor grants (the probes of the "
                       "missing types will fail)", requested=requested, granted=given, missing=scopes.missing)
    elif given:
        report.add("token", "granted scopes", "pass", f"{len(given)} scopes granted by the app registration "
                   "(the profile requests none)", granted_count=len(given))
    else:
        report.add("token", "granted scopes", "warn", "no scopes requested and none reported in the token response",
                   "set scopes in the connection if the vendor needs explicit scopes")
    if given:
        uncovered = [t for t in probe_types if not covers(given, t)]
        if uncovered:
            report.add("token", "scope coverage", "warn", f"no granted scope covers {', '.join(uncovered)}",
                       f"request {', '.join(f'system/{t}.rs' for t in uncovered)} (and allow them in the app "
                       "registration) if the clinic's data of these types is needed")
        else:
            report.add("token", "scope coverage", "pass", f"granted scopes cover all {len(probe_types)} probed types")
    return given


def covers(granted: list[str], rtype: str) -> bool:
    for scope in granted:
        who, _, rest = scope.partition("/")
        name, _, perms = rest.partition(".")
        perms = perms.split("?")[0]
        readable = perms in ("read", "*") or (set(perms) <= set("cruds") and "r" in perms)
        if who in ("system", "user", "patient") and name in (rtype, "*") and readable:
            return True
    return False
