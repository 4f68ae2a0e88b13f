"""SMART App Launch scopes, v1 and v2, with granular ``?param=value`` filters — sans-IO.

Spec: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html

``parse_scopes("patient/Observation.rs?category=…|laboratory openid")`` gives a
:class:`ScopeSet`; :meth:`ScopeSet.permits` answers "may this token perform
interaction I on type T", and :meth:`ScopeSet.filters` returns the granular
filters that narrow it (an empty tuple means "unrestricted for that type").

v1 ``read`` maps to v2 ``rs``, v1 ``write`` to ``cud``, ``*`` to ``cruds``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
V2_LETTERS = "cruds"
V1_MAP = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}
SPECIAL = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
                     "offline_access", "online_access"})

_RESOURCE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([^?]+)(?:\?(.*))?$")
_V2 = re.compile(r"^c?r?u?d?s?$")


class Interaction(Enum):
    """FHIR interactions, each with the SMART v2 letter that permits it."""

    CREATE = "c"
    READ = "r"
    VREAD = "r"
    HISTORY_INSTANCE = "r"
    UPDATE = "u"
    PATCH = "u"
    DELETE = "d"
    SEARCH = "s"
    HISTORY_TYPE = "s"


class ScopeSyntaxError(ValueError):
    """A scope string is not a valid SMART scope."""


@dataclass(frozen=True)
class ResourceScope:
    """One clinical scope such as ``patient/Observation.rs?category=…``."""

    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    interactions: frozenset[str]  # subset of "cruds"
    query: tuple[tuple[str, str], ...] = ()
    version: int = 2
    raw: str = ""

    def matches_type(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)


@dataclass(frozen=True)
class ScopeSet:
    """Every scope of a token, parsed."""

    resources: tuple[ResourceScope, ...] = ()
    special: frozenset[str] = frozenset()
    unknown: tuple[str, ...] = ()
    raw: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return " ".join(self.raw)

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset(r.context for r in self.resources)

    def matching(self, interaction: Interaction | str, resource_type: str,
                 context: str | None = None) -> tuple[ResourceScope, ...]:
        letter = interaction.value if isinstance(interaction, Interaction) else interaction
        return tuple(r for r in self.resources
                     if letter in r.interactions and r.matches_type(resource_type)
                     and (context is None or r.context == context))

    def permits(self, interaction: Interaction | str, resource_type: str, context: str | None = None) -> bool:
        """True when some scope grants ``interaction`` on ``resource_type`` (filters may still narrow it)."""
        return bool(self.matching(interaction, resource_type, context))

    def filters(self, interaction: Interaction | str, resource_type: str,
                context: str | None = None) -> tuple[tuple[tuple[str, str], ...], ...] | None:
        """Granular filters for the permitted scopes, OR-ed; ``()`` means unrestricted, ``None`` not permitted."""
        found = self.matching(interaction, resource_type, context)
        if not found:
            return None
        if any(not r.query for r in found):
            return ()
        return tuple(r.query for r in found)

    def has(self, name: str) -> bool:
        return name in self.special


def parse_scope(token: str) -> ResourceScope | None:
    """Parse one clinical scope; ``None`` if it is not one (a special or unknown scope)."""
    m = _RESOURCE.match(token)
    if not m:
        return None
    context, rtype, perms, query = m.groups()
    if perms in V1_MAP:
        letters, version = V1_MAP[perms], 1
    elif perms and _V2.match(perms):
        letters, version = frozenset(perms), 2
    else:
        raise ScopeSyntaxError(f"invalid permissions in scope {token!r}")
    pairs: tuple[tuple[str, str], ...] = ()
    if query is not None:
        if version == 1:
            raise ScopeSyntaxError(f"v1 scope {token!r} cannot carry a query")
        try:
            pairs = tuple(parse_qsl(query, keep_blank_values=False, strict_parsing=True))
        except ValueError as exc:
            raise ScopeSyntaxError(f"invalid query in scope {token!r}") from exc
    return ResourceScope(context, rtype, letters, pairs, version, token)


def parse_scopes(scope: str | None, *, strict: bool = False) -> ScopeSet:
    """Parse a space-separated scope string. Unknown scopes are kept apart (or refused when ``strict``)."""
    resources: list[ResourceScope] = []
    special: set[str] = set()
    unknown: list[str] = []
    raw = tuple(dict.fromkeys((scope or "").split()))
    for token in raw:
        if token in SPECIAL:
            special.add(token)
            continue
        try:
            parsed = parse_scope(token)
        except ScopeSyntaxError:
            if strict:
                raise
            parsed = None
        if parsed is None:
            if strict:
                raise ScopeSyntaxError(f"unknown scope {token!r}")
            unknown.append(token)
        else:
            resources.append(parsed)
    return ScopeSet(tuple(resources), frozenset(special), tuple(unknown), raw)


def covers(granted: ResourceScope, wanted: ResourceScope) -> bool:
    """True when ``granted`` allows everything ``wanted`` asks for (bounds requests by a registration)."""
    if granted.context != wanted.context or not granted.matches_type(wanted.resource_type):
        return False
    if not wanted.interactions <= granted.interactions:
        return False
    return not granted.query or granted.query == wanted.query


def allowed_subset(requested: str | None, registered: str | None) -> list[str]:
    """The requested scopes a client registered for ``registered`` may receive, in request order."""
    reg = parse_scopes(registered)
    out: list[str] = []
    for token in parse_scopes(requested).raw:
        if token in reg.raw or token in reg.special:
            out.append(token)
            continue
        try:
            wanted = parse_scope(token)
        except ScopeSyntaxError:
            continue
        if wanted is not None and any(covers(g, wanted) for g in reg.resources):
            out.append(token)
    return out


PLAIN_LANGUAGE = {
    "openid": "Confirm who you are to the app",
    "fhirUser": "Tell the app which person record is yours",
    "profile": "Tell the app your profile",
    "launch": "Open in the context of your current record",
    "launch/patient": "Know which patient record you are viewing",
    "launch/encounter": "Know which visit you are in",
    "offline_access": "Keep access when you are not using it (until you revoke it)",
    "online_access": "Keep access while you are signed in",
}
_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_WHO = {"patient": "your", "user": "records you can see:", "system": "all"}


def describe(token: str) -> str:
    """A plain-language description of one scope for the consent page."""
    if token in PLAIN_LANGUAGE:
        return PLAIN_LANGUAGE[token]
    try:
        parsed = parse_scope(token)
    except ScopeSyntaxError:
        parsed = None
    if parsed is None:
        return token
    verbs = ", ".join(_VERBS[c] for c in V2_LETTERS if c in parsed.interactions)
    what = "all record types" if parsed.resource_type == "*" else parsed.resource_type
    text = f"{verbs.capitalize()} {_WHO[parsed.context]} {what}"
    if parsed.query:
        text += " (only " + ", ".join(f"{k} {v.split('|')[-1]}" for k, v in parsed.query) + ")"
    return text
