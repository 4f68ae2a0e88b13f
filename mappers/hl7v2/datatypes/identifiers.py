"""Identifiers: CX, EI, EIP, HD → Identifier / uri.

IG datatype maps CX[Identifier] (CX.1 value, CX.4 system or assigner, CX.5 type via
IdentifierType, CX.7/.8 period) and EI[Identifier-*] (EI.1 value, EI.2-.4 system).
An assigning authority with an ISO OID or UUID becomes a real system URI; a bare local
namespace becomes the configured placeholder (``urn:id:<name>``).
"""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.datatypes.coded import _OID, lookup, system_uri
from mappers.hl7v2.datatypes.primitives import dtm
from mappers.hl7v2.parser.message import Value


def hd_system(namespace: str, universal: str, kind: str, ctx: Context) -> str | None:
    """HD (namespace, universal id, universal id type) → identifier system URI."""
    kind = kind.upper()
    if universal and (kind in ("ISO", "OID", "HL7") or (kind != "UUID" and _OID.fullmatch(universal))):
        return f"urn:oid:{universal}"
    if universal and kind == "UUID":
        return f"urn:uuid:{universal.lower()}"
    if universal and kind in ("URI", "URL"):
        return universal
    if namespace:
        return system_uri(namespace, ctx)
    if universal:
        return system_uri(universal, ctx)
    return None


def identifier_type(code: str) -> dict[str, Any] | None:
    if not code:
        return None
    mapped = lookup("IdentifierType", code)
    if mapped:
        coding = {"code": mapped[0], "display": mapped[1], "system": mapped[2]}
    else:
        coding = {"code": code, "system": "http://terminology.hl7.org/CodeSystem/v2-0203"}
    return {"coding": [{k: x for k, x in coding.items() if x}]}


@converter("CX[Identifier]")
def cx(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = v.get(1)
    if not value:
        return None
    out: dict[str, Any] = {"value": value}
    auth = v.part(4)
    system = hd_system(auth.get(1), auth.get(2), auth.get(3), ctx)
    if system:
        out["system"] = system
    typ = identifier_type(v.get(5))
    if typ:
        out["type"] = typ
    start, end = dtm(v.get(7), date_only=True), dtm(v.get(8), date_only=True)
    if start or end:
        out["period"] = {k: x for k, x in (("start", start), ("end", end)) if x}
    return out


@converter(
    "EI[Identifier-Extension]", "EI[Identifier-DefaultAssigner]", "EI[Identifier-Organization]",
    "EI[Identifier-System]", "EIP[Identifier-PlacerAssignedIdentifier]", "ST[Identifier]", "PLN[Identifier]",
)
def ei(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = v.get(1)
    if not value:
        return None
    out: dict[str, Any] = {"value": value}
    system = hd_system(v.get(2), v.get(3), v.get(4), ctx)
    if system:
        out["system"] = system
    return out


@converter("EIP[Identifier-FillerAssignedIdentifier]")
def eip_filler(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    """EIP.2 holds the filler's EI (as subcomponents)."""
    filler = v.part(2)
    return ei(filler, ctx, vocab) if filler else None


@converter("CWE[Identifier]", "CE[Identifier]")
def cwe_identifier(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    """CWE used as an identifier (AIS-3): code → value, coding system → system."""
    value = v.get(1)
    if not value:
        return None
    system = system_uri(v.get(3), ctx)
    return {"value": value, "system": system} if system else {"value": value}


@converter("HD[uri]")
def hd_uri(v: Value, ctx: Context, vocab: str | None) -> str | None:
    return hd_system(v.get(1), v.get(2), v.get(3), ctx)


@converter("HD[Identifier]")
def hd_identifier(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    namespace, universal, kind = v.get(1), v.get(2), v.get(3).upper()
    if universal and kind in ("ISO", "UUID"):
        prefix = "urn:oid:" if kind == "ISO" else "urn:uuid:"
        return {"value": prefix + universal, "system": "urn:ietf:rfc:3986"}
    if namespace:
        return {"value": namespace}
    return None


@converter("DLN[Identifier]")
def dln(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    value = v.get(1)
    if not value:
        return None
    out: dict[str, Any] = {"value": value, "type": identifier_type("DL")}
    if v.get(2):
        out["system"] = system_uri(v.get(2), ctx)
    end = dtm(v.get(3), date_only=True)
    if end:
        out["period"] = {"end": end}
    return out
