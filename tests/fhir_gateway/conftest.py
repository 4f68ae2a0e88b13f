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


def kek_file_for_tests() -> str:
    """One key-encryption key per test process, outside the repository (made at test time)."""
    import base64
    import os
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"telehub-test-kek-{os.getpid()}.key")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(base64.b64encode(os.urandom(32)).decode())
    return path


def make_settings(database_url: str, **kw: Any) -> Settings:
    kw.setdefault("kek_file", kek_file_for_tests())
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


# ------------------------------------------------------------------ a server loaded with Synthea data

@pytest.fixture(scope="module")
def synthea_fhir(request: pytest.FixtureRequest, module_database_url: str, shared_data: Any) -> Iterator[Fhir]:
    """A server holding the 10 Synthea patients of shared/data/synthea/small (NDJSON, ids kept)."""
    from fhir_gateway.importer.run import run_import

    settings = make_settings(module_database_url)
    app = create_app(settings)
    services = app.extensions["telehub.fhir"]
    state_dir = request.getfixturevalue("tmp_path_factory").mktemp("import-state")
    report = run_import(settings, [shared_data / "synthea/small/ndjson"], on_error="stop", restart=True,
                        progress=False, services=services, state_dir=state_dir)
    assert not report.failed, report.failed
    assert report.resources == 1705
    yield Fhir(app.test_client())
    services.repository.engine.dispose()
