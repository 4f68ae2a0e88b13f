"""Clients nobody here wrote, against the live server over HTTP:

* SMART's Python ``fhirclient`` as a confidential (``client_secret_basic``) app: it discovers the OAuth
  endpoints from the CapabilityStatement's ``oauth-uris`` extension, its ``authorize_url`` is walked
  through Telehub's login and consent forms with plain ``requests``, and ``handle_callback`` exchanges
  the code; then ``fhirclient.models`` reads the record.
* A SMART Backend Services client (``client_credentials`` + ``private_key_jwt``, RS384, joserfc) that
  discovers the token endpoint from ``.well-known/smart-configuration``.
"""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.e2e.conftest import PASSWORD, PY_CLIENT, PY_SECRET, Backend, Live

pytestmark = pytest.mark.xdist_group("e2e")


def form_of(html: str, page_url: str) -> tuple[str, dict[str, list[str]]]:
    """The first form's absolute action and its hidden and checked fields (what a browser would send)."""
    match = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)
    assert match, html
    action = urljoin(page_url, unescape(match.group(1)))
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or not kind or kind.group(1) not in ("hidden", "checkbox"):
            continue
        if kind.group(1) == "checkbox" and " checked" not in tag:
            continue
        fields.setdefault(name.group(1), []).append(unescape(value.group(1)) if value else "")
    assert "txn" in fields, html
    return action, fields


def test_python_fhirclient_confidential_app(live: Live) -> None:
    from fhirclient import client
    from fhirclient.models.condition import Condition
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient
    from fhirclient.server import FHIRNotFoundException, FHIRPermissionDeniedException

    redirect = f"{live.origin}/app/python-callback"
    live.auth.clients.add(PY_CLIENT, client_type="symmetric", secret=PY_SECRET, name="E2E Python app",
                          redirect_uris=[redirect], scope="openid fhirUser launch/patient patient/*.rs")
    live.add_user("e2e-peter-py", "patient", patient=live.seed.patient)
    smart = client.FHIRClient(settings={"app_id": PY_CLIENT, "app_secret": PY_SECRET, "api_base": live.base_url,
                                        "redirect_uri": redirect, "scope": "openid fhirUser patient/*.rs"})

    # Discovery through the CapabilityStatement (rest.security oauth-uris extension).
    authorize_url = smart.authorize_url
    assert authorize_url.startswith(f"{live.base_url}/auth/authorize?")
    assert smart.server.auth._token_uri == f"{live.base_url}/auth/token"
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["aud"] == [live.base_url] and query["code_challenge_method"] == ["S256"]
    assert "launch/patient" in query["scope"][0].split()  # fhirclient asks the server to pick the patient

    # The user's side, as a browser would do it: login form, then consent form.
    browser = requests.Session()  # the user's browser: keeps the Telehub sign-in cookie between the forms
    resp = browser.get(authorize_url, timeout=30)
    assert resp.status_code == 200 and 'name="password"' in resp.text, resp.text
    action, fields = form_of(resp.text, resp.url)
    resp = browser.post(action, timeout=30, data={**fields, "username": "e2e-peter-py", "password": PASSWORD,
                                                    "otp": live.otp("e2e-peter-py")})
    assert resp.status_code == 200 and 'name="decision"' in resp.text, resp.text
    action, fields = form_of(resp.text, resp.url)
    assert "patient/*.rs" in fields["scope"]
    resp = browser.post(action, data={**fields, "decision": "allow"}, allow_redirects=False, timeout=30)
    browser.close()
    assert resp.status_code == 302, resp.text
    callback = resp.headers["Location"]
    assert callback.startswith(redirect + "?")

    # The app's side: fhirclient exchanges the code (client_secret_basic) and keeps the launch context.
    smart.handle_callback(callback)
    assert smart.ready
    assert smart.patient_id == live.seed.patient
    assert smart.launch_context is not None and smart.launch_context.get("patient") == live.seed.patient
    patient = smart.patient  # Patient.read(patient_id) through fhirclient.models
    assert isinstance(patient, Patient)
    assert patient.name[0].family == "Chalmers" and patient.name[0].given == ["Peter"]
    assert patient.birthDate.isostring == "1974-12-25"
    assert smart.human_name(patient.name[0]) == "Peter Chalmers"

    observations = list(Observation.where({"patient": live.seed.patient}).perform_resources_iter(smart.server))
    assert len(observations) == live.seed.observations
    assert {o.code.coding[0].code for o in observations} == {"8867-4", "8310-5", "29463-7"}
    conditions = list(Condition.where({"patient": live.seed.patient}).perform_resources_iter(smart.server))
    assert [c.code.text for c in conditions] == ["Hypertension"]

    # The token is Peter's: another patient's record is refused.
    with pytest.raises((FHIRPermissionDeniedException, FHIRNotFoundException)) as refused:
        Patient.read(live.seed.other_patient, smart.server)
    assert refused.value.response.status_code in (403, 404)


def test_backend_services_client_credentials(live: Live, backend: Backend) -> None:
    config = requests.get(f"{live.base_url}/.well-known/smart-configuration", timeout=30).json()
    assert config["token_endpoint"] == backend.token_url
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert "RS384" in config["token_endpoint_auth_signing_alg_values_supported"]
    assert "client_credentials" in config["grant_types_supported"]
    assert "client-confidential-asymmetric" in config["capabilities"]

    resp = backend.token_request("system/Observation.rs system/Patient.rs")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300
    assert set(body["scope"].split()) == {"system/Observation.rs", "system/Patient.rs"}
    assert "refresh_token" not in body and "id_token" not in body
    token = body["access_token"]

    found = live.fhir("GET", f"Observation?patient={live.seed.patient}&code=http://loinc.org|8867-4", token=token)
    assert found.status_code == 200, found.text
    bundle = found.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    hits = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
    assert [h["valueQuantity"]["value"] for h in hits] == [72]
    everyone = live.fhir("GET", "Patient?_count=50", token=token).json()
    ids = {e["resource"]["id"] for e in everyone.get("entry", [])}
    assert {live.seed.patient, live.seed.other_patient} <= ids

    # What the token does not cover is refused: a write (.rs only) and a resource type outside its scopes.
    assert live.fhir("POST", "Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                             "subject": {"reference": f"Patient/{live.seed.patient}"}},
                     token=token).status_code == 403
    assert live.fhir("GET", "Condition", token=token).status_code == 403

    # An assertion is single-use (jti replay cache), and only system/ scopes are granted to backends.
    assertion = backend.assertion()
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    assert requests.post(backend.token_url, data=form, timeout=30).status_code == 200
    replay = requests.post(backend.token_url, data=form, timeout=30)
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client", replay.text
    user_scope = backend.token_request("patient/*.rs")
    assert user_scope.status_code == 400 and user_scope.json()["error"] == "invalid_scope", user_scope.text
    other_key = backend.assertion(aud="https://elsewhere.example/token")
    wrong_aud = requests.post(backend.token_url, data={**form, "client_assertion": other_key}, timeout=30)
    assert wrong_aud.status_code in (400, 401), wrong_aud.text
