"""Compile the simple FHIRPath subset used by search-parameter expressions into plain dict walkers.

The R4 SearchParameter expressions are nearly all paths: ``Patient.name``,
``(Observation.value as Quantity)``, ``Condition.onset.as(dateTime)``,
``Observation.subject.where(resolve() is Patient)``,
``Patient.telecom.where(system='email')``, ``Bundle.entry[0].resource``,
``%resource.referenceSeq.chromosome``, and unions of these; one is boolean
(``Patient.deceased.exists() and Patient.deceased != false``). This module parses
that subset (paths, ``|``, ``as``/``.as()``/``.ofType()``, ``[n]``, ``where()`` on
``resolve() is X`` or ``child = 'literal'``, and ``exists()``/``empty()``/``=``/``!=``/
``and``/``or`` for boolean values), types every step against the R4 model that ships with fhirpathpy
(so a choice element such as ``Observation.effective`` becomes the JSON keys
``effectiveDateTime``, ``effectivePeriod``, … and ``as X`` keeps only the
matching suffix), and returns a :data:`Getter`: a function from a start node (a
JSON dict) and the root resource to the list of matched JSON values.

Anything outside the subset raises :class:`Unsupported`; the caller then falls
back to fhirpathpy. The compiled getters walk plain dicts and lists only and never
raise on malformed data: a value of the wrong JSON shape is simply not matched.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fhirpathpy.models import models as _fhirpath_models

#: A compiled expression: ``getter(start, root)`` → the matched JSON values.
Getter = Callable[[Any, Mapping[str, Any]], list[Any]]
#: One compiled step over a collection.
_OpFn = Callable[[list[Any], Mapping[str, Any]], list[Any]]
#: A step as a hashable key (for sharing common prefixes): ("key", name), ("root",), ...
Op = tuple[Any, ...]


class Unsupported(Exception):
    """The expression uses FHIRPath beyond the compiled subset (the caller falls back to fhirpathpy)."""


# --------------------------------------------------------------------------- references

_REF_RE = re.compile(
    r"^(?:(?P<base>[A-Za-z][A-Za-z0-9+.\-]*://[^?#]*?)/)?"
    r"(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)


@dataclass(frozen=True, slots=True)
class ParsedReference:
    """A reference string taken apart: ``Type/id``, an absolute ``…/Type/id[/_history/v]``, or a bare URL."""

    target_type: str | None
    target_id: str | None
    url: str | None
    version: str | None


@lru_cache(maxsize=16384)
def parse_reference(reference: str) -> ParsedReference | None:
    """Parse ``Reference.reference`` (or a canonical/uri) into its parts; ``None`` for a contained ``#id``.

    * ``Patient/123`` and ``Patient/123/_history/2`` → type, id (and version);
    * ``https://host/fhir/Patient/123[/_history/2]`` → type, id, version and the URL
      without the ``_history`` part;
    * ``url|version`` (a canonical) → the URL and version, plus type and id when the
      URL ends in ``Type/id``;
    * anything else (``urn:uuid:…``, other URLs) → the URL only.

    Whether ``Type`` is a real resource type is left to the caller.
    """
    ref = reference.strip()
    if not ref or ref.startswith("#"):
        return None
    canonical_version: str | None = None
    if "|" in ref:
        ref, _, canonical_version = ref.partition("|")
        canonical_version = canonical_version or None
    match = _REF_RE.match(ref)
    if match is None:
        return ParsedReference(None, None, ref or None, canonical_version)
    rtype, rid, version, base = match.group("type", "id", "version", "base")
    url: str | None = None
    if base is not None:
        url = f"{base}/{rtype}/{rid}"
    elif canonical_version is not None:
        url = ref
    return ParsedReference(rtype, rid, url, version or canonical_version)


def reference_type(value: Any) -> str | None:
    """The target type of a Reference dict (or a reference string), as ``resolve() is X`` sees it."""
    if isinstance(value, dict):
        value = value.get("reference")
    if not isinstance(value, str):
        return None
    parsed = parse_reference(value)
    return parsed.target_type if parsed is not None else None


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Dot:
    left: Node
    right: Name | Call


@dataclass(frozen=True, slots=True)
class Index:
    left: Node
    index: Node


@dataclass(frozen=True, slots=True)
class TypeOp:
    op: str  # "is" | "as"
    left: Node
    type_name: str


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Union:
    parts: tuple[Node, ...]


Node = Name | Var | Literal | Call | Dot | Index | TypeOp | Binary | Union

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<id>%?[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)|(?P<op>!=|<=|>=|[.()\[\]|=,<>+\-*&~]))"
)
_KEYWORDS = frozenset({"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod"})


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise Unsupported(f"cannot tokenise at {pos}: {text!r}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        if kind == "id" and value.startswith("`"):
            value = value[1:-1]
        elif kind == "id" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the FHIRPath grammar, precedence: ``. []`` > ``is as`` > ``|`` > ``= !=``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise Unsupported(f"expected {value or kind}, got {tok}")
        self.pos += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value and tok[0] in ("op", "kw")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        return node

    def or_expr(self) -> Node:
        left = self.and_expr()
        while self.at("or"):
            self.take()
            left = Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> Node:
        left = self.equality()
        while self.at("and"):
            self.take()
            left = Binary("and", left, self.equality())
        return left

    def equality(self) -> Node:
        left = self.union()
        while self.at("=") or self.at("!="):
            op = self.take()[1]
            left = Binary(op, left, self.union())
        return left

    def union(self) -> Node:
        parts = [self.type_expr()]
        while self.at("|"):
            self.take()
            parts.append(self.type_expr())
        return parts[0] if len(parts) == 1 else Union(tuple(parts))

    def type_expr(self) -> Node:
        node = self.postfix()
        while self.at("is") or self.at("as"):
            op = self.take()[1]
            node = TypeOp(op, node, self.type_name())
        return node

    def type_name(self) -> str:
        name = self.take(kind="id")[1]
        while self.at("."):  # FHIR.Patient, System.String
            self.take()
            name = self.take(kind="id")[1]
        return name

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at("."):
                self.take()
                inv = self.invocation()
                node = Dot(node, inv)
            elif self.at("["):
                self.take()
                index = self.or_expr()
                self.take("]")
                node = Index(node, index)
            else:
                return node

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise Unsupported("unexpected end")
        kind, value = tok
        if kind == "op" and value == "(":
            self.take()
            node = self.or_expr()
            self.take(")")
            return node
        if kind == "str":
            self.take()
            return Literal(re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "num":
            self.take()
            if "." in value:
                raise Unsupported("decimal literal")
            return Literal(int(value))
        if kind == "id" and value.startswith("%"):
            self.take()
            return Var(value[1:])
        if kind == "id" and value in ("true", "false"):
            self.take()
            return Literal(value == "true")
        if kind == "id":
            return self.invocation()
        raise Unsupported(f"unexpected {tok}")

    def invocation(self) -> Name | Call:
        tok = self.peek()
        if tok is None or tok[0] not in ("id", "kw"):  # after ".", keywords are names too (``.as(X)``)
            raise Unsupported(f"expected a name, got {tok}")
        self.pos += 1
        name = tok[1]
        if self.at("("):
            self.take()
            args: list[Node] = []
            if not self.at(")"):
                args.append(self.or_expr())
                while self.at(","):
                    self.take()
                    args.append(self.or_expr())
            self.take(")")
            return Call(name, tuple(args))
        return Name(name)


def parse(expression: str) -> Node:
    """Parse a FHIRPath expression of the supported subset; raise :class:`Unsupported` otherwise."""
    return _Parser(expression).parse()


# --------------------------------------------------------------------------- R4 type model


class TypeModel:
    """Typing of FHIR paths from the R4 model that fhirpathpy ships (``fhirpathpy.models['r4']``).

    A *context* is a type name (``CodeableConcept``, ``Observation``, ``dateTime``)
    or, for a BackboneElement, its element path (``Observation.component``).
    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        self.path2type: Mapping[str, str | None] = model["path2Type"]
        self.choices: Mapping[str, list[str]] = model["choiceTypePaths"]
        self.elsewhere: Mapping[str, str] = model["pathsDefinedElsewhere"]
        self.parents: Mapping[str, str | None] = model["type2Parent"]
        prefixes: set[str] = set()
        for path in self.path2type:
            parts = path.split(".")
            for i in range(2, len(parts)):
                prefixes.add(".".join(parts[:i]))
        self.backbones = frozenset(prefixes)
        self.primitives = frozenset(t for t in self.parents if t[:1].islower())

    def canon(self, type_name: str) -> str:
        """``System.String`` → ``string``, ``DateTime`` → ``dateTime``, ``Quantity`` stays."""
        if type_name.startswith("System."):
            type_name = type_name[7:]
        lowered = type_name[:1].lower() + type_name[1:]
        return lowered if lowered in self.primitives else type_name

    def is_a(self, ctx: str, type_name: str) -> bool:
        """Whether a value of context ``ctx`` is of FHIR type ``type_name`` (or a subtype)."""
        wanted = self.canon(type_name)
        current: str | None = ctx
        while current:
            if current == wanted:
                return True
            current = "BackboneElement" if "." in current else self.parents.get(current)
        return False

    def child(self, ctx: str, name: str) -> list[tuple[str, str]]:
        """The JSON keys and contexts of element ``name`` of ``ctx`` (several for a choice element)."""
        current: str | None = ctx
        while current:
            path = f"{current}.{name}"
            types = self.choices.get(path)
            if types is not None:
                return [(name + t[:1].upper() + t[1:], self.canon(t)) for t in types]
            if path in self.elsewhere:
                return [(name, self.elsewhere[path])]
            if path in self.path2type:
                found = self.path2type[path]
                return [(name, self.canon(found) if found else path)]
            if path in self.backbones:
                return [(name, path)]
            current = "BackboneElement" if "." in current else self.parents.get(current)
        raise Unsupported(f"unknown element {ctx}.{name}")


