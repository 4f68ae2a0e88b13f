"""Loading records into the repository, idempotently.

* A resource (NDJSON line) keeps its id and is upserted; unchanged content writes nothing.
* A transaction/batch Bundle runs as one transaction through the same processor as
  ``POST /fhir``. Before that, its ``urn:uuid`` POST entries are made idempotent:
  shared reference data (Organization, Practitioner, Location, …) that carries an
  identifier becomes a conditional create on that identifier, so the copy Synthea puts in
  every bundle is stored once whatever the order; everything else keeps its uuid as
  its id (PUT), so importing the same bundle twice changes nothing.
* A collection/searchset Bundle is a list of resources, upserted like NDJSON.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fhir_gateway.access import RequestContext
from fhir_gateway.errors import FhirError, InvalidRequest
from fhir_gateway.rest.context import FhirServices, Interaction
from fhir_gateway.rest.messages import FhirRequest
from fhir_gateway.rest.transaction import process_bundle

SHARED_TYPES = frozenset({"Organization", "Practitioner", "Location", "PractitionerRole", "Medication",
                          "HealthcareService", "Endpoint", "Device"})
IMPORT_CONTEXT = RequestContext(client_id="telehub-import", role="integration")


def _identifier_query(resource: dict[str, Any]) -> str | None:
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            return f"identifier={quote(ident['system'], safe=':/.')}|{quote(str(ident['value']), safe='')}"
    return None


def make_idempotent(bundle: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a transaction's urn:uuid POST entries as described in the module docstring."""
    entries = []
    for entry in bundle.get("entry") or []:
        request = entry.get("request") or {}
        resource = entry.get("resource")
        full_url = entry.get("fullUrl") or ""
        if (request.get("method") == "POST" and isinstance(resource, dict) and full_url.startswith("urn:uuid:")
                and not request.get("ifNoneExist")):
            rtype = resource.get("resourceType")
            query = _identifier_query(resource) if rtype in SHARED_TYPES else None
            if query:
                request = {**request, "ifNoneExist": query}
            else:
                fid = full_url[len("urn:uuid:"):]
                request = {"method": "PUT", "url": f"{rtype}/{fid}"}
                resource = {**resource, "id": fid}
            entry = {**entry, "request": request, "resource": resource}
        entries.append(entry)
    return {**bundle, "entry": entries}


class Loader:
    def __init__(self, services: FhirServices) -> None:
        self.services = services

    def checked(self, it: Interaction, resource: Any) -> dict[str, Any]:
        """The resource, validated and allowed, ready to upsert."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidRequest("a line must hold a FHIR resource (a JSON object with resourceType)")
        rtype = it.require_type(resource["resourceType"])
        self.services.access.check(it.ctx, "create", rtype)
        self.services.validator.check(resource, expected_type=rtype)
        return resource

    def upsert(self, it: Interaction, resource: Any) -> None:
        """Create or update one resource under its own id (validated first)."""
        self.services.repository.upsert_many(it.conn, [self.checked(it, resource)])

    def load_bundle(self, it: Interaction, bundle: dict[str, Any]) -> int:
        kind = bundle.get("type")
        entries = bundle.get("entry") or []
        if kind in ("transaction", "batch"):
            body = make_idempotent(bundle) if kind == "transaction" else bundle
            response = process_bundle(it, FhirRequest("POST", "", body=body, headers={"prefer": "return=minimal"}),
                                      keep_uuid_ids=True)
            if kind == "batch" and response.body:
                failed = [e for e in response.body.get("entry", []) if not str(
                    e.get("response", {}).get("status", "")).startswith("2")]
                if failed:
                    raise InvalidRequest(f"{len(failed)} batch entries failed")
            return len(entries)
        bodies = [self.checked(it, entry.get("resource")) for entry in entries]
        self.services.repository.upsert_many(it.conn, bodies)
        return len(entries)

    def load(self, it: Interaction, value: Any) -> int:
        """Load one record (a resource or a Bundle); returns how many resources it held."""
        return self.load_many(it, [value])

    def load_many(self, it: Interaction, values: list[Any]) -> int:
        """Load records in order; consecutive plain resources are written in one bulk upsert."""
        pending: list[dict[str, Any]] = []
        loaded = 0
        for value in values:
            if isinstance(value, dict) and value.get("resourceType") == "Bundle" and value.get("type") in (
                    "transaction", "batch", "collection", "searchset"):
                if pending:
                    self.services.repository.upsert_many(it.conn, pending)
                    loaded += len(pending)
                    pending = []
                loaded += self.load_bundle(it, value)
            else:
                pending.append(self.checked(it, value))
        if pending:
            self.services.repository.upsert_many(it.conn, pending)
            loaded += len(pending)
        return loaded


def describe(exc: BaseException) -> str:
    if isinstance(exc, FhirError):
        return f"{exc.status} {exc.code}: {exc.diagnostics}"
    return f"{type(exc).__name__}"
