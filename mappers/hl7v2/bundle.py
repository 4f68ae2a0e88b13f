"""Build the FHIR R4 transaction Bundle with conditional, idempotent requests.

Re-sending a message must update, never duplicate (issue 6). So every entry is
conditional on a key that survives re-sends:
- a resource with an identifier: ``PUT Type?identifier=system|value`` (conditional
  update) for the resources the message is about, ``POST`` + ``ifNoneExist`` for the
  reference data it merely mentions (Practitioner, Organization, Location, …), so a
  thin v2 mention never overwrites a richer record;
- a resource without one (an OBX with no OBX-21): a ``meta.tag`` key hashed from its
  anchors (patient, order, segment fields) and ``PUT Type?_tag=…``;
- the retired patient of a merge: ``PATCH`` (JSON Patch in a Binary) so its history and
  demographics stay.
References between entries are ``urn:uuid`` fullUrls, resolved by the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import quote

from mappers.hl7v2.context import Context, full_url

KEY_SYSTEM = "urn:telehub:hl7v2:key"
CREATE_ONLY = {"Practitioner", "Organization", "Location", "Medication", "PractitionerRole", "Device"}


def _identifier_query(res: dict[str, Any], bare: bool = False) -> str | None:
    for ident in res.get("identifier", ()):
        if isinstance(ident, dict) and ident.get("value") and ident.get("system"):
            return f"identifier={quote(ident['system'] + '|' + ident['value'], safe='|:/')}"
    if bare:  # the record to patch was created elsewhere: only its identifier can find it
        for ident in res.get("identifier", ()):
            if isinstance(ident, dict) and ident.get("value"):
                return f"identifier={quote(ident['value'], safe='|:/')}"
    return None  # a bare value could match another assigner's identifier: use the key instead


def _key_query(res: dict[str, Any], key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    tags = res.setdefault("meta", {}).setdefault("tag", [])
    tag = {"system": KEY_SYSTEM, "code": digest}
    if tag not in tags:
        tags.append(tag)
    return f"_tag={quote(KEY_SYSTEM, safe=':')}|{digest}"


def entry_for(res: dict[str, Any], used: set[str], urls: dict[str, str] | None = None) -> dict[str, Any]:
    """One transaction entry; consumes the private ``_key``/``_patch`` markers.

    A conditional URL must be unique within a transaction: a second resource with the
    same identifier (senders reuse OBX-21) falls back to its own key.
    """
    key = res.pop("_key")
    patch = res.pop("_patch", False)
    rtype = res["resourceType"]
    url = (urls or {}).get(key) or full_url(key)
    query = _identifier_query(res, bare=patch)
    if query is None or f"{rtype}?{query}" in used:
        query = _key_query(res, key)
    used.add(f"{rtype}?{query}")
    if patch:
        ops = [{"op": "add", "path": f"/{k}", "value": v} for k, v in res.items() if k not in ("resourceType",
                                                                                              "identifier")]
        binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
                  "data": base64.b64encode(json.dumps(ops).encode()).decode("ascii")}
        return {"fullUrl": url, "resource": binary, "request": {"method": "PATCH", "url": f"{rtype}?{query}"}}
    if rtype in CREATE_ONLY:
        request = {"method": "POST", "url": rtype, "ifNoneExist": query}
    else:
        request = {"method": "PUT", "url": f"{rtype}?{query}"}
    return {"fullUrl": url, "resource": res, "request": request}


def build_bundle(ctx: Context, extra: list[dict[str, Any]]) -> dict[str, Any]:
    msg = ctx.message
    bundle_id = uuid.uuid5(uuid.NAMESPACE_URL, f"hl7v2:{msg.msh.raw(4)}:{msg.control_id}")
    used: set[str] = set()
    entries = [entry_for(r, used, ctx.urls) for r in [*ctx.resources, *extra]]
    return {"resourceType": "Bundle", "id": str(bundle_id), "type": "transaction", "entry": entries}
