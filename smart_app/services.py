"""What the routes need, built once by ``create_app``: settings, transport, stores, the hub client."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from smart_app.fhir_client import HubClient
from smart_app.issuers import Issuers
from smart_app.session_store import SealedStore
from smart_app.settings import AppSettings
from smart_app.style import StyleCache
from smart_app.transport import Transport

EXT = "telehub.app"


@dataclass
class AppServices:
    settings: AppSettings
    transport: Transport
    store: SealedStore
    issuers: Issuers
    hub: HubClient
    styles: StyleCache


def services() -> AppServices:
    found: AppServices = current_app.extensions[EXT]
    return found
