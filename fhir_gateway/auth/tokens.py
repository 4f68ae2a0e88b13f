"""Access, refresh and ID tokens: issuing, persisting, verifying, introspecting, revoking.

Access tokens are JWTs signed RS256 with a ``kid`` (RFC 9068 style claims plus
SMART context); their ``jti`` indexes ``auth_token`` so revocation is honoured.
Refresh tokens are opaque and stored only as SHA-256 hashes.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError
from sqlalchemy import Engine, insert, select, update

from fhir_gateway.auth import style
from fhir_gateway.auth.errors import InvalidTokenError
from fhir_gateway.auth.keys import SigningKeys
from fhir_gateway.auth.passwords import token_hash
from fhir_gateway.auth.scopes import ScopeSet, parse_scopes
from fhir_gateway.auth.tables import auth_client, auth_token
from fhir_gateway.auth.users import User, UserStore

USER_LIFETIME = 3600
BACKEND_LIFETIME = 300
OFFLINE_REFRESH_LIFETIME = 90 * 24 * 3600  # ≥ 3 months, renewed on each refresh
ONLINE_REFRESH_LIFETIME = 24 * 3600  # and only while the sign-in session lasts (see SESSION_KEY)
SESSION_KEY = "_session"  # stored token context: the sign-in session of an online_access grant
CONTEXT_FIELDS = ("patient", "encounter", "need_patient_banner", "smart_style_url", "intent", "fhirContext",
                  "tenant")


@dataclass(frozen=True)
class TokenClaims:
    """What the FHIR server needs to know about a verified bearer token."""

    client_id: str
    scopes: ScopeSet
    jti: str
    expires: int
    user: str | None = None  # username
    role: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def is_system(self) -> bool:
        return self.user is None


@dataclass
class TokenRecord:
    """A row of ``auth_token`` in the shape Authlib's introspection and revocation endpoints expect."""

    pk: int
    jti: str
    client_id: str
    user_pk: int | None
    scope: str
    context: dict[str, Any]
    access_expires: int
    refresh_expires: int | None
    revoked: bool
    refresh_used: bool
    family: str
    kind: str = "access_token"

    def check_client(self, client: Any) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, self.access_expires - int(time.time()))

    def is_expired(self) -> bool:
        exp = self.refresh_expires if self.kind == "refresh_token" else self.access_expires
        return exp is None or exp <= int(time.time())

    def is_revoked(self) -> bool:
        return self.revoked or (self.kind == "refresh_token" and self.refresh_used)


def _record(row: Any, kind: str = "access_token") -> TokenRecord:
    return TokenRecord(pk=int(row.pk), jti=row.jti, client_id=row.client_id, user_pk=row.user_pk, scope=row.scope,
                       context=json.loads(row.context), access_expires=int(row.access_expires),
                       refresh_expires=row.refresh_expires, revoked=bool(row.revoked),
                       refresh_used=bool(row.refresh_used), family=row.family, kind=kind)


