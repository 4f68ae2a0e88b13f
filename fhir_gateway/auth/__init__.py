"""fhir_gateway/auth package."""
