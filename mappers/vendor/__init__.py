"""mappers/vendor package."""
