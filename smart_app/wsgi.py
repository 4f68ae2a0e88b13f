"""The app on its own: ``granian --interface wsgi --factory smart_app.wsgi:create`` (or gunicorn
``'smart_app.wsgi:create()'``), configured by ``TELEHUB_APP_*`` (see smart_app/README.md)."""
from __future__ import annotations

from flask import Flask

from smart_app.app import create_app
from smart_app.settings import load_app_settings


def create() -> Flask:
    return create_app(load_app_settings())
