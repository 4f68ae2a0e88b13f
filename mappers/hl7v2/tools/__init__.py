"""Build-time tools for mappers/hl7v2 (never imported at runtime)."""
