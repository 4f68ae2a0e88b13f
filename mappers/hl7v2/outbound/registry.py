"""The outbound message table: trigger event → (abstract structure, builder). Register, don't branch."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mappers.hl7v2.outbound.builder import Grp, Seg
from mappers.hl7v2.outbound.context import Build
from mappers.hl7v2.outbound.documents import mdm
from mappers.hl7v2.outbound.patient import evn, pid, pv1
from mappers.hl7v2.outbound.pharmacy import rde
from mappers.hl7v2.outbound.results import oru
from mappers.hl7v2.outbound.scheduling import siu

Builder = Callable[[Build, str], list[Seg | Grp]]


def adt(build: Build, trigger: str) -> list[Seg | Grp]:
    """ADT A04 (register) / A08 (update patient information): EVN, PID, PV1 (no visit: PV1-2 ``N``)."""
    return [evn(build, trigger), pid(build.change.resource, build), pv1(None)]


@dataclass(frozen=True)
class Spec:
    structure: str
    builder: Builder
    resource_types: tuple[str, ...]


MESSAGES: dict[str, Spec] = {
    "SIU^S12": Spec("SIU_S12", siu, ("Appointment",)),
    "SIU^S14": Spec("SIU_S12", siu, ("Appointment",)),
    "SIU^S15": Spec("SIU_S12", siu, ("Appointment",)),
    "ADT^A04": Spec("ADT_A01", adt, ("Patient",)),
    "ADT^A08": Spec("ADT_A01", adt, ("Patient",)),
    "RDE^O11": Spec("RDE_O11", rde, ("MedicationRequest",)),
    "MDM^T02": Spec("MDM_T02", mdm, ("DocumentReference",)),
    "ORU^R01": Spec("ORU_R01", oru, ("DiagnosticReport", "Observation")),
}
