"""The one seam between scheduling and a FHIR server: a structural ``Protocol``.

smart_app's ``HubClient`` (requests + a backend-services token) satisfies it; tests use an
adapter over Flask's test client or a live werkzeug server. Scheduling never imports the
gateway's storage: everything it knows is read and written as FHIR through this port.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from smart_app.scheduling.errors import EditConflict

Resource = dict[str, Any]
# A mapping, or (name, value) pairs when a parameter repeats (``start=ge…&start=lt…``).
SearchParams = Mapping[str, str] | Sequence[tuple[str, str]]


@runtime_checkable
class FhirPort(Protocol):
    """What scheduling needs from a FHIR client (the ``HubClient`` method set)."""

    def get(self, path: str) -> Resource:
        """Read ``Type/id`` (or any relative path) and return the JSON body."""
        ...

    def search(self, rtype: str, params: SearchParams | None = None) -> list[Resource]:
        """Search ``rtype``; follow ``next`` links; return the matched resources."""
        ...

    def create(self, resource: Resource) -> Resource:
        ...

    def update(self, resource: Resource, *, if_match: str | None = None) -> Resource:
        ...

    def transaction(self, bundle: Resource) -> Resource:
        """POST a transaction Bundle to the base; all entries commit or none do."""
        ...


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception from a FHIR client carries, whatever the client's error type.

    ``requests.HTTPError`` has ``.response.status_code``; hand-written clients often use
    ``.status`` or ``.status_code``. None means the error is not an HTTP answer (network, bug).
    """
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def update_versioned(hub: FhirPort, body: Resource, current: Resource) -> Resource:
    """PUT with If-Match on ``current``'s version; a lost race becomes :class:`EditConflict`."""
    try:
        return hub.update(body, if_match=etag(current))
    except Exception as exc:
        if http_status(exc) in (409, 412):
            raise EditConflict(f"{ref(current)} was changed by someone else; reload and try again") from None
        raise


def version_of(resource: Resource) -> str:
    """The resource's ``meta.versionId``, the value an ``If-Match`` ETag names."""
    version = (resource.get("meta") or {}).get("versionId")
    if not version:
        raise ValueError(f"{resource.get('resourceType')}/{resource.get('id')} carries no meta.versionId")
    return str(version)


def etag(resource: Resource) -> str:
    return f'W/"{version_of(resource)}"'


def ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"
