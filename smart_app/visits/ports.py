"""The seams of the visit feature, as structural ``Protocol``s: FHIR, the event bus, who is acting.

smart_app's ``HubClient`` satisfies :class:`FhirPort`; tests use the in-process hub through
``FlaskHub``/``RequestsHub``. Visits never import the gateway's storage (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from smart_app.visits.errors import VisitConflict

Resource = dict[str, Any]
SearchParams = Mapping[str, str] | Sequence[tuple[str, str]]
Role = Literal["patient", "provider", "system"]


@runtime_checkable
class FhirPort(Protocol):
    """What visits need from a FHIR client (the ``HubClient`` method set)."""

    def get(self, path: str) -> Resource: ...

    def search(self, rtype: str, params: SearchParams | None = None) -> list[Resource]: ...

    def create(self, resource: Resource) -> Resource: ...

    def update(self, resource: Resource, *, if_match: str | None = None) -> Resource: ...

    def transaction(self, bundle: Resource) -> Resource: ...


class Subscription(Protocol):
    """An open subscription: iterate for events (``None`` = keep-alive after a silent period); close it."""

    def __iter__(self) -> Iterator[dict[str, Any] | None]: ...

    def __next__(self) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


@runtime_checkable
class EventBus(Protocol):
    """Publish/subscribe of small JSON events per visit channel; implementations in :mod:`.events`."""

    def publish(self, channel: str, event: Mapping[str, Any]) -> None: ...

    def subscribe(self, channel: str, *, timeout: float = 15.0) -> Subscription:
        """Registered at once; iterating yields events, and ``None`` after ``timeout`` s of silence."""
        ...


@dataclass(frozen=True)
class Actor:
    """Who is acting, supplied by the mounting app from its session (or by a join link for patients)."""

    role: Role
    patient_id: str | None = None
    practitioner_id: str | None = None


ActorSource = Callable[[], Actor | None]


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception from a FHIR client carries (``status_code``, ``status`` or ``response``)."""
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and value:
            return value
    value = getattr(getattr(exc, "response", None), "status_code", None)
    return value if isinstance(value, int) else None


def version_of(resource: Resource) -> str:
    version = (resource.get("meta") or {}).get("versionId")
    if not version:
        raise ValueError(f"{resource.get('resourceType')}/{resource.get('id')} carries no meta.versionId")
    return str(version)


def etag(resource: Resource) -> str:
    return f'W/"{version_of(resource)}"'


def ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def guarded_transaction(hub: FhirPort, bundle: Resource) -> Resource:
    """POST a transaction; a lost If-Match (409/412) becomes :class:`VisitConflict`."""
    try:
        return hub.transaction(bundle)
    except Exception as exc:
        if http_status(exc) in (409, 412):
            raise VisitConflict("the visit was changed by someone else; reload and try again") from None
        raise
