"""fhir_gateway/audit package."""
