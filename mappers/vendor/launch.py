"""Launch-context normalisation for SMART token responses (SMART App Launch 2, §launch context).

Epic sends ``need_patient_banner`` as the string ``"true"`` (vendor-notes §2.2, a real production
response); the spec says boolean. Unknown vendor keys (``deptID``, ``__epic.dstu2.patient``…) pass through.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BOOLEAN_FIELDS = ("need_patient_banner",)
TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no", ""})


def as_bool(value: Any) -> bool | None:
    """A boolean from a boolean or its string form; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
    return None


def normalize_launch_context(token_response: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``token_response`` with booleans as booleans and ``expires_in`` as an int."""
    out = dict(token_response)
    for name in BOOLEAN_FIELDS:
        if name in out:
            value = as_bool(out[name])
            if value is None:
                del out[name]
            else:
                out[name] = value
    if isinstance(out.get("expires_in"), str) and out["expires_in"].strip().isdigit():
        out["expires_in"] = int(out["expires_in"])
    return out
