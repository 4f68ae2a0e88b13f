"""``HubClient`` against the live hub: backend-services token (private_key_jwt RS384), CRUD, paging, errors,
token renewal before expiry."""
from __future__ import annotations

import pytest

from smart_app.backend_auth import BackendTokens
from smart_app.fhir_client import Conflict, HubClient, Invalid, NotFound
from tests.smart_app.conftest import LiveApp


@pytest.fixture
def hub(live_app: LiveApp) -> HubClient:
    client: HubClient = live_app.services.hub
    return client


def test_create_read_update_search_with_paging(hub: HubClient) -> None:
    made = [hub.create({"resourceType": "Location", "name": f"Room {i}", "status": "active"}) for i in range(5)]
    assert all(m["id"] and m["meta"]["versionId"] == "1" for m in made)
    found = hub.search("Location", {"name": "Room", "_count": "2"})  # three pages, next links followed
    assert {m["id"] for m in made} <= {f["id"] for f in found}
    first = hub.get(f"Location/{made[0]['id']}")
    updated = hub.update({**first, "name": "Room zero"}, if_match='W/"1"')
    assert updated["meta"]["versionId"] == "2"
    with pytest.raises(Conflict):
        hub.update({**first, "name": "stale"}, if_match='W/"1"')
    hub.delete(f"Location/{made[1]['id']}")
    with pytest.raises(NotFound):
        hub.get(f"Location/{made[1]['id']}")
    with pytest.raises(Invalid):
        hub.create({"resourceType": "Location", "name": "x", "notAnElement": True})


def test_transaction(hub: HubClient) -> None:
    result = hub.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7c5a7e-0000-4000-8000-000000000001", "request": {"method": "POST", "url": "Location"},
         "resource": {"resourceType": "Location", "name": "Tx room"}}]})
    assert result["type"] == "transaction-response" and result["entry"][0]["response"]["status"].startswith("201")


def test_search_with_includes(hub: HubClient, live_app: LiveApp) -> None:
    found = hub.search_with_includes("Appointment", [("practitioner", live_app.practitioner),
                                                     ("_include", "Appointment:patient")])
    assert len(found.matches) >= 5 and {r["resourceType"] for r in found.included} == {"Patient"}


def test_backend_token_is_renewed_before_expiry(live_app: LiveApp) -> None:
    import time

    real = live_app.services.hub.tokens
    tokens = BackendTokens(real.transport, token_url=real.token_url, client_id=real.client_id,
                           private_jwk=real._key.as_dict(private=True), scope="system/Location.rs")
    first = tokens.token()
    assert tokens.token() == first  # cached
    assert tokens._cached is not None
    tokens._cached.expires = time.time() + 30  # inside the 60 s renewal margin
    second = tokens.token()
    assert second != first
    client = HubClient(live_app.services.hub.base, real.transport, tokens)
    assert isinstance(client.search("Location", {"_count": "1"}), list)
