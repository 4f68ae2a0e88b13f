"""Telehub's FHIR R4 server and SMART authorization server."""
