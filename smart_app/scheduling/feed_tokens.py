"""Per-provider iCalendar feed tokens: random, stored only as a SHA-256 hash, revocable.

The token is shown once when issued; the Schedule keeps ``identifier`` = hash (searchable, so a
feed request finds its Schedule with one search, never by scanning). Revoking removes the hash;
issuing again replaces it, so the old URL stops working at once.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from smart_app.scheduling.codes import ICAL_TOKEN_SYSTEM
from smart_app.scheduling.errors import NotFound
from smart_app.scheduling.ports import FhirPort, Resource, update_versioned
from smart_app.scheduling.schedules import find_schedule


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _without_token(schedule: Resource) -> Resource:
    body = dict(schedule)
    body["identifier"] = [i for i in schedule.get("identifier", []) or [] if i.get("system") != ICAL_TOKEN_SYSTEM]
    if not body["identifier"]:
        del body["identifier"]
    return body


def _schedule(hub: FhirPort, practitioner_id: str) -> Resource:
    schedule = find_schedule(hub, practitioner_id)
    if schedule is None:
        raise NotFound("this provider has no schedule yet: save their availability first")
    return schedule


def issue(hub: FhirPort, practitioner_id: str) -> str:
    """A new feed token for the provider (replacing any old one). Show it once; it is not stored."""
    token = secrets.token_urlsafe(32)
    schedule = _schedule(hub, practitioner_id)
    body = _without_token(schedule)
    body.setdefault("identifier", []).append({"system": ICAL_TOKEN_SYSTEM, "value": token_hash(token)})
    update_versioned(hub, body, schedule)  # never overwrite an availability change made meanwhile
    return token


def revoke(hub: FhirPort, practitioner_id: str) -> None:
    schedule = _schedule(hub, practitioner_id)
    update_versioned(hub, _without_token(schedule), schedule)


def has_token(schedule: Resource) -> bool:
    return any(i.get("system") == ICAL_TOKEN_SYSTEM for i in schedule.get("identifier", []) or [])


def lookup(hub: FhirPort, token: str) -> Resource | None:
    """The Schedule whose feed token this is, or None (unknown or revoked)."""
    if not token or len(token) > 128:
        return None
    digest = token_hash(token)
    for schedule in hub.search("Schedule", {"identifier": f"{ICAL_TOKEN_SYSTEM}|{digest}"}):
        for ident in schedule.get("identifier", []) or []:
            if ident.get("system") == ICAL_TOKEN_SYSTEM and hmac.compare_digest(str(ident.get("value")), digest):
                return schedule
    return None
