"""``HubClient``: the app's FHIR client for the hub (FHIR R4 REST over HTTP, JSON dicts in and out).

The telehealth domain (Patient copies, Schedule, Slot, Appointment, Encounter, Communication, …) lives
in the hub; the app reaches it only through the FHIR API, never the gateway's storage
(docs/ARCHITECTURE.md). Every call carries a SMART Backend Services token (:mod:`.backend_auth`),
fetched on first use and again shortly before it expires (and once more after a 401).

Protocol (what feature code, e.g. ``smart_app.scheduling``, codes against)::

    hub.base                                   -> "http://127.0.0.1:8080/fhir"
    hub.get("Patient/123")                     -> dict (the resource)            GET   {base}/{path}
    hub.get("Appointment", {"_id": "1"})       -> dict (the searchset Bundle)
    hub.search("Slot", {"schedule": "Schedule/9", "status": "free"})
                                               -> list[dict] of matching resources, every page
                                                  (follows Bundle.link[next]; outcome entries skipped)
    hub.search("Appointment", [("date", "ge2026-01-01"), ("date", "lt2026-01-02")])  # repeated params
    hub.search_with_includes("Appointment", {..., "_include": "Appointment:patient"})
                                               -> SearchResult(matches=[...], included=[...])
    hub.create(resource)                       -> dict (server copy, with id and meta)   POST {base}/{type}
    hub.create(resource, if_none_exist="identifier=sys|v")   conditional create
    hub.update(resource, if_match='W/"3"')     -> dict                          PUT  {base}/{type}/{id}
    hub.delete("Slot/5")                       -> None                          DELETE
    hub.transaction(bundle)                    -> dict (transaction-response Bundle)  POST {base}
    hub.operation("Patient/$ehr-sync", parameters) -> dict (the answer)    POST {base}/{path}

Errors (catch at the level you need)::

    HubError                      any failure; .status (0 = unreachable), .outcome (OperationOutcome or None)
    ├── HubUnavailable            could not connect, 5xx, or no backend token (status 0 or ≥ 500)
    ├── NotFound                  404 / 410
    ├── Conflict                  409 (e.g. a version conflict in a transaction) and 412 (If-Match lost)
    └── Invalid                   400 / 422: the request or resource is wrong (.outcome says where)

``params`` is a mapping or a sequence of (name, value) pairs (for repeated parameters). Thread-safe:
one instance serves every request of the app.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from smart_app.backend_auth import BackendAuthError, BackendTokens
from smart_app.transport import HttpReply, Transport, TransportError

Params = Mapping[str, str] | Sequence[tuple[str, str]]
FHIR_JSON = "application/fhir+json"
MAX_PAGES = 50


class HubError(RuntimeError):
    def __init__(self, message: str, status: int = 0, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class HubUnavailable(HubError):
    """The hub could not be reached, answered 5xx, or refused the app's backend credentials."""


class NotFound(HubError):
    """404 or 410."""


class Conflict(HubError):
    """409 or 412: someone else changed the resource (or took the slot) first."""


class Invalid(HubError):
    """400 or 422."""


@dataclass
class SearchResult:
    matches: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)


def _error_for(status: int) -> type[HubError]:
    if status in (404, 410):
        return NotFound
    if status in (409, 412):
        return Conflict
    if status in (400, 422):
        return Invalid
    return HubUnavailable if status >= 500 else HubError


class HubClient:
    """See the module docstring for the protocol."""

    def __init__(self, base: str, transport: Transport, tokens: BackendTokens) -> None:
        self.base = base.rstrip("/")
        self.transport = transport
        self.tokens = tokens

    # -- plumbing
    def _url(self, path: str, params: Params | None = None) -> str:
        url = path if path.startswith(("http://", "https://")) else f"{self.base}/{path.lstrip('/')}" if path \
            else self.base
        if params:
            url += ("&" if "?" in url else "?") + urlencode(list(params.items()) if isinstance(params, Mapping)
                                                            else list(params))
        return url

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> HttpReply:
        hdrs = {"Accept": FHIR_JSON, **(headers or {})}
        data = None
        if body is not None:
            hdrs["Content-Type"] = FHIR_JSON
            data = orjson.dumps(body)
        for attempt in (1, 2):
            try:
                hdrs["Authorization"] = f"Bearer {self.tokens.token()}"
                reply = self.transport.request(method, url, headers=hdrs, body=data)
            except (TransportError, BackendAuthError) as exc:
                raise HubUnavailable(f"the hub is unavailable: {exc}") from None
            if reply.status == 401 and attempt == 1:
                self.tokens.invalidate()
                continue
            break
        if reply.status >= 400:
            outcome = None
            try:
                found = reply.json()
                outcome = found if isinstance(found, dict) and found.get("resourceType") == "OperationOutcome" \
                    else None
            except ValueError:
                pass
            raise _error_for(reply.status)(f"{method} {url.split('?')[0]} answered {reply.status}",
                                           reply.status, outcome)
        return reply

    # -- reads
    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self._send("GET", self._url(path, params)).json()
        return found

    def _pages(self, rtype: str, params: Params | None) -> list[dict[str, Any]]:
        url: str | None = self._url(rtype, params)
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None or url in seen:
                break
            seen.add(url)
            bundle = self._send("GET", url).json()
            entries.extend(bundle.get("entry", []))
            url = next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        return entries

    def search_with_includes(self, rtype: str, params: Params | None = None) -> SearchResult:
        out = SearchResult()
        seen: set[tuple[str, str]] = set()
        for entry in self._pages(rtype, params):
            resource = entry.get("resource") or {}
            mode = (entry.get("search") or {}).get("mode", "match")
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if mode == "outcome" or resource.get("resourceType") == "OperationOutcome" or key in seen:
                continue
            seen.add(key)
            (out.included if mode == "include" else out.matches).append(resource)
        return out

    def search(self, rtype: str, params: Params | None = None) -> list[dict[str, Any]]:
        return self.search_with_includes(rtype, params).matches

    # -- writes
    def create(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> dict[str, Any]:
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        reply = self._send("POST", self._url(resource["resourceType"]), resource, headers)
        if reply.body:
            created: dict[str, Any] = reply.json()
            return created
        return self.get(reply.headers.get("Location", "").split("/_history/")[0])

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match
        reply = self._send("PUT", self._url(f"{resource['resourceType']}/{resource['id']}"), resource, headers)
        updated: dict[str, Any] = reply.json() if reply.body else self.get(f"{resource['resourceType']}/"
                                                                             f"{resource['id']}")
        return updated

    def delete(self, path: str) -> None:
        self._send("DELETE", self._url(path))

    def operation(self, path: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """POST a Parameters body to an operation (``"Patient/$ehr-sync"``); the JSON answer."""
        result: dict[str, Any] = self._send("POST", self._url(path), parameters).json()
        return result

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._send("POST", self.base + "/", bundle).json()
        return result
