"""fhir_gateway/upstream package."""
