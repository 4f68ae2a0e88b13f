"""Parsed message model: segments of raw fields, split into components only when read.

Splitting lazily is what makes the fast path fast: a mapper reads perhaps a fifth of
the fields of a message, so most of it is never split or unescaped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mappers.hl7v2.parser.encoding import Delimiters, unescape

_NULL = '""'


class Value:
    """A field repetition (level 0), component (1) or subcomponent (2).

    ``part(i)`` is 1-based and never raises: absent parts are empty values, as v2 says
    a missing trailing component is the same as an empty one.
    """

    __slots__ = ("_parts", "d", "level", "raw")

    def __init__(self, raw: str, d: Delimiters, level: int = 0) -> None:
        self.raw = raw
        self.d = d
        self.level = level
        self._parts: list[str] | None = None

    def _split(self) -> list[str]:
        if self._parts is None:
            if self.level >= 2:
                self._parts = [self.raw]
            else:
                sep = self.d.component if self.level == 0 else self.d.subcomponent
                self._parts = self.raw.split(sep)
        return self._parts

    def part(self, i: int) -> Value:
        """Component (or subcomponent) ``i``, 1-based."""
        parts = self._parts if self._parts is not None else self._split()
        raw = parts[i - 1] if 0 < i <= len(parts) else ""
        level = self.level
        return Value(raw, self.d, level + 1 if level < 2 else 2)

    def get(self, i: int, j: int = 0) -> str:
        """Text of component ``i`` (and subcomponent ``j``), unescaped."""
        v = self.part(i)
        return v.part(j).text if j else v.text

    @property
    def parts_count(self) -> int:
        return len(self._split())

    def parts(self) -> list[str]:
        """The raw (escaped) parts at the next level down."""
        return self._parts if self._parts is not None else self._split()

    @property
    def text(self) -> str:
        """The first leaf, unescaped; '' for an empty or explicit-null ("") value."""
        raw = self.raw
        if not raw or raw == _NULL:
            return ""
        d = self.d
        if self.level == 0 and d.component in raw:
            raw = raw[: raw.index(d.component)]
        if self.level < 2 and d.subcomponent in raw:
            raw = raw[: raw.index(d.subcomponent)]
        if not raw or raw == _NULL:
            return ""
        return unescape(raw, d).strip() if d.escape in raw else raw.strip()

    @property
    def full_text(self) -> str:
        """The whole value unescaped, delimiters included (for text fields)."""
        return "" if self.raw == _NULL else unescape(self.raw, self.d)

    def __bool__(self) -> bool:
        d = self.d
        return self.raw.strip(d.component + d.subcomponent + " ") not in ("", _NULL)

    def __repr__(self) -> str:
        return f"Value(level={self.level}, parts={self.parts_count})"


class Segment:
    """One segment; ``fields[n]`` is field n (for MSH, MSH-1 is the field separator)."""

    __slots__ = ("d", "fields", "name", "sequence")

    def __init__(self, name: str, fields: list[str], d: Delimiters, sequence: int) -> None:
        self.name = name
        self.fields = fields
        self.d = d
        self.sequence = sequence

    def raw(self, n: int) -> str:
        f = self.fields
        return f[n] if 0 < n < len(f) else ""

    def reps(self, n: int) -> list[Value]:
        """Non-empty repetitions of field ``n``."""
        raw = self.raw(n)
        if not raw or raw == _NULL:
            return []
        if self.name == "MSH" and n <= 2:
            return [Value(raw, self.d, 2)]
        out = [Value(r, self.d) for r in raw.split(self.d.repetition)]
        return [v for v in out if v]

    def first(self, n: int) -> Value:
        """First repetition of field ``n`` (empty value when absent)."""
        raw = self.raw(n)
        if self.name == "MSH" and n <= 2:
            return Value(raw, self.d, 2)
        k = raw.find(self.d.repetition)
        return Value(raw if k < 0 else raw[:k], self.d)

    def text(self, n: int, comp: int = 0, sub: int = 0) -> str:
        """Unescaped text of field ``n`` (first repetition), optionally a component/subcomponent."""
        v = self.first(n)
        if comp:
            v = v.part(comp)
            if sub:
                v = v.part(sub)
        return v.text

    def valued(self, n: int) -> bool:
        return bool(self.first(n))

    def __repr__(self) -> str:
        return f"Segment({self.name}#{self.sequence}, {len(self.fields) - 1} fields)"


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """A tolerated problem, by position only (no values: they may be PHI)."""

    code: str
    segment: str
    sequence: int
    detail: str


@dataclass(slots=True)
class Message:
    """A parsed ER7 message: segments in order, delimiters, and tolerated problems."""

    segments: list[Segment]
    delimiters: Delimiters
    warnings: list[ParseWarning] = field(default_factory=list)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    @property
    def message_type(self) -> str:
        return self.msh.text(9, 1).upper()

    @property
    def trigger(self) -> str:
        return self.msh.text(9, 2).upper()

    @property
    def structure(self) -> str:
        return self.msh.text(9, 3).upper()

    @property
    def version(self) -> str:
        return self.msh.text(12, 1)

    @property
    def control_id(self) -> str:
        return self.msh.text(10)
