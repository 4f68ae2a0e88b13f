"""Fixtures for the FHIR server tests: an app and a JSON-speaking test client per database."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings

BASE = "http://testserver/fhir"


class Fhir:
    """A thin FHIR client over Flask's test client: JSON in and out, paths relative to /fhir."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                content_type: str = "application/fhir+json", raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        url = "/fhir/" + path.lstrip("/") if not path.startswith("http") else path.replace(BASE, "/fhir")
        return self.client.open(url, method=method, data=data, headers=headers or {},
                                content_type=content_type if data is not None else None)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        kw.setdefault("content_type", "application/json-patch+json")
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        resp = self.post(resource["resourceType"], resource)
        assert resp.status_code == 201, resp.get_data(as_text=True)
        out: dict[str, Any] = resp.get_json()
        return out

    def search(self, query: str) -> dict[str, Any]:
        resp = self.get(query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        out: dict[str, Any] = resp.get_json()
        return out

    def search_ids(self, query: str) -> set[str]:
        bundle = self.search(query)
        return {e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"}


def make_settings(database_url: str, **kw: Any) -> Settings:
    return Settings(env="test", database_url=database_url, base_url=BASE, **kw)


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    application = create_app(make_settings(database_url))
    yield application
    application.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def fhir(app: Flask) -> Fhir:
    return Fhir(app.test_client())


@pytest.fixture
def sqlite_app(sqlite_url: str) -> Iterator[Flask]:
    application = create_app(make_settings(sqlite_url))
    yield application
    application.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def sqlite_fhir(sqlite_app: Flask) -> Fhir:
    return Fhir(sqlite_app.test_client())


def patient(family: str = "Chalmers", given: str = "Peter", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
                            "gender": "male", "birthDate": "1974-12-25"}
    body.update(extra)
    return body
