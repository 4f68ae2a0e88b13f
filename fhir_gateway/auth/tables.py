"""SQLAlchemy Core tables of the authorization server (migrations 0004, 0005), on the shared metadata.

Times are seconds since the epoch (UTC). Secrets are never stored in clear:
client secrets, authorization codes and refresh tokens are kept as hashes,
private signing keys encrypted (see :mod:`fhir_gateway.auth.keys`).
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, String, Table, Text

from fhir_gateway.storage.tables import PK, metadata

auth_client = Table(
    "auth_client", metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("client_type", String(16), nullable=False),  # public | symmetric | asymmetric
    Column("secret_hash", String(255), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("jwks_uri", Text, nullable=True),
    Column("redirect_uris", Text, nullable=False),  # JSON list
    Column("grant_types", Text, nullable=False),  # JSON list
    Column("scope", Text, nullable=False),
    Column("launch_uri", Text, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

auth_user = Table(
    "auth_user", metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("fhir_user", String(255), nullable=True),
    Column("patient", String(128), nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),  # AES-256-GCM(nonce || ciphertext), AAD = username (mfa.py)
    Column("totp_last_step", BigInteger, nullable=True),  # last accepted TOTP time step: a code works once (0005)
    Column("failed_logins", Integer, nullable=False, default=0),  # consecutive failures since the last sign-in
    Column("locked_until", BigInteger, nullable=True),  # lock-out end, epoch seconds (0005)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
)

auth_signing_key = Table(
    "auth_signing_key", metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # AES-256-GCM(nonce || ciphertext), AAD = kid
    Column("status", String(16), nullable=False),  # active | retired
    Column("created", BigInteger, nullable=False),
)

auth_code = Table(
    "auth_code", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("user_pk", BigInteger, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("context", Text, nullable=False),  # JSON launch context
    Column("expires", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
)

auth_token = Table(
    "auth_token", metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("jti", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), nullable=True, unique=True),
    Column("family", String(64), nullable=False),  # the code hash (or first jti) every refresh inherits
    Column("client_id", String(128), nullable=False),
    Column("user_pk", BigInteger, nullable=True),
    Column("scope", Text, nullable=False),
    Column("context", Text, nullable=False),  # JSON launch context
    Column("access_expires", BigInteger, nullable=False),
    Column("refresh_expires", BigInteger, nullable=True),
    Column("refresh_used", Boolean, nullable=False, default=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
    Index("ix_auth_token_family", "family"),
)

# -- Dynamic client registration (RFC 7591/7592, migration 0006): only hashes of the bearer tokens are kept.
auth_initial_token = Table(
    "auth_initial_token", metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the initial access token
    Column("scope_ceiling", Text, nullable=True),  # NULL: any valid SMART scope may be registered
    Column("uses_left", Integer, nullable=True),  # NULL: unlimited until it expires
    Column("expires", BigInteger, nullable=False),
    Column("created", BigInteger, nullable=False),
)

auth_client_registration = Table(
    "auth_client_registration", metadata,
    Column("client_id", String(128), primary_key=True),
    Column("access_token_hash", String(64), nullable=False, unique=True),  # RFC 7592 registration access token
    Column("initial_token_hash", String(64), nullable=True),  # which initial access token registered it
    Column("auth_method", String(32), nullable=False),  # token_endpoint_auth_method as registered
    Column("metadata_json", Text, nullable=False),  # JSON: response_types, client_name, software_id, …
    Column("created", BigInteger, nullable=False),
)
