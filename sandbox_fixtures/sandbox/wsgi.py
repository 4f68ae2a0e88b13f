"""Mounting: the hub at /, the sandbox EHR at /sandbox and the SMART app at /app in one WSGI app
(a werkzeug dispatcher).

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
    smart_app: Flask | None
    fhir: FlavouredFhir


def _derived_key(hub_app: Flask, label: bytes) -> bytes:
    """32 bytes derived from the hub's key ring under ``label`` (nothing stored); random without a key ring."""
    from fhir_gateway.app import signing_key_provider

    provider = signing_key_provider(hub_app.extensions["telehub.fhir"])
    if provider is None:  # no key ring (safeguards off): a fresh secret, re-registered at start
        import os

        return os.urandom(32)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(provider())


def inspector_secret(hub_app: Flask) -> str:
    """The inspector's client secret, derived from the hub's key ring under its own label (nothing stored)."""
    key = _derived_key(hub_app, b"telehub/sandbox-inspector/v1")
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


SMART_APP_VENDORS = {"generic": "generic-r4", "epic": "epic", "cerner": "cerner", "athena": "athena"}


def smart_app_settings(hub: Hub, fhir: FlavouredFhir, hub_app: Flask, backend_key: dict[str, Any]) -> Any:
    """The SMART app's settings for the demo: trusts the hub and every sandbox flavour (each with its vendor
    profile), secrets derived from the hub's key ring, a fresh backend key (its JWKS is registered at start)."""
    from smart_app.settings import AppSettings, TrustedIssuer

    issuers = [TrustedIssuer(hub.fhir_base, "generic-r4")]
    issuers += [TrustedIssuer(fhir.public_base(f), SMART_APP_VENDORS.get(name, "generic-r4"))
                for name, f in fhir.flavours.items()]
    settings = hub_app.extensions["telehub.fhir"].settings
    secret = _derived_key(hub_app, b"telehub/smart-app/client-secret/v1")
    return AppSettings(hub_base=hub.fhir_base, public_url=f"{hub.origin}/app",
                       client_secret=base64.urlsafe_b64encode(secret).decode().rstrip("="),
                       backend_key=backend_key, trusted_issuers=tuple(issuers), redis_url=settings.redis_url,
                       secret_key=_derived_key(hub_app, b"telehub/smart-app/secret-key/v1"),
                       frame_ancestors=settings.frame_ancestors, env=settings.env)


def build_smart_app(hub: Hub, fhir: FlavouredFhir, hub_app: Flask, transport: Any) -> Flask:
    """The SMART app (smart_app.create_app) registered at the hub as the demo does it."""
    from fhir_gateway.demo import register_smart_app
    from smart_app.app import create_app as create_smart_app
    from smart_app.backend_auth import generate_key, public_jwks
    from smart_app.launch import EHR_SCOPE, STANDALONE_SCOPE

    key = generate_key()
    app_settings = smart_app_settings(hub, fhir, hub_app, key)
    user_scope = " ".join(dict.fromkeys(f"{EHR_SCOPE} {STANDALONE_SCOPE}".split()))
    register_smart_app(hub.auth, public_url=app_settings.public_url, secret=app_settings.client_secret,
                       jwks=public_jwks(key), user_scope=user_scope, backend_scope=app_settings.backend_scope)
    return create_smart_app(app_settings, transport=transport)


def mount(hub_app: Flask, *, flavours: dict[str, Flavour] | None = None, sessions: PageSessions | None = None,
          http: Transport | None = None, with_app: bool = True) -> Mounted:
    """Hub + sandbox + SMART app (``with_app``). ``http``: the inspector's transport (default: in-process for
    the hub's origin)."""
    hub = Hub(hub_app)
    hub.ensure_sandbox_client()
    fhir = FlavouredFhir(hub, flavours or load_flavours(), sessions)
    ins = inspector.Inspector(secret=inspector_secret(hub_app), origin=hub.origin,
                              http=http or Transport(hub.origin), pending=PendingLaunches())
    inspector.ensure_client(hub.auth, ins)
    sandbox_app = create_sandbox_app(hub_app, fhir, ins)
    apps: dict[str, Any] = {"/sandbox": sandbox_app}
    smart = None
    if with_app:
        from smart_app.transport import Transport as AppTransport

        app_transport = AppTransport(local_origin=hub.origin)
        smart = build_smart_app(hub, fhir, hub_app, app_transport)
        apps["/app"] = smart
    mounted = Mounted(hub_app, apps)
    if http is None:
        ins.http.wsgi_app = mounted  # the inspector reaches /fhir and /sandbox/<flavour> without a socket
    if smart is not None:
        app_transport.wsgi_app = mounted  # so does the SMART app (one process, one worker: no self-wait)
    mounted.hub_app, mounted.sandbox_app, mounted.smart_app, mounted.fhir = hub_app, sandbox_app, smart, fhir
    return mounted


def create() -> Any:
    """Factory for ``granian --factory sandbox_fixtures.sandbox.wsgi:create`` (settings from the environment;
    ``TELEHUB_SANDBOX_FLAVOURS`` names another flavours.toml, e.g. with latency or a 429 rate for a bench)."""
    import os
    from pathlib import Path

    from fhir_gateway.app import create_app
    from fhir_gateway.demo import seed_demo_visits
    from fhir_gateway.settings import load_settings

    other = os.environ.get("TELEHUB_SANDBOX_FLAVOURS")
    mounted = mount(create_app(load_settings()), flavours=load_flavours(Path(other)) if other else None)
    seed_demo_visits(mounted.hub_app)  # today's visits for the demo physician, so /app is not empty
    return mounted
