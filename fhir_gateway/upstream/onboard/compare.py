"""The server's own documents versus the vendor profile (pure: no I/O).

The smart-configuration (SMART App Launch 2 §2.1) says how to get a token; the CapabilityStatement
(https://hl7.org/fhir/R4/capabilitystatement.html) says which types, interactions and search
parameters the server serves. Each difference from the profile becomes a check with the next step.
"""
from __future__ import annotations

from typing import Any

from fhir_gateway.upstream.onboard.report import Report
from vendor_profiles.schema import VendorProfile

JSON = dict[str, Any]
CAP_INTERACTIONS = {"read": "read", "vread": "vread", "search": "search-type", "create": "create",
                    "update": "update", "patch": "patch", "delete": "delete", "history": "history-instance"}


def compare_smart(report: Report, profile: VendorProfile, config: JSON, token_url_override: str | None,
                  tenant: str = "") -> None:
    auth = profile.auth
    discovered = config.get("token_endpoint")
    wanted = profile.auth.token_url.replace("{tenant}", tenant) if profile.auth.token_url else None
    if token_url_override:
        report.add("discovery", "token endpoint", "warn", f"using the token URL given on the command line; the "
                   f"server advertises {discovered}", "check that the override is really the clinic's token URL")
    elif wanted and wanted != discovered:
        report.add("discovery", "token endpoint", "warn", f"the server advertises {discovered}, the profile "
                   f"expects {wanted}", "the connection file uses the advertised URL; update the profile if "
                   "this holds for every clinic")
    else:
        report.add("discovery", "token endpoint", "pass", f"token endpoint {discovered}")
    methods = config.get("token_endpoint_auth_methods_supported")
    if auth.style != "none" and isinstance(methods, list):
        if auth.client_auth in methods:
            report.add("discovery", "client authentication", "pass", f"{auth.client_auth} is offered")
        else:
            report.add("discovery", "client authentication", "fail",
                       f"the profile uses {auth.client_auth}; the server offers {', '.join(map(str, methods))}",
                       f"register the app with one of {', '.join(map(str, methods))} and set auth.client_auth "
                       "in the vendor profile")
    grants = config.get("grant_types_supported")
    if auth.style != "none" and isinstance(grants, list) and auth.grant_type not in grants:
        report.add("discovery", "grant type", "fail", f"{auth.grant_type} is not among {', '.join(map(str, grants))}",
                   "ask the vendor to enable backend services (client_credentials) for this app")
    algs = config.get("token_endpoint_auth_signing_alg_values_supported")
    if auth.assertion_alg and isinstance(algs, list) and auth.assertion_alg not in algs:
        report.add("discovery", "assertion algorithm", "fail", f"{auth.assertion_alg} is not among {', '.join(algs)}",
                   f"sign the client assertion with one of {', '.join(algs)} (auth.assertion_alg)")
    caps = config.get("capabilities")
    if isinstance(caps, list):
        needed = {"v1": ["permission-v1"], "v2": ["permission-v2"], "v1+v2": []}[profile.scopes.style]
        missing = [c for c in needed if c not in caps]
        if missing:
            report.add("discovery", "scope syntax", "warn", f"the server does not advertise {', '.join(missing)}",
                       "request scopes in the syntax the server advertises (scopes.style in the profile)")
        else:
            styles = [c for c in caps if str(c).startswith("permission-v")]
            report.add("discovery", "scope syntax", "pass", f"advertises {', '.join(styles) or 'no scope version'}")


def cap_resources(capability: JSON) -> dict[str, JSON]:
    """The server-mode resources of a CapabilityStatement by type."""
    out: dict[str, JSON] = {}
    for rest in capability.get("rest") or []:
        if rest.get("mode", "server") != "server":
            continue
        for res in rest.get("resource") or []:
            if isinstance(res.get("type"), str):
                out[res["type"]] = res
    return out


def cap_interactions(resource: JSON) -> set[str]:
    return {str(i.get("code")) for i in resource.get("interaction") or []}


def cap_search_params(resource: JSON) -> set[str]:
    return {str(p.get("name")) for p in resource.get("searchParam") or []}


def compare_capability(report: Report, profile: VendorProfile, capability: JSON, types: list[str]) -> None:
    software = capability.get("software") or {}
    report.server = {k: str(software[k]) for k in ("name", "version", "releaseDate") if k in software}
    report.server["fhirVersion"] = str(capability.get("fhirVersion", ""))
    if str(capability.get("fhirVersion", "")).startswith("4.0"):
        report.add("capability", "FHIR version", "pass", f"FHIR {capability.get('fhirVersion')}")
    else:
        report.add("capability", "FHIR version", "fail", f"the server speaks FHIR {capability.get('fhirVersion')}",
                   "use the clinic's FHIR R4 (4.0.x) base URL")
    formats = [str(f) for f in capability.get("format") or []]
    if formats and not any("json" in f for f in formats):
        report.add("capability", "JSON", "fail", f"formats offered: {', '.join(formats)}",
                   "ask the vendor for the JSON endpoint; the hub speaks application/fhir+json only")
    served = cap_resources(capability)
    for rtype in types:
        spec = profile.resources.get(rtype)
        res = served.get(rtype)
        if res is None:
            report.add("capability", rtype, "warn", f"the profile claims {rtype}, the CapabilityStatement does "
                       "not list it", f"expect {rtype} calls to fail; remove it from the profile if the probe fails")
            continue
        have = cap_interactions(res)
        claimed = [i for i in (spec.interactions if spec else ["read", "search"]) if i in ("read", "search")]
        missing = [i for i in claimed if CAP_INTERACTIONS[i] not in have]
        params = cap_search_params(res)
        needed = sorted({p for combo in (spec.required_params if spec else []) for p in combo
                         if not p.startswith("-") and p not in ("_id",)} - params) if params else []
        if missing:
            report.add("capability", rtype, "warn", f"{rtype}: {', '.join(missing)} not advertised",
                       f"the probe below shows whether {rtype} {' and '.join(missing)} really works")
        elif needed:
            report.add("capability", rtype, "warn", f"{rtype}: the profile uses parameter(s) "
                       f"{', '.join(needed)} the CapabilityStatement does not list",
                       "check the probe result; update resources." + rtype + ".required_params if it fails")
        else:
            report.add("capability", rtype, "pass", f"{rtype}: {', '.join(claimed)} advertised",
                       metrics={"search_params": len(params)})
