"""Scheduling errors, each carrying a stable ``code`` and an HTTP status, rendered once by the blueprint.

SchedulingError
├── NotFound            (404) the slot, appointment, schedule or person does not exist
├── InvalidInput        (400) a form or rule is malformed (says which field)
├── SlotUnavailable     (409) the slot is no longer free (someone else booked it first)
├── BookingRefused      (422) a rule forbids this booking; ``reason`` says which, for the user
│   └── NotLicensed     (422) the provider holds no licence valid where the patient is
├── InvalidTransition   (409) e.g. no-show before the visit started, cancel a cancelled visit
└── EditConflict        (409) someone else saved the same Schedule meanwhile: reload and retry

Messages never contain PHI (no names, no addresses): ids and codes only.
"""
from __future__ import annotations


class SchedulingError(Exception):
    code = "scheduling-error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(SchedulingError):
    code = "not-found"
    status = 404


class InvalidInput(SchedulingError):
    code = "invalid"
    status = 400

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class SlotUnavailable(SchedulingError):
    code = "slot-unavailable"
    status = 409


class BookingRefused(SchedulingError):
    code = "booking-refused"
    status = 422


class NotLicensed(BookingRefused):
    code = "not-licensed"


class InvalidTransition(SchedulingError):
    code = "invalid-transition"
    status = 409


class EditConflict(SchedulingError):
    code = "edit-conflict"
    status = 409
