"""fhir_gateway/operations package."""
