"""The sandbox EHR launch: the launcher page, launch creation at the hub, the redirect, the token extras,
and the whole EHR launch through the inspector without a browser (werkzeug's client keeps the cookies)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from fhir_gateway.auth.launch import Launches
from sandbox_fixtures.sandbox.flavours import load_flavours
from sandbox_fixtures.sandbox.inspector.views import CLIENT_ID
from sandbox_fixtures.sandbox.token_shim import flavour_token_body
from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox, json_of

PASSWORD = "sandbox demo password"


def hub_services(sandbox: Sandbox) -> Any:
    return sandbox.app.hub_app.extensions["telehub.auth"].services


def practitioner_of(sandbox: Sandbox) -> str:
    bundle = json_of(sandbox.get("/fhir/Practitioner?_count=1"))
    return str(bundle["entry"][0]["resource"]["id"])


def encounter_of(sandbox: Sandbox, patient: str) -> str:
    bundle = json_of(sandbox.get(f"/fhir/Encounter?patient={patient}&_count=1"))
    return str(bundle["entry"][0]["resource"]["id"])


def test_launcher_page_lists_chart_flavours_and_apps(sandbox: Sandbox) -> None:
    resp = sandbox.client.get("/sandbox/", base_url=ORIGIN)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    for family in ("Hintz", "Conn", "Wiegand"):
        assert family in page
    for name in ("generic", "epic", "cerner", "athena"):
        assert f'id="flavour-{name}"' in page
    assert f'value="{CLIENT_ID}"' in page  # the inspector has a launch URI
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize("flavour,iss_path", [
    ("generic", "/fhir"), ("epic", "/sandbox/epic/api/FHIR/R4"),
    ("cerner", "/sandbox/cerner/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d"), ("athena", "/sandbox/athena/fhir/r4")])
def test_launch_creates_a_bound_launch_and_redirects(sandbox: Sandbox, flavour: str, iss_path: str) -> None:
    patient = sandbox.patients["Hintz"]
    practitioner, encounter = practitioner_of(sandbox), encounter_of(sandbox, patient)
    resp = sandbox.client.post("/sandbox/launch", base_url=ORIGIN, data={
        "practitioner": practitioner, "patient": patient, "encounter": encounter, "flavour": flavour,
        "app": CLIENT_ID, "banner": "on"})
    assert resp.status_code == 303
    target = urlsplit(resp.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{ORIGIN}/sandbox/inspector/launch"
    query = parse_qs(target.query)
    assert query["iss"] == [f"{ORIGIN}{iss_path}"]
    context = Launches(hub_services(sandbox).store).take(query["launch"][0])
    assert context is not None and context["patient"] == patient and context["encounter"] == encounter
    assert context["fhirUser"] == f"Practitioner/{practitioner}" and context["need_patient_banner"] is True
    if flavour == "athena":
        assert context["fhirContext"][0]["reference"] == "Organization/a-1.Practice-195900"
    style = sandbox.client.get(urlsplit(context["smart_style_url"]).path, base_url=ORIGIN)
    assert style.status_code == 200 and json_of(style)["color_highlight"].startswith("#")
    assert Launches(hub_services(sandbox).store).take(query["launch"][0]) is None  # single use


def test_launch_refuses_an_encounter_of_another_patient(sandbox: Sandbox) -> None:
    resp = sandbox.client.post("/sandbox/launch", base_url=ORIGIN, data={
        "practitioner": practitioner_of(sandbox), "patient": sandbox.patients["Hintz"],
        "encounter": encounter_of(sandbox, sandbox.patients["Conn"]), "flavour": "generic", "app": CLIENT_ID})
    assert resp.status_code == 400 and "another patient" in resp.get_data(as_text=True)


def test_flavoured_discovery_points_at_the_shims(sandbox: Sandbox) -> None:
    base = sandbox.base("cerner")
    config = json_of(sandbox.client.get(f"{base}/.well-known/smart-configuration", base_url=ORIGIN))
    assert config["authorization_endpoint"] == f"{ORIGIN}{base}/auth/authorize"
    assert config["token_endpoint"] == f"{ORIGIN}{base}/auth/token"
    assert config["issuer"] == f"{ORIGIN}/fhir"  # id_tokens are the hub's
    assert "S256" in config["code_challenge_methods_supported"]


def test_token_extras_per_flavour() -> None:
    flavours = load_flavours()
    body = {"access_token": "x", "expires_in": 3600, "patient": "p1", "need_patient_banner": True, "scope": "launch"}
    epic = flavour_token_body(flavours["epic"], body)
    assert epic["need_patient_banner"] == "true"  # vendor-notes §2.2: a string
    assert epic["deptID"] and epic["loginDepartment"] and epic["__epic.dstu2.patient"].startswith("T")
    assert flavour_token_body(flavours["cerner"], body)["expires_in"] == 570  # §3.2
    assert flavour_token_body(flavours["athena"], body)["ah_practice"] == "a-1.Practice-195900"
    assert flavour_token_body(flavours["generic"], body) == body


def _form_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


@pytest.mark.parametrize("flavour", ["generic", "epic", "cerner", "athena"])
def test_ehr_launch_through_the_inspector(sandbox: Sandbox, flavour: str) -> None:
    auth = hub_services(sandbox)
    username = f"dr-{flavour}"
    practitioner, patient = practitioner_of(sandbox), sandbox.patients["Conn"]
    secret = auth.users.add(username, PASSWORD, "physician", fhir_user=f"Practitioner/{practitioner}").totp_secret
    browser = sandbox.client
    resp = browser.post("/sandbox/launch", base_url=ORIGIN, data={
        "practitioner": practitioner, "patient": patient, "flavour": flavour, "app": CLIENT_ID, "banner": "on"})
    for _ in range(3):  # inspector → flavoured authorize shim → the hub's authorize (login page)
        resp = browser.get(resp.headers["Location"])
        if resp.status_code == 200:
            break
    login = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'name="otp"' in login
    resp = browser.post("/fhir/auth/login", base_url=ORIGIN, data={
        "txn": _form_field(login, "txn"), "username": username, "password": PASSWORD,
        "otp": pyotp.TOTP(secret).now()})
    consent = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Launch inspector" in consent
    scopes = re.findall(r'name="scope" value="([^"]+)"', consent)
    resp = browser.post("/fhir/auth/consent", base_url=ORIGIN, data={
        "txn": _form_field(consent, "txn"), "decision": "allow", "scope": scopes})
    assert resp.status_code == 302 and resp.headers["Location"].startswith(f"{ORIGIN}/sandbox/inspector/callback")
    page = browser.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert '<strong id="patient-name">Mrs. Liz Conn</strong>' in html
    assert f'data-field="patient">"{patient}"<' in html
    banner = '"true"' if flavour == "epic" else "true"
    assert f'data-field="need_patient_banner">{banner}<' in html
    assert f'<code id="fhir-user">{ORIGIN}/fhir/Practitioner/{practitioner}</code>' in html  # verified id_token
    if flavour == "epic":
        assert 'data-field="__epic.dstu2.patient"' in html
    if flavour == "athena":
        assert 'data-field="ah_practice"' in html
