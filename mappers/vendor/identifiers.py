"""Patient identifiers: recognise the vendor's MRN and add it under the hub's canonical MRN system.

Rules come from the vendor profile as data (system, system regex, type text, v2-0203 type code),
because the MRN system differs per vendor and, for Epic, per customer (vendor-notes §2.6, §3.5).
The original identifiers are kept; the canonical one is added, so back-mapping just removes it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@dataclass(frozen=True)
class MrnRule:
    system: str | None = None
    system_regex: str | None = None
    type_text: str | None = None
    type_code: str | None = None

    def matches(self, identifier: JSON) -> bool:
        system = identifier.get("system")
        if self.system is not None and system != self.system:
            return False
        if self.system_regex is not None and not (isinstance(system, str) and re.match(self.system_regex, system)):
            return False
        raw = identifier.get("type")
        kind: JSON = raw if isinstance(raw, dict) else {}
        if self.type_text is not None and kind.get("text") != self.type_text:
            return False
        if self.type_code is not None:
            codes = {c.get("code") for c in kind.get("coding") or [] if isinstance(c, dict)}
            if self.type_code not in codes:
                return False
        return True


def find_mrn(patient: JSON, rules: Sequence[MrnRule]) -> str | None:
    """The patient's MRN value (trimmed), by the first rule that matches an identifier."""
    for rule in rules:
        for identifier in patient.get("identifier") or []:
            if isinstance(identifier, dict) and rule.matches(identifier):
                value = identifier.get("value")
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None


def canonical_mrn(system: str, value: str) -> JSON:
    return {"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}],
                                     "text": "MRN"}, "system": system, "value": value}


def add_canonical_mrn(patient: JSON, rules: Sequence[MrnRule], mrn_system: str) -> JSON:
    """A copy of ``patient`` with its MRN also under ``mrn_system`` (unchanged when it has no MRN)."""
    mrn = find_mrn(patient, rules)
    if mrn is None:
        return dict(patient)
    kept = [i for i in patient.get("identifier") or [] if not (isinstance(i, dict) and i.get("system") == mrn_system)]
    return {**patient, "identifier": [*kept, canonical_mrn(mrn_system, mrn)]}


def remove_canonical_mrn(patient: JSON, mrn_system: str) -> JSON:
    """Back-mapping: the vendor never sees the hub's MRN system."""
    if "identifier" not in patient:
        return dict(patient)
    kept = [i for i in patient["identifier"] if not (isinstance(i, dict) and i.get("system") == mrn_system)]
    out = {**patient, "identifier": kept}
    if not kept:
        del out["identifier"]
    return out
