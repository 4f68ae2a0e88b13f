"""fhir_gateway/rest package."""