class TokenService:
    def __init__(self, engine: Engine, keys: SigningKeys, users: UserStore, issuer: str, *,
                 user_lifetime: int = USER_LIFETIME, backend_lifetime: int = BACKEND_LIFETIME) -> None:
        self.engine = engine
        self.keys = keys
        self.users = users
        self.issuer = issuer  # the FHIR base URL: also the ``aud`` of access tokens
        self.user_lifetime = user_lifetime
        self.backend_lifetime = backend_lifetime

    def issue(self, *, client_id: str, user: User | None, scope: str, context: dict[str, Any] | None = None,
              family: str | None = None, nonce: str | None = None, refresh: bool = True,
              lifetime: int | None = None, session: str | None = None) -> dict[str, Any]:
        """Mint and record an access token (and refresh/ID tokens when the scopes ask); return the response body.

        ``session``: the sign-in session an ``online_access`` refresh token lives and dies with (kept
        server-side with the token, never returned).
        """
        now = int(time.time())
        context = {k: v for k, v in (context or {}).items() if k in CONTEXT_FIELDS and v is not None}
        scopes = parse_scopes(scope)
        lifetime = lifetime or (self.user_lifetime if user else self.backend_lifetime)
        jti = secrets.token_hex(16)
        sub = user.get_user_id() if user else client_id
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.issuer, "sub": sub,
                                  "client_id": client_id, "scope": scope, "iat": now, "exp": now + lifetime,
                                  "jti": jti}
        if user:
            claims.update({"role": user.role, "username": user.username})
            if user.fhir_user:
                claims["fhirUser"] = user.fhir_user
        for name in ("patient", "encounter"):
            if context.get(name):
                claims[name] = context[name]
        access = self.keys.sign(claims)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime,
                                "scope": scope}
        body.update(context)
        if user is not None:
            body.setdefault("need_patient_banner", bool(context.get("need_patient_banner", False)))
            body.setdefault("smart_style_url", self.issuer + style.PATH)
        refresh_token = None
        refresh_expires = None
        if refresh and user is not None and (scopes.has("offline_access") or scopes.has("online_access")):
            refresh_token = secrets.token_urlsafe(48)
            refresh_expires = now + (OFFLINE_REFRESH_LIFETIME if scopes.has("offline_access")
                                     else ONLINE_REFRESH_LIFETIME)
            body["refresh_token"] = refresh_token
        if user is not None and scopes.has("openid") and (scopes.has("fhirUser") or scopes.has("profile")):
            body["id_token"] = self.id_token(client_id, user, nonce, now)
        with self.engine.begin() as conn:
            conn.execute(insert(auth_token).values(
                jti=jti, refresh_hash=token_hash(refresh_token) if refresh_token else None, family=family or jti,
                client_id=client_id, user_pk=user.pk if user else None, scope=scope,
                context=json.dumps({**context, SESSION_KEY: session} if session else context),
                access_expires=now + lifetime, refresh_expires=refresh_expires, refresh_used=False, revoked=False,
                created=now))
        return body

    def id_token(self, client_id: str, user: User, nonce: str | None, now: int) -> str:
        claims: dict[str, Any] = {"iss": self.issuer, "sub": user.get_user_id(), "aud": client_id, "iat": now,
                                  "exp": now + self.user_lifetime}
        if user.fhir_user:
            claims["fhirUser"] = f"{self.issuer}/{user.fhir_user}"
        if nonce:
            claims["nonce"] = nonce
        return self.keys.sign(claims, "RS256")

    # -- lookups
    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = dict(self.keys.decode(token).claims)
        except (JoseError, ValueError) as exc:
            raise InvalidTokenError("the access token is not valid") from exc
        now = int(time.time())
        if claims.get("iss") != self.issuer or claims.get("aud") != self.issuer:
            raise InvalidTokenError("the access token was not issued for this server")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise InvalidTokenError("the access token has expired")
        return claims

    def find_access(self, token: str) -> TokenRecord | None:
        try:
            claims = self._decode(token)
        except InvalidTokenError:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_token).where(auth_token.c.jti == str(claims.get("jti")))).first()
        return _record(row) if row else None

    def find_refresh(self, refresh_token: str) -> TokenRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_token).where(
                auth_token.c.refresh_hash == token_hash(refresh_token))).first()
        return _record(row, "refresh_token") if row else None

    def find(self, token: str, hint: str | None = None) -> TokenRecord | None:
        if hint == "refresh_token":
            return self.find_refresh(token) or self.find_access(token)
        return self.find_access(token) or self.find_refresh(token)

    def use_refresh(self, record: TokenRecord) -> bool:
        """Mark a refresh token used (rotation); False if another request used it first."""
        with self.engine.begin() as conn:
            return conn.execute(update(auth_token).where(auth_token.c.pk == record.pk,
                                                         auth_token.c.refresh_used.is_(False))
                                .values(refresh_used=True)).rowcount == 1

    def revoke(self, record: TokenRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(auth_token).where(auth_token.c.pk == record.pk).values(revoked=True))

    def revoke_family(self, family: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(update(auth_token).where(auth_token.c.family == family)
                                    .values(revoked=True)).rowcount)

    def verify(self, token: str) -> TokenClaims:
        """Verify a bearer token for the FHIR server; raises :class:`InvalidTokenError` (→ 401)."""
        claims = self._decode(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_token.c.revoked, auth_token.c.context, auth_client.c.disabled)
                               .join(auth_client, auth_client.c.client_id == auth_token.c.client_id, isouter=True)
                               .where(auth_token.c.jti == str(claims.get("jti")))).first()
        if row is None or row.revoked:
            raise InvalidTokenError("the access token has been revoked")
        if row.disabled is None or row.disabled:  # the client was removed or revoked: so are its tokens
            raise InvalidTokenError("the client of this token is no longer registered")
        user_name = role = None
        if "username" in claims:
            user = self.users.get(int(claims["sub"]))
            if user is None or user.disabled:
                raise InvalidTokenError("the user of this token is disabled")
            user_name, role = user.username, user.role
        context = json.loads(row.context)
        return TokenClaims(client_id=str(claims["client_id"]), scopes=parse_scopes(str(claims.get("scope", ""))),
                           jti=str(claims["jti"]), expires=int(claims["exp"]), user=user_name, role=role,
                           fhir_user=claims.get("fhirUser"), patient=context.get("patient"),
                           encounter=context.get("encounter"), context=context)

    def introspect(self, record: TokenRecord) -> dict[str, Any]:
        exp = record.refresh_expires if record.kind == "refresh_token" else record.access_expires
        out: dict[str, Any] = {"active": True, "scope": record.scope, "client_id": record.client_id, "exp": exp,
                               "iss": self.issuer, "token_type": "Bearer" if record.kind == "access_token" else None,
                               "sub": str(record.user_pk) if record.user_pk is not None else record.client_id}
        if record.user_pk is not None:
            user = self.users.get(record.user_pk)
            if user is None or user.disabled:
                return {"active": False}
            out["username"] = user.username
            if user.fhir_user:
                out["fhirUser"] = f"{self.issuer}/{user.fhir_user}"
        for name in ("patient", "encounter"):
            if record.context.get(name):
                out[name] = record.context[name]
        return {k: v for k, v in out.items() if v is not None}
