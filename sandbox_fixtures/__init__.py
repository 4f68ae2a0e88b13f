"""sandbox_fixtures package."""
