"""A FHIR-XML-ish rendering of JSON, for Epic's "XML unless you ask for JSON" (vendor-notes §2.3).

Enough for an adapter to see that it forgot ``Accept: application/fhir+json``: the root element, the
FHIR namespace and ``value`` attributes are right; element order follows the JSON (not the schema's),
and primitive extensions (``_field``) and narrative XHTML are left out.
"""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

NS = "http://hl7.org/fhir"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _element(name, item, out)
    elif isinstance(value, dict):
        if "resourceType" in value:  # a contained or entry resource
            out.append(f"<{name}>")
            _resource(value, out, ns=False)
            out.append(f"</{name}>")
            return
        attrs = f" url={quoteattr(str(value['url']))}" if name in ("extension", "modifierExtension") \
            and "url" in value else ""
        out.append(f"<{name}{attrs}>")
        for key, item in value.items():
            if not key.startswith("_") and key != "div" and not (attrs and key == "url"):
                _element(key, item, out)
        out.append(f"</{name}>")
    elif value is not None:
        out.append(f"<{name} value={quoteattr(_value(value))}/>")


def _resource(resource: dict[str, Any], out: list[str], ns: bool = True) -> None:
    rtype = str(resource.get("resourceType", "Resource"))
    out.append(f'<{rtype} xmlns="{NS}">' if ns else f"<{rtype}>")
    for key, value in resource.items():
        if key != "resourceType" and not key.startswith("_"):
            _element(key, value, out)
    out.append(f"</{rtype}>")


def to_xml(resource: dict[str, Any]) -> bytes:
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
    _resource(resource, out)
    return "".join(out).encode()
