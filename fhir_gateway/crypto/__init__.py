"""fhir_gateway/crypto package."""
