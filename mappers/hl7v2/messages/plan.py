"""The segment plan: what each segment does inside a message, as data.

Follows the IG message maps (HL7 Message - FHIR R4_ ADT_A01, ORU_R01, ORM_O01, OML_O21,
SIU_S12, VXU_V04, MDM_T02): a segment either *creates* a resource with its segment map(s)
and takes a role (``patient``, ``encounter``, ``order`` …), or *merges* into the resource
holding a role, using the IG map named ``SEG[<that resource type>]`` when one exists.
Per-message-type differences are overrides of the default rule for a segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    """What one segment does: create (``creates``) or merge (``into``)."""

    creates: str | None = None
    maps: tuple[str, ...] = ()
    role: str | None = None
    into: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    """FHIR element → role whose resource it references (``subject`` → ``patient``);
    a trailing ``[]`` makes the element a list (``basedOn[]``)."""
    append_to: tuple[tuple[str, str], ...] = ()
    """(role, element): add a reference to the new resource to that resource's list."""
    pending: bool = False
    """Hold the segment for the next created order resource (ORC)."""
    optional: bool = False
    """Skip the resource when its maps produced nothing (OBR[Specimen] without specimen data)."""
    also: tuple[Rule, ...] = ()
    """Further rules run for the same segment (OBR → DiagnosticReport and ServiceRequest)."""
    hook: str | None = None


_SUBJ = {"subject": "patient", "encounter": "encounter"}
_PV1_PATIENT = Rule(into=("patient",), maps=("PV1[Patient]",))
_OBR_SPECIMEN = Rule("Specimen", ("OBR[Specimen]",), links={"subject": "patient"}, optional=True,
                     append_to=(("order", "specimen"), ("report", "specimen")))

DEFAULT: dict[str, Rule] = {
    "PID": Rule("Patient", ("PID[Patient]",), role="patient", hook="pid"),
    "PD1": Rule(into=("patient",), maps=("PD1[Patient]",)),
    "NK1": Rule("RelatedPerson", ("NK1[RelatedPerson]",), role="related", links={"patient": "patient"},
                also=(Rule(into=("patient",), maps=("NK1[Patient]",)),)),
    "PV1": Rule("Encounter", ("PV1[Encounter]",), role="encounter", links={"subject": "patient"}, hook="pv1",
                also=(_PV1_PATIENT,)),
    "PV2": Rule(into=("encounter",), maps=("PV2[Encounter]",), hook="pv2"),
    "AL1": Rule("AllergyIntolerance", ("AL1[AllergyIntolerance]",), links={"patient": "patient"}, hook="al1"),
    "IAM": Rule("AllergyIntolerance", ("IAM[AllergyIntolerance]",), links={"patient": "patient"}, hook="al1"),
    "DG1": Rule("Condition", ("DG1[Condition]",), links=_SUBJ, hook="dg1", append_to=(("order", "reasonReference"),)),
    "PR1": Rule("Procedure", ("PR1[Procedure]",), links=_SUBJ, hook="pr1"),
    "IN1": Rule("Coverage", ("IN1[Coverage]",), role="coverage", links={"beneficiary": "patient"}, hook="in1"),
    "ORC": Rule(pending=True),
    "OBR": Rule("ServiceRequest", ("OBR[ServiceRequest]",), role="order", links=_SUBJ, hook="order",
                also=(_OBR_SPECIMEN,)),
    "OBX": Rule("Observation", ("OBX[Observation]",), role="observation", links={**_SUBJ, "basedOn[]": "order"},
                append_to=(("report", "result"), ("order", "supportingInfo")), hook="obx"),
    "SPM": Rule("Specimen", ("SPM[Specimen]",), role="specimen", links={"subject": "patient"},
                append_to=(("report", "specimen"), ("order", "specimen"))),
    "NTE": Rule(into=("last",), hook="nte"),
    "TQ1": Rule(into=("order",)),
    "RXO": Rule("MedicationRequest", ("RXO[MedicationRequest]",), role="order", links=_SUBJ, hook="rxo"),
    "RXE": Rule("MedicationRequest", (), role="order", links=_SUBJ, hook="rxe"),
    "RXR": Rule(into=("order",)),
    "RXA": Rule("Immunization", ("RXA[Immunization]",), role="order",
                links={"patient": "patient", "encounter": "encounter"}, hook="rxa"),
    "SCH": Rule("Appointment", ("SCH[Appointment]",), role="appointment", hook="sch"),
    "AIS": Rule(into=("appointment",), also=(
        Rule("ServiceRequest", ("AIS[ServiceRequest]",), links={"subject": "patient"},
             append_to=(("appointment", "basedOn"),), hook="order"),
    )),
    "AIG": Rule(into=("appointment",)),
    "AIL": Rule(into=("appointment",)),
    "AIP": Rule(into=("appointment",)),
    "TXA": Rule("DocumentReference", ("TXA[DocumentReference]",), role="document", links={"subject": "patient"},
                hook="txa"),
    "MRG": Rule(hook="mrg"),
}

