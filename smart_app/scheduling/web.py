"""Helpers the views share: who is acting, time formatting, slot grouping (no routes here)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Literal
from zoneinfo import ZoneInfo

from smart_app.scheduling.codes import MODALITY_DISPLAY
from smart_app.scheduling.ports import Resource
from smart_app.scheduling.slots import instant, modality

Role = Literal["patient", "front-desk", "provider"]


@dataclass(frozen=True)
class Actor:
    """Who is using the pages. The mounting app supplies it from its session (launch context)."""

    role: Role
    patient_id: str | None = None  # for a patient: their own Patient id (they may book only for themselves)
    practitioner_id: str | None = None


ActorSource = Callable[[], Actor]


def front_desk() -> Actor:
    """Default for development and tests: the front desk, who may book for any patient."""
    return Actor("front-desk")


def local_time(value: str, zone: ZoneInfo | None) -> str:
    moment = instant(value)
    local = moment.astimezone(zone) if zone else moment
    return local.strftime("%a %d %b %Y, %H:%M %Z")


def short_time(value: str, zone: ZoneInfo | None) -> str:
    moment = instant(value)
    return (moment.astimezone(zone) if zone else moment).strftime("%H:%M %Z")


def slot_label(slot: Resource, zone: ZoneInfo | None) -> str:
    kind = MODALITY_DISPLAY.get(modality(slot), "Visit")
    length = int((instant(slot["end"]) - instant(slot["start"])).total_seconds() // 60)
    return f"{short_time(slot['start'], zone)} · {kind} · {length} min"


def by_day(slots: list[Resource], zone: ZoneInfo | None) -> list[tuple[str, list[Resource]]]:
    """Group slots under a local-day heading, in time order."""
    def day(slot: Resource) -> str:
        moment: datetime = instant(slot["start"])
        return (moment.astimezone(zone) if zone else moment).strftime("%A %d %B %Y")

    ordered = sorted(slots, key=lambda s: s["start"])
    return [(k, list(g)) for k, g in groupby(ordered, key=day)]
