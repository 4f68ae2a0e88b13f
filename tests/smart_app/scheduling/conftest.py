"""Fixtures: the hub in-process, and FHIR clients with the ``HubClient`` method set over it.

``FlaskHub`` speaks FHIR through Flask's test client (fast, one thread); ``RequestsHub`` speaks
HTTP with requests to a live werkzeug server (threads, real concurrency) — both satisfy
``smart_app.scheduling.ports.FhirPort``, like smart_app's ``HubClient``.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from fhir_gateway.app import create_app
from smart_app.scheduling.licensure import Licence
from tests.fhir_gateway.conftest import make_settings

Params = Mapping[str, str] | Sequence[tuple[str, str]]


class HubError(Exception):
    """A non-2xx answer, carrying its status like requests.HTTPError does."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status_code = status
        self.body = body


def _query(params: Params | None) -> str:
    return urlencode(list(params.items()) if isinstance(params, Mapping) else list(params or []))


class _Base(ABC):
    """The HubClient methods over one transport primitive (Flask's test client or requests)."""

    @abstractmethod
    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
              ) -> dict[str, Any]: ...

    def get(self, path: str) -> dict[str, Any]:
        return self._call("GET", path)

    def search(self, rtype: str, params: Params | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page: str | None = f"{rtype}?{_query(params)}"
        while page:
            bundle = self._call("GET", page)
            out += [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match")
                    == "match"]
            page = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        return out

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", resource["resourceType"], resource)

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        headers = {"If-Match": if_match} if if_match else None
        return self._call("PUT", f"{resource['resourceType']}/{resource['id']}", resource, headers)

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "", bundle)


class FlaskHub(_Base):
    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()
        self.calls = 0

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
              ) -> dict[str, Any]:
        self.calls += 1
        url = path.replace("http://testserver/fhir", "/fhir") if path.startswith("http") else "/fhir/" + path
        resp = self.client.open(url, method=method, data=orjson.dumps(body) if body is not None else None,
                                headers=headers or {}, content_type="application/fhir+json" if body else None)
        data = resp.get_json(silent=True)
        if resp.status_code >= 400:
            raise HubError(resp.status_code, data)
        return data or {}


class RequestsHub(_Base):
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
              ) -> dict[str, Any]:
        url = path.replace("http://testserver/fhir", self.base) if path.startswith("http") else f"{self.base}/{path}"
        resp = self.session.request(method, url, data=orjson.dumps(body) if body is not None else None, timeout=60,
                                    headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                                             **(headers or {})})
        data = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            raise HubError(resp.status_code, data)
        return dict(data)


@pytest.fixture
def hub_app(database_url: str) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, auth="off"))
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def hub(hub_app: Flask) -> FlaskHub:
    return FlaskHub(hub_app)


@pytest.fixture
def sqlite_hub(sqlite_url: str) -> Iterator[FlaskHub]:
    app = create_app(make_settings(sqlite_url, auth="off"))
    yield FlaskHub(app)
    app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def live_postgres_hub(postgres_url: str) -> Iterator[str]:
    """The hub on PostgreSQL behind a threaded werkzeug server; yields its FHIR base URL."""
    yield from serve_hub(postgres_url)


def serve_hub(database_url: str) -> Iterator[str]:
    """Serve the hub (auth off) on ``database_url`` from a threaded werkzeug server; yield its FHIR base URL."""
    app = create_app(make_settings(database_url, auth="off"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir"
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["telehub.fhir"].repository.engine.dispose()


# -- data helpers ------------------------------------------------------------------------------------
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


def practitioner(licences: Sequence[Licence], family: str = "Rivera") -> dict[str, Any]:
    return {"resourceType": "Practitioner", "active": True, "name": [{"family": family, "given": ["Ana"],
                                                                      "prefix": ["Dr."]}],
            "qualification": [lic.to_qualification() for lic in licences]}


def patient(state: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": "Chalmers", "given": ["Peter"]}],
                            "telecom": [{"system": "phone", "value": "+15558675310", "use": "mobile"},
                                        {"system": "email", "value": "peter@example.com"}]}
    if state:
        body["address"] = [{"use": "home", "line": ["1 Main St"], "city": "Somewhere", "state": state}]
    body.update(extra)
    return body


def licence(state: str, **kw: Any) -> Licence:
    kw.setdefault("start", date(2020, 1, 1))
    kw.setdefault("end", date(2030, 1, 1))
    kw.setdefault("degree", "MD")
    return Licence(state, f"{state}-{abs(hash((state, tuple(kw)))) % 10**6}", **kw)
