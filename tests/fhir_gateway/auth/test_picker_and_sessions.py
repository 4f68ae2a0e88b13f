"""A clinician's standalone ``launch/patient`` goes through a patient picker (searched as that clinician,
audited); ``online_access`` refresh tokens live only as long as the sign-in session."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from flask.testing import FlaskClient

from fhir_gateway.app import create_app
from tests.fhir_gateway.auth.conftest import REDIRECT, pkce, txn_of
from tests.fhir_gateway.auth.test_fhir_enforcement import Bearer
from tests.fhir_gateway.conftest import BASE, make_settings, patient

PASSWORD = "correct horse battery"


@dataclass
class Hub:
    app: Any
    auth: Any
    client: FlaskClient
    secrets: dict[str, str]
    alice: str
    bob: str

    def otp(self, username: str) -> str:
        secret = self.secrets.get(username)
        return pyotp.TOTP(secret).now() if secret else ""


@pytest.fixture
def hub(database_url: str) -> Iterator[Hub]:
    app = create_app(make_settings(database_url, auth="smart"))
    auth = app.extensions["telehub.auth"].services
    auth.clients.add("ops", client_type="public", redirect_uris=["https://x.example/cb"], scope="system/*.cruds")
    admin = Bearer(app, auth.tokens.issue(client_id="ops", user=None, scope="system/*.cruds")["access_token"])
    alice = admin.create(patient(family="Zwicky", given="Alice"))["id"]
    bob = admin.create(patient(family="Zwanziger", given="Bob"))["id"]
    auth.clients.add("app", client_type="public", redirect_uris=[REDIRECT],
                     scope="openid fhirUser launch/patient online_access offline_access patient/*.rs user/*.rs")
    doc = auth.users.add("doc", PASSWORD, "physician", fhir_user="Practitioner/d1")
    pat = auth.users.add("alice", PASSWORD, "patient", patient=alice)
    secrets = {u.username: s for u in (doc, pat) if (s := getattr(u, "totp_secret", None))}
    yield Hub(app, auth, app.test_client(), secrets, alice, bob)
    app.extensions["telehub.fhir"].repository.engine.dispose()


def _authorize(hub: Hub, scope: str, username: str) -> tuple[str, str]:
    """Start an authorization and sign in; return (the page after sign-in, the PKCE verifier)."""
    verifier, challenge = pkce()
    resp = hub.client.get("/fhir/auth/authorize", query_string={
        "response_type": "code", "client_id": "app", "redirect_uri": REDIRECT, "scope": scope, "state": "s1",
        "aud": BASE, "code_challenge": challenge, "code_challenge_method": "S256"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = hub.client.post("/fhir/auth/login", data={"txn": txn_of(resp.get_data(as_text=True)),
                                                     "username": username, "password": PASSWORD,
                                                     "otp": hub.otp(username)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data(as_text=True), verifier


def _consent(hub: Hub, page: str, verifier: str) -> dict[str, Any]:
    scopes = re.findall(r'name="scope" value="([^"]+)"', page)
    resp = hub.client.post("/fhir/auth/consent", data={"txn": txn_of(page), "decision": "allow", "scope": scopes})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    code = parse_qs(urlparse(resp.headers["Location"]).query)["code"][0]
    token = hub.client.post("/fhir/auth/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT, "client_id": "app",
                                                      "code_verifier": verifier})
    assert token.status_code == 200, token.get_data(as_text=True)
    body: dict[str, Any] = token.get_json()
    return body


def test_a_clinician_picks_the_patient_and_the_token_carries_that_context(hub: Hub) -> None:
    page, verifier = _authorize(hub, "openid fhirUser launch/patient patient/*.rs", "doc")
    assert "Choose a patient" in page and 'name="name"' in page
    txn = txn_of(page)
    # consenting before choosing is not possible: the picker comes back
    resp = hub.client.post("/fhir/auth/consent", data={"txn": txn, "decision": "allow"})
    assert "Choose a patient" in resp.get_data(as_text=True)
    found = hub.client.get("/fhir/auth/select-patient", query_string={"txn": txn, "name": "zw"})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and "Zwicky" in html and "Zwanziger" in html
    assert found.headers["Cache-Control"] == "no-store"
    bogus = hub.client.post("/fhir/auth/select-patient", data={"txn": txn, "patient": "no-such-patient"})
    assert "Choose a patient from the search results" in bogus.get_data(as_text=True)
    chosen = hub.client.post("/fhir/auth/select-patient", data={"txn": txn, "patient": hub.bob})
    consent_page = chosen.get_data(as_text=True)
    assert 'name="decision" value="allow"' in consent_page
    body = _consent(hub, consent_page, verifier)
    assert body["patient"] == hub.bob
    me = Bearer(hub.app, body["access_token"])
    assert me.get(f"Patient/{hub.bob}").status_code == 200
    assert me.get(f"Patient/{hub.alice}").status_code == 403  # patient/ scopes: only the chosen patient
    services = hub.app.extensions["telehub.fhir"]
    with services.repository.transaction() as conn:
        events = list(services.audit.entries(conn))
    picker = [e for e in events if "patient picker" in str(e.get("outcomeDesc", "")) + str(e)]
    assert picker, "the picker's search is audited"


def test_a_patient_never_sees_the_picker(hub: Hub) -> None:
    page, verifier = _authorize(hub, "openid fhirUser launch/patient patient/*.rs", "alice")
    assert "Choose a patient" not in page
    assert _consent(hub, page, verifier)["patient"] == hub.alice


def test_online_access_refresh_works_only_while_the_session_lasts(hub: Hub) -> None:
    page, verifier = _authorize(hub, "openid fhirUser launch/patient online_access patient/*.rs", "alice")
    body = _consent(hub, page, verifier)
    assert "_session" not in body and "refresh_token" in body
    refreshed = hub.client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "client_id": "app",
                                                          "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    assert hub.client.post("/fhir/auth/logout").status_code == 200
    ended = hub.client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "client_id": "app",
                                                      "refresh_token": refreshed.get_json()["refresh_token"]})
    assert ended.status_code == 400 and ended.get_json()["error"] == "invalid_grant"


def test_offline_access_survives_sign_out(hub: Hub) -> None:
    page, verifier = _authorize(hub, "openid fhirUser launch/patient offline_access patient/*.rs", "alice")
    body = _consent(hub, page, verifier)
    hub.client.post("/fhir/auth/logout")
    again = hub.client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "client_id": "app",
                                                      "refresh_token": body["refresh_token"]})
    assert again.status_code == 200, again.get_data(as_text=True)
