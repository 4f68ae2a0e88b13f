"""The same failure cases for every vendor profile: 401 → refresh → retry, 429 Retry-After, an HTML
error page, malformed JSON, and an expired paging session where the vendor has one.

Bodies are the vendors' recorded Patient reads where they exist (Epic, Cerner); athena and the
generic server have no capture, so their Patient is synthetic (athena's id format). The failure
answers (401, 429, HTML, truncation) are injected around them; no vendor 429 was ever recorded.
"""
from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway.upstream.errors import PagingSessionExpired, UpstreamBadResponse
from fhir_gateway.upstream.paging import search_all
from sandbox_fixtures.recordings import body, request
from tests.fhir_gateway.upstream.conftest import BASES, EPIC_BASE, GENERIC_BASE

VENDORS = ["epic", "cerner", "athena", "generic-r4"]
READS = {
    "epic": ("eq081-VQEgP8drUUqCWzHfw3", lambda: body("epic", "patient-eq081-VQEgP8drUUqCWzHfw3.json")),
    "cerner": ("12744580", lambda: body("cerner", "patient-12744580.json")),
    "athena": ("a-195900.E-8269", lambda: {"resourceType": "Patient", "id": "a-195900.E-8269"}),
    "generic-r4": ("p1", lambda: {"resourceType": "Patient", "id": "p1"}),
}
HTML = body("epic", "error-request-unsupported-resource-type.json")["_non_json_body"].encode("latin-1")


def _setup(harness: Any, vendor: str, *tokens: str) -> tuple[Any, str, dict[str, str] | None, Any]:
    h = harness(vendor)
    h.token(*tokens)
    pid, make = READS[vendor]
    url = request(vendor, "patient-eq081-VQEgP8drUUqCWzHfw3.json" if vendor == "epic" else "patient-12744580.json")[
        "url"] if vendor in ("epic", "cerner") else f"{BASES[vendor]}/Patient/{pid}"
    params = h.client.connection.tenancy_params() or None
    return h, url, params, make


@pytest.mark.parametrize("vendor", VENDORS)
def test_401_refresh_retry(harness: Any, vendor: str) -> None:
    h, url, params, make = _setup(harness, vendor, "old", "new")
    h.replay.on("GET", url, params=params, status=401, raw=b"")
    h.replay.on("GET", url, params=params, json_body=make())
    assert h.client.read("Patient", READS[vendor][0])["id"] == READS[vendor][0]
    assert h.client.tokens.acquired == 2


@pytest.mark.parametrize("vendor", VENDORS)
def test_429_retry_after(harness: Any, vendor: str) -> None:
    h, url, params, make = _setup(harness, vendor)
    h.replay.on("GET", url, params=params, status=429, raw=b"", headers={"Retry-After": "3"})
    h.replay.on("GET", url, params=params, json_body=make())
    h.client.read("Patient", READS[vendor][0])
    assert h.clock.sleeps == [3.0]


@pytest.mark.parametrize("vendor", VENDORS)
def test_html_error_page(harness: Any, vendor: str) -> None:
    h, url, params, _ = _setup(harness, vendor)
    h.replay.on("GET", url, params=params, status=404, raw=HTML, headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamBadResponse, match="HTML"):
        h.client.read("Patient", READS[vendor][0])


@pytest.mark.parametrize("vendor", VENDORS)
def test_malformed_json(harness: Any, vendor: str) -> None:
    import json

    h, url, params, make = _setup(harness, vendor)
    h.replay.on("GET", url, params=params, raw=json.dumps(make()).encode()[:-5],
                headers={"Content-Type": "application/fhir+json"})
    with pytest.raises(UpstreamBadResponse, match="not valid JSON"):
        h.client.read("Patient", READS[vendor][0])


@pytest.mark.parametrize(("vendor", "expired"), [
    ("epic", {"status": 400, "json_body": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "fatal", "code": "processing",
         "details": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", "code": "4113"}]}}]}}),
    ("generic-r4", {"status": 410, "json_body": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": "Search id not found or expired"}]}}),
])
def test_expired_paging_session_restarts_then_gives_up(harness: Any, vendor: str, expired: dict[str, Any]) -> None:
    h = harness(vendor)
    h.token()
    base = EPIC_BASE if vendor == "epic" else GENERIC_BASE
    params = {"patient": "p", "category": "laboratory"} if vendor == "epic" else {"patient": "p"}
    nxt = f"{base}/Observation?sessionID=S1" if vendor == "epic" else f"{base}?_getpages=S1&_getpagesoffset=1"
    page = {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": nxt}],
            "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}, "search": {"mode": "match"}}]}
    h.replay.on("GET", f"{base}/Observation", params={**params, "_count": "100"}, json_body=page)
    h.replay.on("GET", nxt, **expired)
    with pytest.raises(PagingSessionExpired):
        search_all(h.client, "Observation", params)
    firsts = [r for r in h.replay.seen if r.method == "GET" and "_count=100" in str(r.url)]
    assert len(firsts) == 2  # restarted once from the first page, then gave up
