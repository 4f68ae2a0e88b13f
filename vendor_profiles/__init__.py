"""Vendor profiles: one TOML file per EHR vendor under ``data/``, its schema and loader.

Imports nothing of the rest of Telehub (see docs/ARCHITECTURE.md).
"""
from vendor_profiles.loader import ProfileError, ProfileRegistry, load_profile, parse_profile
from vendor_profiles.schema import VendorProfile

__all__ = ["ProfileError", "ProfileRegistry", "VendorProfile", "load_profile", "parse_profile"]
