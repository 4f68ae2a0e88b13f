"""Loading and validating the role policy table (``roles.toml``): data, checked at start-up."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_gateway.definitions import resource_types

DEFAULT_TABLE = Path(__file__).resolve().parent / "roles.toml"
READ_INTERACTIONS = frozenset({"read", "vread", "search-type", "search-system", "history-instance",
                               "history-type", "history-system", "operation:$everything", "operation:$validate"})
WRITE_INTERACTIONS = frozenset({"create", "update", "patch", "delete"})
ALWAYS = frozenset({"capabilities", "operation:$capabilities", "batch/transaction"})


class PolicyError(ValueError):
    """The policy file is malformed; names the file and the field."""


@dataclass(frozen=True)
class Role:
    name: str
    read: frozenset[str]
    write: frozenset[str]
    compartment: str | None = None
    fields: dict[str, frozenset[str]] = field(default_factory=dict)

    def may(self, interaction: str, rtype: str | None) -> bool:
        if interaction in ALWAYS:
            return True
        if rtype is None:  # system-level history/search: limited by scope, allowed if anything is readable
            return interaction in READ_INTERACTIONS and bool(self.read)
        if interaction in WRITE_INTERACTIONS:
            return rtype in self.write
        if interaction in READ_INTERACTIONS or interaction.startswith("operation:"):
            return rtype in self.read
        return False


def _types(value: Any, where: str, all_types: frozenset[str]) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of resource type names")
    if "*" in value:
        return all_types
    unknown = set(value) - all_types
    if unknown:
        raise PolicyError(f"{where} names unknown resource types: {', '.join(sorted(unknown))}")
    return frozenset(value)


def load_roles(path: Path = DEFAULT_TABLE) -> dict[str, Role]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    all_types = frozenset(resource_types())
    roles: dict[str, Role] = {}
    for name, spec in (data.get("roles") or {}).items():
        where = f"{path.name}: roles.{name}"
        unknown = set(spec) - {"read", "write", "deny", "compartment", "fields"}
        if unknown:
            raise PolicyError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        deny = _types(spec.get("deny", []), f"{where}.deny", all_types)
        read = _types(spec.get("read", []), f"{where}.read", all_types) - deny
        write = _types(spec.get("write", []), f"{where}.write", all_types) - deny
        compartment = spec.get("compartment")
        if compartment not in (None, "Patient"):
            raise PolicyError(f"{where}.compartment must be \"Patient\"")
        fields = {}
        for rtype, names in (spec.get("fields") or {}).items():
            if rtype not in all_types:
                raise PolicyError(f"{where}.fields: unknown resource type {rtype}")
            fields[rtype] = frozenset(names)
        roles[name] = Role(name, read, write, compartment, fields)
    if not roles:
        raise PolicyError(f"{path}: no roles defined")
    return roles
