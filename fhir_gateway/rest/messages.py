"""Framework-free request and response values for FHIR interactions.

The HTTP layer and the batch/transaction processor both turn their input into a
:class:`FhirRequest` and dispatch it through the same route table, so a
transaction entry behaves exactly like the equivalent HTTP call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class FhirRequest:
    method: str
    path: str  # relative to the FHIR base, without leading slash: "Patient/1/_history"
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None  # parsed JSON (or None)
    content_type: str | None = None

    @classmethod
    def from_url(cls, method: str, url: str, **kw: Any) -> FhirRequest:
        parts = urlsplit(url)
        return cls(method=method.upper(), path=parts.path.strip("/"),
                   params=parse_qsl(parts.query, keep_blank_values=True), **kw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None


@dataclass
class FhirResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # pre-rendered body (e.g. Binary content)