@lru_cache(maxsize=1)
def r4_model() -> TypeModel:
    return TypeModel(_fhirpath_models["r4"])


# --------------------------------------------------------------------------- compiler


@dataclass(frozen=True, slots=True)
class Branch:
    """One typed alternative of a compiled expression: its steps and the context it ends in."""

    ops: tuple[Op, ...]
    ctx: str


class _Compiler:
    def __init__(self, model: TypeModel, resource_type: str) -> None:
        self.model = model
        self.resource_type = resource_type

    def compile(self, node: Node, inputs: list[Branch]) -> list[Branch]:
        if isinstance(node, Name):
            out: list[Branch] = []
            for b in inputs:
                if node.name[:1].isupper() and self.model.is_a(b.ctx, node.name):
                    out.append(b)  # ``Observation`` / ``Resource`` at the start: the focus itself
                else:
                    out.extend(self._children([b], node.name))
            return out
        if isinstance(node, Var):
            if node.name in ("resource", "rootResource"):
                return [Branch((("root",),), self.resource_type)]
            raise Unsupported(f"variable %{node.name}")
        if isinstance(node, Union):
            out = []
            for part in node.parts:
                out.extend(self.compile(part, inputs))
            return out
        if isinstance(node, TypeOp) and node.op == "as":
            return self._as(self.compile(node.left, inputs), node.type_name)
        if isinstance(node, Index):
            if not isinstance(node.index, Literal) or not isinstance(node.index.value, int):
                raise Unsupported("non-literal index")
            branches = self.compile(node.left, inputs)
            if len(branches) != 1:
                raise Unsupported("index over a union")
            b = branches[0]
            return [Branch((*b.ops, ("index", node.index.value)), b.ctx)]
        if isinstance(node, Dot):
            branches = self.compile(node.left, inputs)
            right = node.right
            if isinstance(right, Name):
                return self._children(branches, right.name)
            if right.fn in ("as", "ofType") and len(right.args) == 1 and isinstance(right.args[0], Name):
                return self._as(branches, right.args[0].name)
            if right.fn == "where" and len(right.args) == 1:
                return [Branch((*b.ops, self._predicate(right.args[0], b.ctx)), b.ctx) for b in branches]
            raise Unsupported(f"function {right.fn}()")
        raise Unsupported(type(node).__name__)

    def value(self, node: Node, inputs: list[Branch]) -> Getter | None:
        """A getter for the boolean-valued forms (``exists()``, ``=``/``!=`` a literal, ``and``/``or``).

        ``None`` when ``node`` is not one of them (a path: compile it with :meth:`compile`).
        Empty collections follow FHIRPath's three-valued logic; an equality over more
        than one item (an error in FHIRPath) is empty.
        """
        if isinstance(node, Binary) and node.op in ("and", "or"):
            left, right = self._boolean(node.left, inputs), self._boolean(node.right, inputs)
            return _and(left, right) if node.op == "and" else _or(left, right)
        if isinstance(node, Binary) and node.op in ("=", "!="):
            path, literal = node.left, node.right
            if isinstance(path, Literal):
                path, literal = literal, path
            if not isinstance(literal, Literal) or isinstance(path, Literal | Binary):
                raise Unsupported("equality")
            return _equals(build_getter(self.compile(path, inputs)), literal.value, node.op == "!=")
        if isinstance(node, Dot) and isinstance(node.right, Call) and node.right.fn in ("exists", "empty"):
            if node.right.args:
                raise Unsupported(f"{node.right.fn}(criteria)")
            return _exists(build_getter(self.compile(node.left, inputs)), node.right.fn == "empty")
        return None

    def _boolean(self, node: Node, inputs: list[Branch]) -> Getter:
        getter = self.value(node, inputs)
        if getter is None:
            raise Unsupported("a path as a boolean operand")
        return getter

    def _children(self, branches: list[Branch], name: str) -> list[Branch]:
        """Step into ``name``; after a choice expansion, types without that element drop out."""
        out: list[Branch] = []
        for b in branches:
            try:
                keys = self.model.child(b.ctx, name)
            except Unsupported:
                if len(branches) == 1:
                    raise
                continue
            out.extend(Branch((*b.ops, ("key", key)), ctx) for key, ctx in keys)
        if branches and not out:
            raise Unsupported(f"no element {name}")
        return out

    def _as(self, branches: list[Branch], type_name: str) -> list[Branch]:
        return [b for b in branches if self.model.is_a(b.ctx, type_name)]

    def _predicate(self, cond: Node, ctx: str) -> Op:
        if (isinstance(cond, TypeOp) and cond.op == "is" and isinstance(cond.left, Call)
                and cond.left.fn == "resolve" and not cond.left.args):
            return ("ref_is", cond.type_name)
        if isinstance(cond, Binary) and cond.op == "=":
            left, right = cond.left, cond.right
            if isinstance(left, Literal):
                left, right = right, left
            if isinstance(left, Name) and isinstance(right, Literal) and isinstance(right.value, str):
                keys = self.model.child(ctx, left.name)
                if len(keys) == 1 and keys[0][0] == left.name:
                    return ("where_eq", left.name, right.value)
        raise Unsupported("where() condition")


