"""Tests of fhir_gateway.crypto."""
