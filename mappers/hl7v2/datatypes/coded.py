"""Coded values: CWE/CE/CNE/CF/IS/ID → CodeableConcept, Coding, code.

IG datatype map CWE[CodeableConcept]: .1/.2/.3 → coding[1], .4/.5/.6 → coding[2],
.10-.12 → coding[3], .9 → text; v2 coding-system names resolve through
``maps/coding_systems.json`` (HL7nnnn → terminology.hl7.org v2-nnnn) and, when the
row names a vocabulary, through the IG concept map (``maps/vocab.json``).
"""

from __future__ import annotations

import re
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import converter
from mappers.hl7v2.maps import load
from mappers.hl7v2.parser.message import Value

_HL7 = re.compile(r"HL7-?(\d{4})[A-Z]?")
_OID = re.compile(r"\d+(\.\d+)+")


def system_uri(name: str, ctx: Context) -> str | None:
    """Resolve a v2 coding-system name (CWE.3, HD namespace) to a FHIR system URI."""
    n = name.strip()
    if not n:
        return None
    table: dict[str, str] = load("coding_systems.json")
    hit = table.get(n.upper())
    if hit:
        return hit
    m = _HL7.fullmatch(n.upper())
    if m:
        return f"http://terminology.hl7.org/CodeSystem/v2-{m.group(1)}"
    if n.startswith(("http://", "https://", "urn:")):
        return n
    if _OID.fullmatch(n):
        return f"urn:oid:{n}"
    return ctx.options.placeholder_system + re.sub(r"\s+", "_", n)


def lookup(vocab: str | None, code: str) -> list[str] | None:
    """IG concept-map lookup: [code, display, system] or None."""
    if not vocab or not code:
        return None
    table: dict[str, dict[str, list[str]]] = load("vocab.json")
    entry = table.get(vocab, {})
    return entry.get(code) or entry.get(code.upper())


def _coding(v: Value, idx: tuple[int, int, int, int], ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    code, display, system, version = (v.get(i) for i in idx)
    mapped = lookup(vocab, code)
    if mapped:
        found = {"code": mapped[0], "display": mapped[1] or display, "system": mapped[2]}
        return {k: val for k, val in found.items() if val}
    if not code and not display:
        return None
    out: dict[str, str | None] = {
        "code": code, "display": display, "system": system_uri(system, ctx) if system else None, "version": version,
    }
    if not code:
        return None
    return {k: val for k, val in out.items() if val}


@converter("CWE[CodeableConcept]", "CE[CodeableConcept]", "CNE[CodeableConcept]", "CF[CodeableConcept]")
def cwe(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    """CWE → CodeableConcept (primary, alternate and second alternate codings, text)."""
    codings = [c for c in (
        _coding(v, (1, 2, 3, 7), ctx, vocab),
        _coding(v, (4, 5, 6, 8), ctx, None),
        _coding(v, (10, 11, 12, 13), ctx, None),
    ) if c]
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    text = v.get(9) or ("" if codings else v.get(2) or v.get(5))
    if text:
        out["text"] = text
    return out or None


@converter("CWE[Coding]", "CE[Coding]", "CNE[Coding]", "ID[Coding]", "EI[Coding]")
def cwe_coding(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    return _coding(v, (1, 2, 3, 7), ctx, vocab)


@converter("CWE[code]", "CWE[Code]", "ID[code]", "ID[Code]", "IS[code]", "IS[Code]", "CQ[code]", "CQ[Code]")
def cwe_code(v: Value, ctx: Context, vocab: str | None) -> str | None:
    code = v.text
    mapped = lookup(vocab, code)
    if mapped:
        return mapped[0]
    return None if vocab and vocab in load("vocab.json") else (code or None)


@converter("CWE[string]", "CWE[String]", "ID[string]", "ID[String]", "IS[string]", "IS[String]", "ST[string]")
def cwe_string(v: Value, ctx: Context, vocab: str | None) -> str | None:
    return v.get(2) or v.get(1) or None


@converter("ID[CodeableConcept]", "IS[CodeableConcept]", "ST[CodeableConcept]")
def id_concept(v: Value, ctx: Context, vocab: str | None) -> dict[str, Any] | None:
    code = v.text
    if not code:
        return None
    mapped = lookup(vocab, code)
    if mapped:
        return {"coding": [{k: x for k, x in zip(("code", "display", "system"), mapped, strict=True) if x}]}
    return {"coding": [{"code": code}]}


@converter("ID[Boolean]", "ID[boolean]")
def id_boolean(v: Value, ctx: Context, vocab: str | None) -> bool | None:
    t = v.text.upper()
    return True if t in ("Y", "YES", "T", "TRUE") else False if t in ("N", "NO", "F", "FALSE") else None
