"""Access control: the role policy table and the patient compartment, behind one decision point."""
from __future__ import annotations

from fhir_gateway.policy.compartment import PatientCompartment
from fhir_gateway.policy.decision import RolePolicy
from fhir_gateway.policy.table import PolicyError, Role, load_roles

__all__ = ["PatientCompartment", "PolicyError", "Role", "RolePolicy", "load_roles"]
