"""The FHIR server enforces SMART tokens: no token → 401 with WWW-Authenticate; scopes, roles and the
patient context of the token decide what the request may do."""
from __future__ import annotations

from typing import Any

from fhir_gateway.app import create_app
from tests.fhir_gateway.conftest import Fhir, make_settings, patient


class Bearer(Fhir):
    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app.test_client())
        self.token = token

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        if self.token:
            kw["headers"] = {"Authorization": f"Bearer {self.token}", **(kw.get("headers") or {})}
        return super().request(method, path, body, **kw)


def test_tokens_scopes_and_patient_context_are_enforced(database_url: str) -> None:
    app = create_app(make_settings(database_url, auth="smart"))
    auth = app.extensions["telehub.auth"].services
    auth.clients.add("ops", client_type="public", redirect_uris=["https://x.example/cb"], scope="system/*.cruds")
    system = auth.tokens.issue(client_id="ops", user=None, scope="system/*.cruds")["access_token"]
    admin = Bearer(app, system)
    alice = admin.create(patient(family="Alice"))
    bob = admin.create(patient(family="Bob"))
    for who in (alice, bob):
        admin.create({"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
                      "subject": {"reference": f"Patient/{who['id']}"}})

    anonymous = Bearer(app, None)
    resp = anonymous.get(f"Patient/{alice['id']}")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert anonymous.get("metadata").status_code == 200  # public
    assert anonymous.get(".well-known/smart-configuration").status_code == 200
    bad = Bearer(app, "not.a.token").get(f"Patient/{alice['id']}")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]

    user = auth.users.add("alice", "correct horse battery", "patient", patient=alice["id"])
    auth.clients.add("portal", client_type="public", redirect_uris=["https://x.example/cb"],
                     scope="launch/patient patient/Patient.rs patient/Observation.rs")
    token = auth.tokens.issue(client_id="portal", user=user, scope="patient/Patient.rs patient/Observation.rs",
                              context={"patient": alice["id"]})["access_token"]
    me = Bearer(app, token)
    assert me.get(f"Patient/{alice['id']}").status_code == 200
    assert me.get(f"Patient/{bob['id']}").status_code == 403
    obs = me.search("Observation")
    assert {e["resource"]["subject"]["reference"] for e in obs["entry"]} == {f"Patient/{alice['id']}"}
    assert me.get("Condition").status_code == 403  # no scope for Condition
    assert me.post("Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                   "subject": {"reference": f"Patient/{alice['id']}"}}).status_code == 403  # .rs only
    narrow = auth.tokens.issue(client_id="portal", user=user, scope="patient/Patient.r",
                               context={"patient": alice["id"]})["access_token"]
    assert Bearer(app, narrow).get(f"Patient/{alice['id']}").status_code == 200
    assert Bearer(app, narrow).get("Patient").status_code == 403  # read without search
    app.extensions["telehub.fhir"].repository.engine.dispose()


def test_token_requests_are_audited_without_secrets(database_url: str) -> None:
    app = create_app(make_settings(database_url, auth="smart"))
    import orjson

    auth = app.extensions["telehub.auth"].services
    auth.clients.add("conf", client_type="symmetric", secret="a-very-secret-value", scope="user/*.rs",
                     redirect_uris=["https://x.example/cb"])
    client = app.test_client()
    bad = client.post("/fhir/auth/token", data={"grant_type": "password", "username": "x", "password": "hunter2"})
    assert bad.status_code in (400, 401)
    services = app.extensions["telehub.fhir"]
    with services.repository.transaction() as conn:
        events = list(services.audit.entries(conn))
        raw = orjson.dumps(events)
    token_events = [e for e in events if e["subtype"][0]["code"] == "token"]
    assert token_events and token_events[-1]["outcome"] == "4"
    assert token_events[-1]["type"]["code"] == "110113"
    assert b"hunter2" not in raw and b"a-very-secret-value" not in raw
    services.repository.engine.dispose()
