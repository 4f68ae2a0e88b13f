"""``create_app(settings)``: the only place that wires Telehub's FHIR server together.

No module-level app and no hidden singletons: every collaborator is built here
from the settings passed in and attached to the Flask app's extensions.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response

from fhir_gateway.access import AccessPolicy
from fhir_gateway.audit.trail import AuditTrail
from fhir_gateway.policy import PatientCompartment, RolePolicy, load_roles
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
                   audit_key: bytes | None = None, migrate: bool = True) -> FhirServices:
    """Wire storage, search and validation (also used by the CLI importer, without Flask)."""
    registry = registry or default_registry()
    hasher = hasher or PlainIndexHasher()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    if migrate:
        upgrade(engine)
    extractor = IndexExtractor(registry)
    writer = IndexWriter(extractor, hasher)
    repository = Repository(engine, writer, codec or JsonCodec())
    search = SearchService(registry, repository, hasher, settings)
    audit = AuditTrail(audit_key, repository.codec) if audit_key is not None else None
    return FhirServices(settings=settings, registry=registry, repository=repository, search=search,
                        access=access or default_policy(settings, extractor), validator=Validator(), audit=audit)


def default_policy(settings: Settings, extractor: IndexExtractor) -> AccessPolicy:
    """The role table and patient compartment; with TELEHUB_AUTH=off a request without a role has full access."""
    return RolePolicy(load_roles(), PatientCompartment(extractor), open_without_role=settings.auth == "off")


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings()
    app = Flask("telehub")
    app.config["MAX_CONTENT_LENGTH"] = None  # the FHIR layer enforces its own limit with an OperationOutcome
    services = build_services(settings, **overrides)
    app.extensions["telehub.fhir"] = services
    app.register_blueprint(make_blueprint(), url_prefix="/fhir")
    register_error_pages(app)

    @app.get("/healthz")
    def _health() -> Response:
        return Response(orjson.dumps({"status": "ok"}), content_type="application/json")

    if settings.auth == "off":
        log.warning("TELEHUB_AUTH=off: the FHIR API is open to anyone who can reach it (development only)")
    return app
