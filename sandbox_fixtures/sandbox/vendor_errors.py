"""Error bodies in each flavour's shape (vendor-notes §2.3, §3.1, §3.3, §4.2, §5.3).

Every function returns a :class:`Reply`; :mod:`.fhir_proxy` sends it. Vendor codes and texts come from
flavours.toml or from the notes; where the notes give no text the wording here is the sandbox's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from sandbox_fixtures.sandbox.flavours import Flavour

FHIR_JSON = "application/fhir+json; charset=utf-8"

# §2.3: an unknown resource type on Epic is the IIS HTML 404 page, not an OperationOutcome.
IIS_404 = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
 "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>404 - File or directory not found.</title></head>
<body><div id="header"><h1>Server Error</h1></div><div id="content"><div class="content-container"><fieldset>
<h2>404 - File or directory not found.</h2>
<h3>The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3>
</fieldset></div></div></body></html>
"""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = FHIR_JSON
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, body: Any, headers: dict[str, str] | None = None, ctype: str = FHIR_JSON) -> Reply:
    return Reply(status, orjson.dumps(body), ctype, headers or {})


def outcome(flavour: Flavour, status: int, code: str, text: str, vendor_code: str | None = None,
            severity: str = "fatal") -> Reply:
    """An OperationOutcome as the flavour writes it."""
    shape = flavour.errors["shape"]
    if shape == "cerner":  # §3.3 live errors are minimal
        issue: dict[str, Any] = {"severity": "error", "code": code, "details": {"text": text}}
    elif shape == "epic" and vendor_code:  # §2.3 numeric codes in details.coding
        issue = {"severity": severity, "code": code, "details": {
            "coding": [{"system": flavour.errors.get("code_system", ""), "code": vendor_code, "display": text}],
            "text": text}}
    else:
        issue = {"severity": severity, "code": code, "diagnostics": text}
    return _json(status, {"resourceType": "OperationOutcome", "issue": [issue]})


def unknown_type(flavour: Flavour) -> Reply:
    if flavour.errors["not_found"] == "html":
        return Reply(404, IIS_404.encode(), "text/html")
    return outcome(flavour, 404, "not-found", "Not Found")


def missing_params(flavour: Flavour, rtype: str, alternatives: list[list[str]]) -> Reply:
    """A search without one of the required parameter combinations."""
    combos = "[" + ",".join("[" + ",".join(a) + "]" for a in alternatives) + "]"
    shape = flavour.errors["shape"]
    if shape == "epic":
        code = flavour.required_codes.get(rtype, flavour.required_codes.get("default", "4111"))
        return outcome(flavour, 400, "required", f"This resource requires one of the parameter combinations "
                       f"{combos} for searching", code)
    if shape == "cerner":
        return outcome(flavour, 400, "invalid", "No supported search parameters provided")
    if shape == "athena":
        return outcome(flavour, 400, "forbidden", f"Search on {rtype} must match one of the required parameter "
                       f"combinations {combos}")
    return outcome(flavour, 400, "required", f"{rtype} search needs one of {combos}")


def session_expired(flavour: Flavour) -> Reply:
    """§2.3 Epic: an expired paging session gives 4113; the others: imitation."""
    return outcome(flavour, 400, "invalid", "The paging session has expired or is not valid; search again", "4113")


def wrong_tenant(flavour: Flavour) -> Reply:
    """§3.1 Cerner: a wrong tenant is 403 "Tenant not valid or accessible", not 404."""
    return outcome(flavour, 403, "forbidden", "Tenant not valid or accessible")


def missing_practice() -> Reply:
    """§4.2 athena without ``ah-practice``: 400 with a plain ``details`` body (not an OperationOutcome)."""
    return _json(400, {"details": "Could not determine what practice the request was for. Add the `ah-practice` "
                                  "search parameter with the practice's Organization reference, e.g. "
                                  "ah-practice=Organization/a-1.Practice-195900."}, ctype="application/json")


def too_many(flavour: Flavour, wait: int) -> Reply:
    reply = outcome(flavour, 429, "throttled", "Too many requests; retry after the delay in Retry-After")
    return Reply(reply.status, reply.body, reply.content_type, {"Retry-After": str(wait)})


def not_acceptable() -> Reply:
    """§3.3 Cerner: 406 for a non-JSON Accept, with Content-Length 0."""
    return Reply(406, b"", "text/plain")
