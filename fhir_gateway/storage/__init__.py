"""fhir_gateway/storage package."""