def _compiler(resource_type: str, start: str | None) -> tuple[_Compiler, list[Branch]]:
    model = r4_model()
    if start is None and not model.is_a(resource_type, "Resource"):
        raise Unsupported(f"unknown resource type {resource_type}")
    return _Compiler(model, resource_type), [Branch((), start or resource_type)]


def compile_branches(expression: str, resource_type: str, start: str | None = None) -> list[Branch]:
    """Parse and type a path ``expression``; ``start`` is the context of a relative one (composite component)."""
    compiler, inputs = _compiler(resource_type, start)
    return compiler.compile(parse(expression), inputs)


# --------------------------------------------------------------------------- executors


def _op_key(name: str) -> _OpFn:
    def op(coll: list[Any], root: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for item in coll:
            if type(item) is dict:
                value = item.get(name)
                if value is not None:
                    if type(value) is list:
                        out.extend(value)
                    else:
                        out.append(value)
        return out
    return op


def _op_root(coll: list[Any], root: Mapping[str, Any]) -> list[Any]:
    return [root]


def _op_index(n: int) -> _OpFn:
    def op(coll: list[Any], root: Mapping[str, Any]) -> list[Any]:
        return [coll[n]] if len(coll) > n else []
    return op


def _op_where_eq(key: str, literal: str) -> _OpFn:
    def op(coll: list[Any], root: Mapping[str, Any]) -> list[Any]:
        return [item for item in coll if type(item) is dict and item.get(key) == literal]
    return op


def _op_ref_is(type_name: str) -> _OpFn:
    def op(coll: list[Any], root: Mapping[str, Any]) -> list[Any]:
        return [item for item in coll if reference_type(item) == type_name]
    return op


def _op_fn(op: Op) -> _OpFn:
    kind = op[0]
    if kind == "key":
        return _op_key(op[1])
    if kind == "root":
        return _op_root
    if kind == "index":
        return _op_index(op[1])
    if kind == "where_eq":
        return _op_where_eq(op[1], op[2])
    if kind == "ref_is":
        return _op_ref_is(op[1])
    raise Unsupported(str(op))  # pragma: no cover - the compiler only emits the kinds above


@dataclass
class _Trie:
    terminal: bool = False
    children: dict[Op, _Trie] | None = None


_Runnable = tuple[tuple[_OpFn, bool, Any], ...]  # (op, terminal, children: _Runnable)


def _runnable(trie: _Trie) -> _Runnable:
    return tuple((_op_fn(op), child.terminal, _runnable(child)) for op, child in (trie.children or {}).items())


def _run(nodes: _Runnable, coll: list[Any], root: Mapping[str, Any], out: list[Any]) -> None:
    for op, terminal, children in nodes:
        result = op(coll, root)
        if result:
            if terminal:
                out.extend(result)
            if children:
                _run(children, result, root, out)


def _single_key_getter(name: str) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        if type(start) is not dict:
            return []
        value = start.get(name)
        if value is None:
            return []
        return value if type(value) is list else [value]
    return get


def _two_key_getter(first: str, second: str) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        if type(start) is not dict:
            return []
        value = start.get(first)
        if value is None:
            return []
        out: list[Any] = []
        for item in (value if type(value) is list else (value,)):
            if type(item) is dict:
                v = item.get(second)
                if v is not None:
                    if type(v) is list:
                        out.extend(v)
                    else:
                        out.append(v)
        return out
    return get


def build_getter(branches: list[Branch]) -> Getter:
    """Turn compiled branches into one getter; common prefixes are walked once."""
    if len(branches) == 1:
        ops = branches[0].ops
        if len(ops) == 1 and ops[0][0] == "key":
            return _single_key_getter(ops[0][1])
        if len(ops) == 2 and ops[0][0] == "key" and ops[1][0] == "key":
            return _two_key_getter(ops[0][1], ops[1][1])
    root = _Trie()
    identity = False
    for b in branches:
        if not b.ops:
            identity = True
            continue
        node = root
        for op in b.ops:
            if node.children is None:
                node.children = {}
            node = node.children.setdefault(op, _Trie())
        node.terminal = True
    nodes = _runnable(root)

    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = [start] if identity else []
        _run(nodes, [start], root, out)
        return out
    return get


def compile_getter(expression: str, resource_type: str,
                   start: str | None = None) -> tuple[Getter, list[Branch] | None]:
    """Compile ``expression`` to a fast getter (raises :class:`Unsupported` outside the subset).

    Also returns the typed branches of a path expression (``None`` for a boolean-valued one).
    """
    compiler, inputs = _compiler(resource_type, start)
    node = parse(expression)
    value = compiler.value(node, inputs)
    if value is not None:
        return value, None
    branches = compiler.compile(node, inputs)
    return build_getter(branches), branches


def _exists(getter: Getter, negate: bool) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        return [bool(getter(start, root)) != negate]
    return get


def _same(value: Any, literal: str | int | bool) -> bool:
    if isinstance(literal, bool) or isinstance(value, bool):
        return type(value) is type(literal) and value == literal
    if isinstance(literal, int):
        return isinstance(value, int | float) and value == literal
    return isinstance(value, str) and value == literal


def _equals(getter: Getter, literal: str | int | bool, negate: bool) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        values = getter(start, root)
        if len(values) != 1:
            return []
        return [_same(values[0], literal) != negate]
    return get


def _and(left: Getter, right: Getter) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        a, b = left(start, root), right(start, root)
        if a == [False] or b == [False]:
            return [False]
        return [True] if a == [True] and b == [True] else []
    return get


def _or(left: Getter, right: Getter) -> Getter:
    def get(start: Any, root: Mapping[str, Any]) -> list[Any]:
        a, b = left(start, root), right(start, root)
        if a == [True] or b == [True]:
            return [True]
        return [False] if a == [False] and b == [False] else []
    return get


def first_keys(branches: list[Branch] | None) -> frozenset[str] | None:
    """The JSON keys the start node must have for the branches to match anything (``None``: no such key)."""
    if branches is None:
        return None
    keys: set[str] = set()
    for b in branches:
        if not b.ops or b.ops[0][0] != "key":
            return None
        keys.add(b.ops[0][1])
    return frozenset(keys)
