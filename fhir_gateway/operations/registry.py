"""The operation registry: each FHIR operation registers its levels and handler once.

The route table dispatches every ``$name`` here, and the CapabilityStatement is
generated from this registry, so the two cannot drift.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir_gateway.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from fhir_gateway.rest.context import Interaction
    from fhir_gateway.rest.messages import FhirRequest, FhirResponse


@dataclass(frozen=True)
class Operation:
    name: str  # "$everything"
    definition: str  # canonical OperationDefinition URL
    system: bool
    type_level: bool
    instance: bool
    types: tuple[str, ...] | None  # None: every type
    affects_state: bool
    handler: Callable[..., FhirResponse]
    public: bool = False  # shown in the CapabilityStatement as an operation

    def applies(self, rtype: str | None, fid: str | None) -> bool:
        if rtype is None:
            return self.system
        if self.types is not None and rtype not in self.types:
            return False
        return self.instance if fid is not None else self.type_level


OPERATIONS: dict[str, Operation] = {}


def register(op: Operation) -> Operation:
    OPERATIONS[op.name] = op
    return op


def run_operation(it: Interaction, req: FhirRequest, op: str, type: str | None = None,
                  id: str | None = None) -> FhirResponse:
    _load()
    operation = OPERATIONS.get(op)
    if operation is None or not operation.applies(type, id):
        where = f"{type}/{id}" if id else (type or "system level")
        raise NotFound(f"operation {op[:64]} is not supported at {where}", code="not-supported")
    if req.method == "GET" and operation.affects_state:
        raise InvalidRequest(f"{op} changes state and must be invoked with POST")
    return operation.handler(it, req, rtype=type, fid=id)


_loaded = False


def _load() -> None:
    """Import the operation modules (each registers itself)."""
    global _loaded
    if _loaded:
        return
    from fhir_gateway.operations import capabilities, ehr_sync, patient_everything, validate  # noqa: F401

    _loaded = True


def operations() -> dict[str, Operation]:
    _load()
    return OPERATIONS


def parameters_value(req: FhirRequest, name: str) -> Any:
    """A named parameter from the query or from a ``Parameters`` body (valueX or resource)."""
    value = req.param(name)
    if value is not None:
        return value
    body = req.body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for p in body.get("parameter", []):
            if p.get("name") == name:
                if "resource" in p:
                    return p["resource"]
                for k, v in p.items():
                    if k.startswith("value"):
                        return v
    return None
