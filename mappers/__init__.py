"""mappers package."""
