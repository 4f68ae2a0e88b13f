"""WSGI entry point for production servers (granian, gunicorn): settings from the environment."""
from __future__ import annotations

from flask import Flask

from fhir_gateway.settings import load_settings


def create() -> Flask:
    """Factory for ``granian --factory fhir_gateway.wsgi:create`` and ``gunicorn 'fhir_gateway.wsgi:create()'``."""
    from fhir_gateway.app import create_app

    return create_app(load_settings())
