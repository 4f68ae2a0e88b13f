"""fhir_gateway/search package."""
