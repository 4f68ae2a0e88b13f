"""One whitelisted line per request: request id, method, route template, status, duration — no ids, query or body."""
from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from flask import Flask

from fhir_gateway.app import create_app
from fhir_gateway.observability import configure_logging, request_log, unconfigure_logging
from fhir_gateway.observability.log_filter import POLICY
from fhir_gateway.observability.request_log import fhir_template
from fhir_gateway.settings import Settings

LINE = re.compile(r"INFO telehub\.request: request request_id=(?P<rid>[0-9a-f]{32}|[0-9a-f-]{36}) "
                  r"method=(?P<method>[A-Z]+) route=(?P<route>\S+) fhir=(?P<fhir>\S+) status=(?P<status>\d{3}) "
                  r"duration_ms=\d+\.\d$")
PHI = {"family": "Quixotic", "given": "Zebulon", "birthDate": "1961-07-04", "mrn": "MRN778899",
       "phone": "617-555-0199", "email": "zebulon.quixotic@example.org"}


@pytest.fixture
def app_and_log(sqlite_url: str) -> Iterator[tuple[Flask, io.StringIO]]:
    root = logging.getLogger()
    level, factory = root.level, logging.getLogRecordFactory()
    stream = io.StringIO()
    settings = Settings(env="test", database_url=sqlite_url, base_url="http://testserver/fhir",
                        extra={"log_level": "INFO"})
    app = create_app(settings)
    configure_logging(settings, stream=stream)  # after create_app, which may configure logging itself
    request_log.init_app(app)  # idempotent: a no-op once create_app wires it

    @app.get("/boom/<thing>")
    def _boom(thing: str) -> Any:
        raise RuntimeError(f"failed on {thing}")

    yield app, stream
    app.extensions["telehub.fhir"].repository.engine.dispose()
    unconfigure_logging()
    logging.setLogRecordFactory(factory)
    root.setLevel(level)


def _request_lines(stream: io.StringIO) -> list[re.Match[str]]:
    lines = [line for line in stream.getvalue().splitlines() if "telehub.request" in line]
    matches = [LINE.search(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m]


def _patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": PHI["family"], "given": [PHI["given"]]}],
            "birthDate": PHI["birthDate"], "identifier": [{"system": "urn:mrn", "value": PHI["mrn"]}],
            "telecom": [{"system": "phone", "value": PHI["phone"]}, {"system": "email", "value": PHI["email"]}]}


def test_request_lines_carry_no_ids_query_or_body(app_and_log: tuple[Flask, io.StringIO]) -> None:
    app, stream = app_and_log
    client = app.test_client()
    fhir_json = {"Content-Type": "application/fhir+json"}
    created = client.post("/fhir/Patient", data=orjson.dumps(_patient()), headers=fhir_json)
    assert created.status_code == 201
    pid = created.get_json()["id"]
    put = client.put("/fhir/Patient/MRN778899", data=orjson.dumps({**_patient(), "id": "MRN778899"}),
                     headers=fhir_json)  # a client-chosen id that is an MRN
    assert put.status_code in (200, 201)
    assert client.get(f"/fhir/Patient/{pid}?_format=json").status_code == 200
    assert client.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200
    assert client.get(f"/fhir/Patient?family={PHI['family']}&birthdate={PHI['birthDate']}").status_code == 200
    assert client.post("/fhir/Patient/_search", data=f"identifier=urn:mrn|{PHI['mrn']}",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    assert client.get(f"/fhir/Patient/{pid}/$everything").status_code == 200
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get(f"/no/such/{PHI['mrn']}?q={PHI['family']}").status_code == 404

    lines = _request_lines(stream)
    assert [(m["method"], m["route"], m["fhir"], m["status"]) for m in lines] == [
        ("POST", "/fhir/<path:path>", "Patient", "201"),
        ("PUT", "/fhir/<path:path>", "Patient/{id}", put.status_code.__str__()),
        ("GET", "/fhir/<path:path>", "Patient/{id}", "200"),
        ("GET", "/fhir/<path:path>", "Patient/{id}/_history/{vid}", "200"),
        ("GET", "/fhir/<path:path>", "Patient", "200"),
        ("POST", "/fhir/<path:path>", "Patient/_search", "200"),
        ("GET", "/fhir/<path:path>", "Patient/{id}/$everything", "200"),
        ("GET", "/fhir/<path:path>", "metadata", "200"),
        ("GET", "-", "-", "404"),
    ]
    out = stream.getvalue()
    for secret in [pid, "MRN778899", "_format", "family=", "identifier", *PHI.values()]:
        assert secret not in out, secret


def test_request_id_is_one_value_everywhere_and_not_client_text(app_and_log: tuple[Flask, io.StringIO]) -> None:
    app, stream = app_and_log
    client = app.test_client()
    smuggled = client.get("/fhir/metadata", headers={"X-Request-Id": "Zebulon Quixotic 1961-07-04"})
    kept = uuid.uuid4()
    trusted = client.get("/fhir/metadata", headers={"X-Request-Id": str(kept)})
    fresh = client.get("/healthz")
    lines = _request_lines(stream)
    assert re.fullmatch(r"[0-9a-f]{32}", smuggled.headers["X-Request-Id"])  # replaced, not echoed
    assert trusted.headers["X-Request-Id"] == str(kept)  # a load balancer's UUID is kept
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["X-Request-Id"])  # added where the route set none
    assert [m["rid"] for m in lines] == [r.headers["X-Request-Id"] for r in (smuggled, trusted, fresh)]
    assert "Quixotic" not in stream.getvalue()


def test_unhandled_errors_are_logged_once_with_their_template(app_and_log: tuple[Flask, io.StringIO]) -> None:
    app, stream = app_and_log
    POLICY.keep_exception_messages = False  # as in production: "failed on MRN778899" is not PHI-shaped
    assert app.test_client().get(f"/boom/{PHI['mrn']}").status_code == 500  # Flask's 500 page: after_request runs
    app.testing = True  # exceptions propagate: after_request is skipped, teardown logs the line
    with pytest.raises(RuntimeError):
        app.test_client().get(f"/boom/{PHI['mrn']}")
    lines = _request_lines(stream)
    assert [(m["route"], m["status"]) for m in lines] == [("/boom/<thing>", "500"), ("/boom/<thing>", "500")]
    out = stream.getvalue()
    assert "Exception on /boom/<thing> [GET]" in out  # Flask's own error log: the raw path became the template
    assert "RuntimeError: [message redacted]" in out
    assert PHI["mrn"] not in out


@pytest.mark.parametrize(("path", "template"), [
    ("", "/"),
    ("metadata", "metadata"),
    ("Patient", "Patient"),
    ("Patient/123", "Patient/{id}"),
    ("Patient/Smith", "Patient/{id}"),
    ("Patient/123/_history", "Patient/{id}/_history"),
    ("Patient/123/_history/7", "Patient/{id}/_history/{vid}"),
    ("Patient/123/Observation", "Patient/{id}/Observation"),
    ("Patient/123/*", "Patient/{id}/*"),
    ("Patient/$validate", "Patient/$validate"),
    ("Patient/123/$everything", "Patient/{id}/$everything"),
    ("Patient/123/$zebulon-quixotic", "Patient/{id}/$op"),
    (".well-known/smart-configuration", ".well-known/smart-configuration"),
    ("Zebulon/Quixotic", "{id}/{id}"),
    ("/".join(["Patient"] * 12), "/".join(["Patient"] * 8) + "/{more}"),
])
def test_fhir_template_keeps_only_known_tokens(path: str, template: str) -> None:
    assert fhir_template(path) == template
