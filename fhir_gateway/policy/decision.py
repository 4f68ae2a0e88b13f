"""RolePolicy: the access decision for every request, from the role table and the patient compartment.

One decision point (see :class:`fhir_gateway.access.AccessPolicy`): the route
table asks ``check`` before any storage access; reads, searches, history,
includes, ``$everything`` and each batch entry pass through ``can_see``/``scope``;
every returned resource through ``shape``. The SMART issue's scopes plug in
here too (they narrow ``ctx.scopes``; the role table stays the ceiling).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from fhir_gateway.access import RequestContext
from fhir_gateway.auth.scopes import ScopeSet
from fhir_gateway.definitions import resource_types
from fhir_gateway.errors import Forbidden, Unauthorized
from fhir_gateway.policy.compartment import PatientCompartment
from fhir_gateway.policy.granular import GranularFilters
from fhir_gateway.policy.table import Role

ALWAYS_KEPT = ("resourceType", "id", "meta", "implicitRules", "language")
PUBLIC_INTERACTIONS = frozenset({"capabilities", "operation:$capabilities"})
# SMART v2 letters (v1 .read/.write are expanded by the scope parser): which letter an interaction needs
SCOPE_LETTERS = {"read": "r", "vread": "r", "history-instance": "r", "search-type": "s", "search-system": "s",
                 "history-type": "s", "history-system": "s", "create": "c", "update": "u", "patch": "u",
                 "delete": "d"}


class RolePolicy:
    def __init__(self, roles: dict[str, Role], compartment: PatientCompartment, *,
                 granular: GranularFilters | None = None, open_without_role: bool = False) -> None:
        """``open_without_role``: a request with no role gets full access (only for TELEHUB_AUTH=off).
        ``granular``: evaluates SMART scope queries (``?category=…``); without it a filtered scope grants nothing."""
        self.roles = roles
        self.compartment = compartment
        self.granular = granular
        self.open_without_role = open_without_role

    def _role(self, ctx: RequestContext) -> Role | None:
        if ctx.role is None:
            if self.open_without_role:
                return None
            raise Unauthorized("authentication required")
        role = self.roles.get(ctx.role)
        if role is None:
            raise Forbidden("this role has no access")
        if role.compartment and not ctx.patient:
            raise Forbidden("a patient role needs a patient context")
        return role

    def check(self, ctx: RequestContext, interaction: str, resource_type: str | None) -> None:
        if interaction in PUBLIC_INTERACTIONS:
            return
        role = self._role(ctx)
        if role is not None and not role.may(interaction, resource_type):
            what = resource_type or "the system level"
            raise Forbidden(f"role {role.name} may not {interaction} on {what}")
        scopes = ctx.extra.get("scope_set")
        if scopes is not None and resource_type is not None:
            letter = SCOPE_LETTERS.get(interaction, "r" if interaction.startswith("operation:") else None)
            if letter is not None and not scopes.permits(letter, resource_type):
                raise Forbidden(f"the access token's scopes do not permit {interaction} on {resource_type}",
                                code="forbidden")

    def can_see(self, ctx: RequestContext, resource: dict[str, Any], interaction: str = "read") -> bool:
        role = self._role(ctx)
        if role is None:
            return True
        rtype = resource.get("resourceType")
        if rtype not in role.read and rtype not in role.write:
            return False
        if not self._scopes_allow(ctx, resource, interaction):
            return False
        if ctx.patient and (role.compartment or _patient_scoped(ctx)):
            return self.compartment.contains(resource, ctx.patient)
        return True

    def _scopes_allow(self, ctx: RequestContext, resource: dict[str, Any], interaction: str) -> bool:
        """The token's scopes permit this resource's type for ``interaction`` and it passes their filters."""
        scopes: ScopeSet | None = ctx.extra.get("scope_set")
        if scopes is None:
            return True
        queries = scopes.filters(letter_for(interaction), str(resource.get("resourceType")))
        if queries is None:
            return False
        if not queries or any(not q for q in queries):
            return True
        return self.granular is not None and self.granular.allows(resource, queries)

    def shape(self, ctx: RequestContext, resource: dict[str, Any]) -> dict[str, Any]:
        role = self._role(ctx)
        if role is None:
            return resource
        allowed = role.fields.get(str(resource.get("resourceType")))
        if allowed is None:
            return resource
        return {k: v for k, v in resource.items()
                if k in ALWAYS_KEPT or k in allowed or (k.startswith("_") and k[1:] in allowed)}

    def restore_hidden(self, ctx: RequestContext, new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """On update by a role that cannot see every field, keep the fields it could not see."""
        role = self._role(ctx)
        allowed = role.fields.get(str(new.get("resourceType"))) if role is not None else None
        if allowed is None:
            return new
        hidden = {k: v for k, v in current.items() if k not in ALWAYS_KEPT and k not in allowed
                  and not (k.startswith("_") and k[1:] in allowed)}
        visible = {k: v for k, v in new.items() if k in ALWAYS_KEPT or k in allowed
                   or (k.startswith("_") and k[1:] in allowed)}
        return {**visible, **hidden}

    def scope(self, ctx: RequestContext, rtype: ColumnElement[Any], pk: ColumnElement[Any],
              fid: ColumnElement[Any], interaction: str = "search-type") -> ColumnElement[bool] | None:
        role = self._role(ctx)
        if role is None:
            return None
        conditions: list[ColumnElement[bool]] = []
        if len(role.read) < len(resource_types()):  # not every type: restrict to the readable ones
            conditions.append(rtype.in_(sorted(role.read)))
        scopes: ScopeSet | None = ctx.extra.get("scope_set")
        if scopes is not None:
            by_scope = self._scope_sql(scopes, letter_for(interaction), rtype, pk)
            if by_scope is not None:
                conditions.append(by_scope)
        if ctx.patient and (role.compartment or _patient_scoped(ctx)):
            conditions.append(self.compartment.scope(ctx.patient, rtype, pk, fid))
        return and_(*conditions) if conditions else None


    def _scope_sql(self, scopes: ScopeSet, letter: str, rtype: ColumnElement[Any],
                   pk: ColumnElement[Any]) -> ColumnElement[bool] | None:
        """SQL for "a type the scopes permit, passing its granular filters"; None when nothing narrows."""
        wild = scopes.filters(letter, "*")  # only ``*`` scopes match the type name "*"
        named = sorted({r.resource_type for r in scopes.resources if letter in r.interactions} - {"*"})
        per_type = {t: scopes.filters(letter, t) or () for t in named}
        filtered = {t: q for t, q in per_type.items() if q and all(q)}
        if wild == () and not filtered:
            return None
        parts: list[ColumnElement[bool]] = []
        for t, queries in filtered.items():
            cond = self.granular.condition(t, queries, pk) if self.granular is not None else false()
            parts.append(and_(rtype == t, cond))
        unfiltered = [t for t in named if t not in filtered]
        if wild == ():
            parts.append(rtype.not_in(sorted(filtered)))
        elif unfiltered:
            parts.append(rtype.in_(unfiltered))
        return or_(*parts) if parts else false()


def letter_for(interaction: str) -> str:
    """The SMART v2 letter whose scopes govern what ``interaction`` may return or write."""
    return SCOPE_LETTERS.get(interaction, "r")


def _patient_scoped(ctx: RequestContext) -> bool:
    """A token whose clinical scopes are all ``patient/…`` is held to the patient's compartment."""
    scopes = ctx.extra.get("scope_set")
    return scopes is not None and bool(scopes.resources) and scopes.contexts == frozenset({"patient"})
