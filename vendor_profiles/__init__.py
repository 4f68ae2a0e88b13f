"""vendor_profiles package."""