OVERRIDES: dict[str, dict[str, Rule]] = {
    "ORU": {
        "OBR": Rule("ServiceRequest", ("OBR[ServiceRequest]",), role="order", links=_SUBJ, hook="order", also=(
            Rule("DiagnosticReport", ("OBR[DiagnosticReport]",), role="report",
                 links={**_SUBJ, "basedOn[]": "order"}, hook="report"),
            _OBR_SPECIMEN,
        )),
        "OBX": Rule("Observation", ("OBX[Observation]",), role="observation", links={**_SUBJ, "basedOn[]": "order"},
                    append_to=(("report", "result"),), hook="obx"),
    },
    "MDM": {
        "OBX": Rule(into=("document",), hook="obx_document"),
    },
    "VXU": {
        "ORC": Rule("ServiceRequest", (), role="service", links={"subject": "patient"},
                    pending=True, hook="order"),
        "OBX": Rule("Observation", ("OBX[Observation]",), role="observation", links=_SUBJ, hook="obx"),
    },
    "SIU": {
        "PID": Rule("Patient", ("PID[Patient]",), role="patient", hook="pid",
                    append_to=(("appointment", "participant"),)),
        "PV1": Rule("Encounter", ("PV1[Encounter]",), role="encounter", links={"subject": "patient"}, hook="pv1",
                    also=(_PV1_PATIENT,)),
        "TQ1": Rule(into=("appointment",), hook="tq1_appointment"),
    },
    "RDE": {
        "RXO": Rule(),
    },
    "ADT": {
        "OBX": Rule("Observation", ("OBX[Observation]",), role="observation", links=_SUBJ, hook="obx"),
    },
}

# R4 resource types that have the list element ``append_to`` names (others are skipped).
APPEND_TARGETS: dict[str, set[str]] = {
    "supportingInfo": {"ServiceRequest"},
    "reasonReference": {"ServiceRequest", "MedicationRequest", "Encounter", "Procedure", "Immunization"},
    "specimen": {"ServiceRequest", "DiagnosticReport"},
    "result": {"DiagnosticReport"},
    "basedOn": {"Appointment", "DiagnosticReport", "Observation", "ServiceRequest", "MedicationRequest"},
}

# Message types where an ORC without order detail (OBR/RXO/…) still makes a ServiceRequest.
STANDALONE_ORC: dict[str, Rule] = {
    t: Rule("ServiceRequest", (), role="order", links=_SUBJ, hook="order") for t in ("ORM", "OML", "MDM", "ORU")
}

# Roles that open a new order group: a new one clears the ones listed.
RESETS: dict[str, tuple[str, ...]] = {
    "patient": ("encounter", "order", "report", "observation", "specimen", "document"),
    "order": ("report", "observation", "specimen"),
    "report": ("observation", "specimen"),
}

# Trigger events: supported message types and what the event itself asserts.
EVENTS: dict[str, dict[str, str]] = {
    "ADT^A01": {}, "ADT^A02": {}, "ADT^A03": {"Encounter.status": "finished"},
    "ADT^A04": {}, "ADT^A05": {"Encounter.status": "planned"}, "ADT^A06": {}, "ADT^A07": {},
    "ADT^A08": {}, "ADT^A11": {"Encounter.status": "cancelled"}, "ADT^A13": {"Encounter.status": "in-progress"},
    "ADT^A28": {}, "ADT^A31": {}, "ADT^A40": {},
    "SIU^S12": {"Appointment.status": "booked"}, "SIU^S13": {"Appointment.status": "booked"},
    "SIU^S14": {}, "SIU^S15": {"Appointment.status": "cancelled"}, "SIU^S26": {"Appointment.status": "noshow"},
    "ORU^R01": {}, "ORM^O01": {}, "OML^O21": {}, "RDE^O11": {}, "OMP^O09": {}, "VXU^V04": {}, "MDM^T02": {},
}

# Elements R4 requires, filled when the message left them empty.
REQUIRED_DEFAULTS: dict[str, dict[str, object]] = {
    "Encounter": {"status": "unknown",
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}},
    "Observation": {"status": "unknown"},
    "DiagnosticReport": {"status": "unknown"},
    "ServiceRequest": {"status": "unknown", "intent": "order"},
    "MedicationRequest": {"status": "unknown", "intent": "order"},
    "Immunization": {"status": "completed"},
    "Appointment": {"status": "booked"},
    "Procedure": {"status": "unknown"},
    "Coverage": {"status": "active"},
    "DocumentReference": {"status": "current"},
}
