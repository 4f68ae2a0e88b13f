"""Per-segment hooks: what the IG tables cannot say as rows.

A hook runs after the IG segment map(s) for its segment, with the resource being built,
the segment, the context and the current roles. Each module registers its hooks here,
one spec concept per module (``pid.py`` → PID, ``obx.py`` → OBX …).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.parser.message import Segment

Hook = Callable[[Any, Segment, Context, dict[str, Any]], None]
HOOKS: dict[str, Hook] = {}


def hook(name: str) -> Callable[[Hook], Hook]:
    def register(fn: Hook) -> Hook:
        HOOKS[name] = fn
        return fn

    return register


def _load() -> None:
    from mappers.hl7v2.segments import (  # noqa: F401
        clinical,
        document,
        medication,
        merge,
        notes,
        observation,
        orders,
        patient,
        scheduling,
        visit,
        zsegment,
    )


_load()
