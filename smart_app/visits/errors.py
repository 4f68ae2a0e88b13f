"""Visit errors, each with a stable ``code`` and HTTP status, rendered once by the blueprint.

VisitError
├── NotFound            (404) no such visit / link
├── InvalidTransition   (409) the event is not allowed in the visit's current state (or for this actor)
├── VisitConflict       (409) someone else changed the visit first (If-Match lost): reload and retry
├── ConsentRequired     (422) telehealth consent missing before start, or recording consent missing
├── LinkRefused         (403) join link expired, used, or bound to another device
└── ProviderRefused     (422) the video provider may not carry PHI (no BAA) or failed

Messages never carry PHI: ids and codes only.
"""
from __future__ import annotations


class VisitError(Exception):
    code = "visit-error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(VisitError):
    code = "not-found"
    status = 404


class InvalidTransition(VisitError):
    code = "invalid-transition"
    status = 409


class VisitConflict(VisitError):
    code = "conflict"
    status = 409


class ConsentRequired(VisitError):
    code = "consent-required"
    status = 422


class LinkRefused(VisitError):
    code = "link-refused"
    status = 403


class ProviderRefused(VisitError):
    code = "provider-refused"
    status = 422
