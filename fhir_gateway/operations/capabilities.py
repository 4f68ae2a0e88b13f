"""``/metadata``: the CapabilityStatement, generated from what is really registered.

Interactions come from the route table, search parameters from the search
registry, operations from the operation registry, profiles from US Core's
server statement. Nothing here is hand-listed per type.
https://hl7.org/fhir/R4/capabilitystatement.html
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir_gateway import definitions
from fhir_gateway.operations.registry import Operation, operations, register
from fhir_gateway.rest.context import Interaction
from fhir_gateway.rest.messages import FhirRequest, FhirResponse
from fhir_gateway.search.registry import SearchRegistry

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type")
SUPPORTED_SEARCH_TYPES = ("number", "date", "string", "token", "reference", "composite", "quantity", "uri")
SOFTWARE_VERSION = "0.1.0"


def _search_params(registry: SearchRegistry, rtype: str) -> list[dict[str, Any]]:
    out = []
    for code, param in sorted(registry.for_type(rtype).items()):
        if param.type not in SUPPORTED_SEARCH_TYPES or param.expression is None:
            continue
        out.append({"name": code, "definition": param.url, "type": param.type})
    return out


def _reference_params(registry: SearchRegistry, rtype: str) -> list[str]:
    return sorted(c for c, p in registry.for_type(rtype).items() if p.type == "reference" and p.expression)


@lru_cache(maxsize=8)
def _build(base: str, registry_id: int, registry: SearchRegistry, extensions_key: str) -> dict[str, Any]:
    ops = operations()
    uscore = definitions.us_core_profiles()
    revincludes: dict[str, list[str]] = {}
    for param in registry.all():
        if param.type == "reference" and param.expression:
            for target in param.targets or ():
                revincludes.setdefault(target, []).append(f"{param.resource_type}:{param.code}")
    resources = []
    for rtype in sorted(registry.resource_types):
        entry: dict[str, Any] = {"type": rtype, "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}"}
        profiles = uscore["profiles"].get(rtype)
        if profiles:
            entry["supportedProfile"] = profiles
        entry.update({
            "interaction": [{"code": c} for c in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical", "local"],
            "searchInclude": ["*", *(f"{rtype}:{c}" for c in _reference_params(registry, rtype))],
            "searchRevInclude": sorted(set(revincludes.get(rtype, []))),
            "searchParam": _search_params(registry, rtype),
        })
        type_ops = [op for op in ops.values() if op.public and (op.type_level or op.instance)
                    and (op.types is None or rtype in op.types)]
        if type_ops:
            entry["operation"] = [{"name": op.name.lstrip("$"), "definition": op.definition} for op in type_ops]
        resources.append(entry)
    common = [
        {"name": n, "definition": f"http://hl7.org/fhir/SearchParameter/Resource-{n.lstrip('_')}", "type": t}
        for n, t in (("_id", "token"), ("_lastUpdated", "date"), ("_tag", "token"), ("_profile", "uri"),
                     ("_security", "token"), ("_source", "uri"))
    ]
    return {
        "resourceType": "CapabilityStatement",
        "id": "telehub",
        "url": f"{base}/metadata",
        "name": "TelehubFhirServer",
        "title": "Telehub FHIR R4 server",
        "status": "active",
        "date": "2026-11-22",
        "publisher": "Telehub",
        "kind": "instance",
        "instantiates": [uscore["instantiates"]],
        "software": {"name": "Telehub", "version": SOFTWARE_VERSION},
        "implementation": {"description": "Telehub FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json", "application/json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "searchParam": common,
            "operation": [{"name": op.name.lstrip("$"), "definition": op.definition}
                          for op in ops.values() if op.public and op.system],
        }],
    }


def capability_statement(base: str, registry: SearchRegistry,
                         security: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = dict(_build(base, id(registry), registry, ""))
    if security:
        rest = dict(statement["rest"][0])
        rest["security"] = security
        statement["rest"] = [rest]
    return statement


def smart_security(base: str) -> dict[str, Any]:
    """``rest.security`` with the SMART ``oauth-uris`` extension (the Python fhirclient discovers through it)."""
    names = ("authorize", "token", "register", "introspect", "revoke")
    uris = [{"url": name, "valueUri": f"{base}/auth/{name}"} for name in names]
    return {
        "cors": True,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile"}],
        "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                       "extension": uris}],
    }


def capabilities(it: Interaction, req: FhirRequest, rtype: str | None, fid: str | None) -> FhirResponse:
    statement = capability_statement(it.base(), it.services.registry, smart_security(it.base()))
    mode = req.param("mode")
    if mode == "terminology":
        return FhirResponse(400, {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-supported", "diagnostics": "no terminology capabilities"}]})
    return FhirResponse(200, statement, {"Cache-Control": "public, max-age=60"})


register(Operation("$capabilities", "http://hl7.org/fhir/OperationDefinition/CapabilityStatement-implements",
                   system=True, type_level=False, instance=False, types=None, affects_state=False,
                   handler=capabilities, public=False))
