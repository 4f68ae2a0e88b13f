"""FHIR datatypes → ER7 field values (v2.5.1 chapter 2A), escaped for the default delimiters.

Each function returns one field value as ER7 text (components joined with ``^``,
subcomponents with ``&``); an empty string when there is nothing to say. Pure.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mappers.hl7v2.outbound.config import OutboundConfig

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SYSTEM_NAMES = {"http://loinc.org": "LN", "http://snomed.info/sct": "SCT", "http://unitsofmeasure.org": "UCUM",
                "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM", "http://hl7.org/fhir/sid/ndc": "NDC",
                "http://hl7.org/fhir/sid/icd-10-cm": "I10C", "http://hl7.org/fhir/sid/cvx": "CVX"}


def esc(value: Any) -> str:
    """ER7 escape sequences (2.7.4); line breaks become ``\\.br\\``."""
    text = str(value)
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
    return text.replace("~", "\\R\\").replace("\r\n", "\\.br\\").replace("\n", "\\.br\\").replace("\r", "\\.br\\")


def join(parts: Iterable[str], sep: str = "^") -> str:
    return sep.join(parts).rstrip(sep)


def dtm(value: Any) -> str:
    """A FHIR date/dateTime/instant → v2 DTM at the same precision (offset kept, ``Z`` → ``+0000``)."""
    if not isinstance(value, str):
        return ""
    m = _DATE.match(value)
    if not m:
        return ""
    year, month, day, hour, minute, second, frac, zone = m.groups()
    out = year + (month or "") + (day or "") + (hour or "") + (minute or "") + (second or "")
    if frac and second:
        out += frac[:5]
    if zone and hour:
        out += "+0000" if zone == "Z" else zone.replace(":", "")
    return out


def system_name(system: str | None) -> str:
    if not system:
        return ""
    if system.startswith("http://terminology.hl7.org/CodeSystem/v2-"):
        return "HL7" + system.rsplit("-", 1)[1]
    return SYSTEM_NAMES.get(system, system if len(system) <= 20 else "")


def cwe(concept: Any, fallback: str = "") -> str:
    """CodeableConcept or Coding → CWE: code^text^system (alternate triplet from the second coding)."""
    if not isinstance(concept, Mapping):
        return esc(fallback) if fallback else ""
    codings = [c for c in concept.get("coding", ()) if isinstance(c, Mapping)] if "coding" in concept else [concept]
    text = concept.get("text") if "coding" in concept else None
    parts: list[str] = []
    for coding in codings[:2]:
        parts += [esc(coding.get("code", "")), esc(coding.get("display") or text or ""),
                  esc(system_name(coding.get("system")))]
    if not parts:
        if text:
            return f"^{esc(text)}"
        return esc(fallback) if fallback else ""
    return join(parts)


def hd(system: str | None, config: OutboundConfig) -> str:
    """Identifier.system → HD assigning authority (subcomponents): namespace&universal id&type."""
    if not system:
        return ""
    namespace = config.namespaces.get(system, "")
    if system.startswith("urn:oid:"):
        return join([esc(namespace), system[8:], "ISO"], "&")
    return join([esc(namespace), esc(system), "URI"], "&") if len(system) <= 199 else esc(namespace)


def cx(identifier: Mapping[str, Any], config: OutboundConfig) -> str:
    type_code = ""
    for coding in (identifier.get("type") or {}).get("coding", ()):
        if coding.get("system") == V2_0203:
            type_code = coding.get("code", "")
    return join([esc(identifier.get("value", "")), "", "", hd(identifier.get("system"), config), esc(type_code)])


def cx_list(identifiers: Any, config: OutboundConfig) -> str:
    return "~".join(cx(i, config) for i in identifiers or () if isinstance(i, Mapping) and i.get("value"))


NAME_USE = {"official": "L", "usual": "D", "nickname": "N", "maiden": "M", "anonymous": "S", "old": "L",
            "temp": "T"}


def xpn(name: Mapping[str, Any]) -> str:
    given = list(name.get("given") or [])
    return join([esc(name.get("family", "")), esc(given[0]) if given else "", esc(" ".join(given[1:])),
                 esc(" ".join(name.get("suffix") or [])), esc(" ".join(name.get("prefix") or [])), "",
                 NAME_USE.get(name.get("use", ""), "")])


def xpn_list(names: Any) -> str:
    return "~".join(xpn(n) for n in names or () if isinstance(n, Mapping))


ADDRESS_USE = {"home": "H", "work": "O", "temp": "C", "old": "BA", "billing": "BI"}


def xad(address: Mapping[str, Any]) -> str:
    lines = list(address.get("line") or [])
    return join([esc(lines[0]) if lines else "", esc(" ".join(lines[1:])), esc(address.get("city", "")),
                 esc(address.get("state", "")), esc(address.get("postalCode", "")), esc(address.get("country", "")),
                 ADDRESS_USE.get(address.get("use", ""), "")])


def xtn(point: Mapping[str, Any]) -> str:
    system, value = point.get("system"), esc(point.get("value", ""))
    if system == "email":
        return join(["", "NET", "Internet", value])
    equipment = {"phone": "PH", "fax": "FX", "pager": "BP", "sms": "CP"}.get(system or "", "PH")
    if point.get("use") == "mobile":
        equipment = "CP"
    use = "WPN" if point.get("use") == "work" else "PRN"
    return join(["", use, equipment, "", "", "", "", "", "", "", "", value])  # XTN-1 is withdrawn after 2.5


def xcn(resource: Mapping[str, Any] | None, reference: Mapping[str, Any] | None = None) -> str:
    """Practitioner (or a bare reference's display) → XCN: id^family^given."""
    if resource:
        ident = next((i.get("value", "") for i in resource.get("identifier", ()) if i.get("value")), "")
        names = resource.get("name") or [{}]
        name = names[0] if isinstance(names, list) else {}
        given = list(name.get("given") or [])
        return join([esc(ident or resource.get("id", "")), esc(name.get("family", "")),
                     esc(given[0]) if given else ""])
    if reference and reference.get("display"):
        return f"^{esc(reference['display'])}"
    return ""


def ei(value: str, namespace: str) -> str:
    return join([esc(value), esc(namespace)])


def quantity(value: Mapping[str, Any] | None) -> tuple[str, str]:
    """Quantity → (number, units CWE with UCUM)."""
    if not value or "value" not in value:
        return "", ""
    units = join([esc(value.get("code") or value.get("unit") or ""), esc(value.get("unit", "")),
                  "UCUM" if value.get("system") == "http://unitsofmeasure.org" else ""])
    return str(value["value"]), units
