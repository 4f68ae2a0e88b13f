"""Offline onboarding: a directory of recorded request/response pairs, served with ``responses``.

Layout of a replay directory::

    replay.toml          defaults for the run: base_url, patient, tenant, client_id, practice, token_url, jku
    NN-<name>.json       one pair: {"request": {"method", "url"}, "response": {"status", "headers",
                         "json" | "text" | "body_file"}, "note": "…"}

``body_file`` is relative to the pair's file; a recording wrapper ``{"_request", "body"}`` (as in
sandbox_fixtures/recordings) is unwrapped, and an optional ``pointer`` (``/entry/0/resource``) picks
a part of it (a read answered with the resource exactly as the recorded searchset carried it).

A request matches a pair when method and path are equal, every recorded query parameter was sent
(extra ones such as ``_count`` are allowed) and the paging cursors are the same; the most
specific pair wins, and pairs with the same request are answered in order (the last one repeats).
A request with no pair gets a 404 OperationOutcome marked ``X-Telehub-Replay: not-recorded`` (not a
connection error: that would be retried and trip the circuit breaker), and onboarding says
"not in the replay set".
"""
from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

NOT_RECORDED = json.dumps({"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "not-found", "diagnostics": "not in the replay set"}]}).encode()


# Paging cursors must match exactly: a next-page request is a different answer from the first page.
CURSORS = frozenset({"sessionID", "-pageContext", "-pageDirection", "cursor", "_getpages", "_getpagesoffset",
                     "_offset", "page", "_page"})


class ReplayError(ValueError):
    """The replay directory cannot be used; the message names the file."""


@dataclass
class Pair:
    method: str
    path: str  # scheme://host/path
    query: list[tuple[str, str]]
    status: int
    headers: dict[str, str]
    body: bytes
    source: str


@dataclass
class ReplaySet:
    manifest: dict[str, Any]
    pairs: list[Pair]
    unmatched: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, url, body) of every request
    served: dict[int, int] = field(default_factory=dict)

    def match(self, method: str, url: str) -> Pair | None:
        parts = urlsplit(url)
        path = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        sent = parse_qsl(parts.query, keep_blank_values=True)
        cursors = sorted(q for q in sent if q[0] in CURSORS)
        candidates = [(i, p) for i, p in enumerate(self.pairs) if p.method == method and p.path == path
                      and all(q in sent for q in p.query) and sorted(q for q in p.query if q[0] in CURSORS) == cursors]
        if not candidates:
            return None
        best = max(len(p.query) for _, p in candidates)
        same = [(i, p) for i, p in candidates if len(p.query) == best]
        for i, pair in same:
            if not self.served.get(i):
                self.served[i] = 1
                return pair
        return same[-1][1]


def _body(spec: dict[str, Any], where: Path) -> tuple[bytes, str]:
    if "json" in spec:
        return json.dumps(spec["json"]).encode(), "application/fhir+json"
    if "text" in spec:
        return str(spec["text"]).encode(), "text/plain"
    if "body_file" in spec:
        target = (where.parent / str(spec["body_file"])).resolve()
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReplayError(f"{where.name}: body_file {spec['body_file']}: {exc}") from None
        if isinstance(data, dict) and "_request" in data and "body" in data:
            data = data["body"]
        for step in [s for s in str(spec.get("pointer", "")).split("/") if s]:  # RFC 6901, no escapes needed here
            try:
                data = data[int(step)] if isinstance(data, list) else data[step]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ReplayError(f"{where.name}: pointer {spec['pointer']} not found in {spec['body_file']}") from None
        return json.dumps(data).encode(), "application/fhir+json"
    return b"", "text/plain"


def load_pair(path: Path) -> Pair:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        request, response = raw["request"], raw["response"]
        parts = urlsplit(str(request["url"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReplayError(f"{path.name}: not a request/response pair ({exc})") from None
    body, ctype = _body(response, path)
    headers = {"Content-Type": ctype, **{str(k): str(v) for k, v in (response.get("headers") or {}).items()}}
    return Pair(str(request.get("method", "GET")).upper(), f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/"),
                parse_qsl(parts.query, keep_blank_values=True), int(response.get("status", 200)), headers, body,
                path.name)


def load_replay(directory: Path | str) -> ReplaySet:
    folder = Path(directory)
    if not folder.is_dir():
        raise ReplayError(f"{folder}: not a directory")
    manifest: dict[str, Any] = {}
    if (folder / "replay.toml").exists():
        try:
            manifest = tomllib.loads((folder / "replay.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ReplayError(f"replay.toml: {exc}") from None
    pairs = [load_pair(p) for p in sorted(folder.glob("*.json"))]
    if not pairs:
        raise ReplayError(f"{folder}: no request/response pairs (*.json)")
    return ReplaySet(manifest, pairs)


@contextmanager
def serving(replay: ReplaySet) -> Iterator[ReplaySet]:
    """Every HTTP call made with ``requests`` inside the block is answered from ``replay``."""

    def dispatch(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        replay.seen.append((str(request.method), str(request.url), bytes(body)))
        pair = replay.match(str(request.method), str(request.url))
        if pair is None:
            parts = urlsplit(str(request.url))
            replay.unmatched.append(f"{request.method} {parts.path}")
            return 404, {"Content-Type": "application/fhir+json", "X-Telehub-Replay": "not-recorded"}, NOT_RECORDED
        return pair.status, dict(pair.headers), pair.body

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            mock.add_callback(method, re.compile(r"https?://.*"), callback=dispatch)
        yield replay
