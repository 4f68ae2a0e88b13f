"""``create_app(settings)``: the only place that wires Telehub's FHIR server together.

No module-level app and no hidden singletons: every collaborator is built here
from the settings passed in and attached to the Flask app's extensions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Response

from fhir_gateway.access import AccessPolicy
from fhir_gateway.audit.auth_events import init_app as audit_auth_endpoints
from fhir_gateway.audit.trail import AuditTrail
from fhir_gateway.auth import init_app as init_auth
from fhir_gateway.crypto.blind_index import BlindIndexHasher, load_policy
from fhir_gateway.crypto.envelope import EnvelopeCodec
from fhir_gateway.crypto.keyring import KeyRing
from fhir_gateway.crypto.kms import load_kms
from fhir_gateway.observability import configure_logging, request_log
from fhir_gateway.policy import PatientCompartment, RolePolicy, load_roles
from fhir_gateway.policy.granular import GranularFilters
from fhir_gateway.rest import cors, security_headers
from fhir_gateway.rest.context import FhirServices, Validator
from fhir_gateway.rest.http import make_blueprint, register_error_pages
from fhir_gateway.search.extract import IndexExtractor
from fhir_gateway.search.hashing import IndexHasher, PlainIndexHasher
from fhir_gateway.search.registry import SearchRegistry, default_registry
from fhir_gateway.settings import Settings, load_settings
from fhir_gateway.storage.codec import BodyCodec, JsonCodec
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.index_writer import IndexWriter
from fhir_gateway.storage.migrate import upgrade
from fhir_gateway.storage.repository import Repository
from fhir_gateway.storage.searching import SearchService

log = logging.getLogger("telehub")


def build_services(settings: Settings, *, registry: SearchRegistry | None = None, codec: BodyCodec | None = None,
                   hasher: IndexHasher | None = None, access: AccessPolicy | None = None,
                   audit_key: bytes | None = None, keyring: KeyRing | None = None,
                   migrate: bool = True) -> FhirServices:
    """Wire storage, search and validation (also used by the CLI importer, without Flask)."""
    registry = registry or default_registry()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    if migrate:
        upgrade(engine)
    if keyring is None and (settings.encryption or settings.blind_indexes or (settings.audit and audit_key is None)):
        keyring = KeyRing(engine, load_kms(settings))
        keyring.ensure()  # at start-up: creating keys lazily inside a write transaction would deadlock SQLite
    if codec is None:
        codec = EnvelopeCodec(keyring) if settings.encryption and keyring else JsonCodec()
    if hasher is None:
        hasher = (BlindIndexHasher(keyring.blind_index_key(), load_policy(registry=registry))
                  if settings.blind_indexes and keyring else PlainIndexHasher())
    if audit_key is None and settings.audit and keyring is not None:
        audit_key = audit_chain_key(keyring.blind_index_key())
    extractor = IndexExtractor(registry)
    writer = IndexWriter(extractor, hasher)
    repository = Repository(engine, writer, codec)
    search = SearchService(registry, repository, hasher, settings)
    audit = AuditTrail(audit_key, repository.codec) if audit_key is not None and settings.audit else None
    return FhirServices(settings=settings, registry=registry, repository=repository, search=search,
                        access=access or default_policy(settings, extractor), validator=Validator(), audit=audit,
                        keyring=keyring)


def signing_key_provider(services: FhirServices) -> Callable[[], bytes] | None:
    """The secret protecting the SMART signing keys, derived from the key ring under its own label."""
    keyring = services.keyring
    if keyring is None:
        return None
    return lambda: _derive(keyring.blind_index_key(), b"telehub/auth-signing-keys/v1")


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


def audit_chain_key(master: bytes) -> bytes:
    """The audit chain's HMAC key, derived (HKDF-SHA256, its own label) from the kept, never-rotated
    blind-index key: rotating it would make the existing chain unverifiable."""
    return _derive(master, b"telehub/audit-chain/v1")


def default_policy(settings: Settings, extractor: IndexExtractor) -> AccessPolicy:
    """The role table and patient compartment; with TELEHUB_AUTH=off a request without a role has full access."""
    return RolePolicy(load_roles(), PatientCompartment(extractor),
                      granular=GranularFilters(extractor.registry, extractor), open_without_role=settings.auth == "off")


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings)  # first, so migration and key-ring logs are scrubbed too
    app = Flask("telehub")
    request_log.init_app(app)  # before other before_request hooks: it fixes the request id
    security_headers.init_app(app, settings)
    app.config["MAX_CONTENT_LENGTH"] = None  # the FHIR layer enforces its own limit with an OperationOutcome
    services = build_services(settings, **overrides)
    app.extensions["telehub.fhir"] = services
    init_auth(app, settings, services.repository.engine, key_provider=signing_key_provider(services))
    if services.audit is not None:
        audit_auth_endpoints(app, services.audit, services.repository)
    app.register_blueprint(make_blueprint(), url_prefix="/fhir")
    cors.init_app(app, "/fhir")
    register_error_pages(app)

    @app.get("/healthz")
    def _health() -> Response:
        return Response(orjson.dumps({"status": "ok"}), content_type="application/json")

    if settings.auth == "off":
        log.warning("TELEHUB_AUTH=off: the FHIR API is open to anyone who can reach it (development only)")
    return app
