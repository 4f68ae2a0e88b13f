"""smart_app package."""
