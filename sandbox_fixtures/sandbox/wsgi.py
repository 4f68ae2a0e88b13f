"""Mounting: the hub at / and the sandbox EHR at /sandbox in one WSGI app (a werkzeug dispatcher).

The hub stays untouched: ``mount(create_app(settings))`` is what ``telehub demo`` serves and what the
tests drive. ``create`` is the factory granian imports.
"""
from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from sandbox_fixtures.sandbox.app import create_sandbox_app
from sandbox_fixtures.sandbox.fhir_proxy import FlavouredFhir
from sandbox_fixtures.sandbox.flavours import Flavour, load_flavours
from sandbox_fixtures.sandbox.hub import Hub
from sandbox_fixtures.sandbox.inspector import views as inspector
from sandbox_fixtures.sandbox.inspector.client import PendingLaunches
from sandbox_fixtures.sandbox.inspector.transport import Transport
from sandbox_fixtures.sandbox.paging import PageSessions


class Mounted(DispatcherMiddleware):
    """The dispatcher, keeping handles on the parts (tests reach into them)."""

    hub_app: Flask
    sandbox_app: Flask
    fhir: FlavouredFhir


def inspector_secret(hub_app: Flask) -> str:
    """The inspector's client secret, derived from the hub's key ring under its own label (nothing stored)."""
    from fhir_gateway.app import signing_key_provider

    provider = signing_key_provider(hub_app.extensions["telehub.fhir"])
    if provider is None:  # no key ring (safeguards off): a fresh secret, re-registered at start
        import secrets

        return secrets.token_urlsafe(32)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"telehub/sandbox-inspector/v1").derive(provider())
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def mount(hub_app: Flask, *, flavours: dict[str, Flavour] | None = None, sessions: PageSessions | None = None,
          http: Transport | None = None) -> Mounted:
    """Hub + sandbox. ``http``: the inspector's transport (default: in-process for the hub's origin)."""
    hub = Hub(hub_app)
    hub.ensure_sandbox_client()
    fhir = FlavouredFhir(hub, flavours or load_flavours(), sessions)
    ins = inspector.Inspector(secret=inspector_secret(hub_app), origin=hub.origin,
                              http=http or Transport(hub.origin), pending=PendingLaunches())
    inspector.ensure_client(hub.auth, ins)
    sandbox_app = create_sandbox_app(hub_app, fhir, ins)
    mounted = Mounted(hub_app, {"/sandbox": sandbox_app})
    if http is None:
        ins.http.wsgi_app = mounted  # the inspector reaches /fhir and /sandbox/<flavour> without a socket
    mounted.hub_app, mounted.sandbox_app, mounted.fhir = hub_app, sandbox_app, fhir
    return mounted


def create() -> Any:
    """Factory for ``granian --factory sandbox_fixtures.sandbox.wsgi:create`` (settings from the environment;
    ``TELEHUB_SANDBOX_FLAVOURS`` names another flavours.toml, e.g. with latency or a 429 rate for a bench)."""
    import os
    from pathlib import Path

    from fhir_gateway.app import create_app
    from fhir_gateway.settings import load_settings

    other = os.environ.get("TELEHUB_SANDBOX_FLAVOURS")
    return mount(create_app(load_settings()), flavours=load_flavours(Path(other)) if other else None)
