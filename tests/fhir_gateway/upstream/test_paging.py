"""Every paging style across several pages, de-duplication, limits and expired sessions.

Pages after the first are *derived* from real recordings where the vendor's later pages were never
captured: the entries are real, sliced into pages, and the next links keep the vendor's real format
(Epic ``sessionID`` from the paging probe, Cerner ``-pageContext`` from a live capture). athena has
no FHIR capture at all (vendor-notes §7 gaps), so its pages are synthetic and say so.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_gateway.upstream.errors import PagingSessionExpired, UpstreamBadResponse
from fhir_gateway.upstream.paging import search_all
from sandbox_fixtures.recordings import body
from tests.fhir_gateway.upstream.conftest import ATHENA_BASE, CERNER_BASE, EPIC_BASE, GENERIC_BASE

EPIC_SESSION = f"{EPIC_BASE}/Observation?sessionID=17-677B4277467911F1BE0E005056BECC4A"  # real format [probe]
CAMILA = "erXuFYUfucBZaryVksYEcMg3"


def _page(entries: list[Any], next_url: str | None, total: int | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries,
                              "link": ([{"relation": "next", "url": next_url}] if next_url else [])}
    if total is not None:
        bundle["total"] = total
    return bundle


def _epic_pages() -> list[dict[str, Any]]:
    """The real 5-result lab search for Camila Lopez, in three pages with the real outcome entry on each."""
    real = body("epic", "observation-lab-erXuFYUfucBZaryVksYEcMg3.json")
    matches = [e for e in real["entry"] if e["search"]["mode"] == "match"]
    outcome = [e for e in real["entry"] if e["search"]["mode"] == "outcome"]
    assert len(matches) == 5
    return [_page(matches[0:2] + outcome, EPIC_SESSION, 2), _page(matches[2:4], EPIC_SESSION, 2),
            _page(matches[4:5], None, 1)]


def _epic_first(h: Any) -> dict[str, str]:
    return {"patient": CAMILA, "category": "laboratory", "_count": "100"}


def test_epic_session_paging(harness: Any) -> None:
    h = harness("epic")
    h.token()
    first, second, third = _epic_pages()
    h.replay.on("GET", f"{EPIC_BASE}/Observation", params=_epic_first(h), json_body=first)
    h.replay.on("GET", EPIC_SESSION, json_body=second)
    h.replay.on("GET", EPIC_SESSION, json_body=third)
    result = search_all(h.client, "Observation", {"patient": CAMILA, "category": "laboratory"}, patient="hub-1")
    assert result.pages == 3 and len(result.resources) == 5 and result.duplicates == 0
    assert {w.vendor_code for w in result.warnings} == {"59204"}  # outcome entries are warnings, not data
    assert all(r["resourceType"] == "Observation" for r in result.resources)
    assert [c.search for c in h.auditor.calls] == [True, True, True]
    assert {c.patient for c in h.auditor.calls} == {"hub-1"}


def test_epic_expired_session_restarts_once(harness: Any) -> None:
    h = harness("epic")
    h.token()
    first, second, third = _epic_pages()
    # Epic's "paging session expired" (4113, vendor-notes §2.3) in Epic's OperationOutcome shape: not captured
    expired = {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "processing", "details": {
        "coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", "code": "4113"}]}}]}
    h.replay.on("GET", f"{EPIC_BASE}/Observation", params=_epic_first(h), json_body=first)
    h.replay.on("GET", EPIC_SESSION, status=400, json_body=expired)
    h.replay.on("GET", EPIC_SESSION, json_body=second)
    h.replay.on("GET", EPIC_SESSION, json_body=third)
    result = search_all(h.client, "Observation", {"patient": CAMILA, "category": "laboratory"})
    assert result.restarts == 1 and len(result.resources) == 5 and result.duplicates == 2
    assert len({r["id"] for r in result.resources}) == 5


def test_epic_session_that_keeps_expiring_fails(harness: Any) -> None:
    h = harness("epic")
    h.token()
    first = _epic_pages()[0]
    expired = {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "processing", "details": {
        "coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", "code": "4113"}]}}]}
    h.replay.on("GET", f"{EPIC_BASE}/Observation", params=_epic_first(h), json_body=first)
    h.replay.on("GET", EPIC_SESSION, status=400, json_body=expired)
    with pytest.raises(PagingSessionExpired):
        search_all(h.client, "Observation", {"patient": CAMILA, "category": "laboratory"})


def test_cerner_page_context_paging_dedups(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    first = body("cerner", "encounter-12724066.json")  # verbatim page 1 with its live -pageContext next link
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "-pageContext=" in next_url and "-pageDirection=NEXT" in next_url
    later = body("cerner", "encounter-12752183.json")["entry"]
    duplicate = copy.deepcopy(first["entry"][3])  # Cerner can return a resource on two pages [AE-CER]
    page3_url = f"{CERNER_BASE}/Encounter?patient=12724066&-pageContext=derived-page-3&-pageDirection=NEXT"
    h.replay.on("GET", f"{CERNER_BASE}/Encounter", params={"patient": "12724066", "_count": "50"}, json_body=first)
    h.replay.on("GET", next_url, json_body=_page([duplicate, *later], page3_url))
    h.replay.on("GET", page3_url, json_body=_page([], None))
    result = search_all(h.client, "Encounter", {"patient": "12724066"})
    assert result.pages == 3 and result.duplicates == 1
    assert [r["id"] for r in result.resources] == [e["resource"]["id"] for e in first["entry"]] + ["97987296"]


def test_athena_cursor_paging_keeps_the_practice(harness: Any) -> None:
    """Synthetic pages (no athena FHIR capture exists), in athena's id and cursor formats."""
    h = harness("athena")
    h.replay.on("POST", "https://api.preview.platform.athenahealth.com/oauth2/v1/token",
                json_body={"access_token": "a.b.c", "expires_in": 300})
    practice = "Organization/a-1.Practice-195900"

    def cond(n: int) -> dict[str, Any]:
        return {"resource": {"resourceType": "Condition", "id": f"a-195900.PL-{n}",
                             "subject": {"reference": "Patient/a-195900.E-8269"}}, "search": {"mode": "match"}}

    nxt = [f"{ATHENA_BASE}/Condition?patient=a-195900.E-8269&ah-practice={practice}&_count=50&cursor=c{n}"
           for n in (2, 3)]
    h.replay.on("GET", f"{ATHENA_BASE}/Condition",
                params={"patient": "a-195900.E-8269", "ah-practice": practice, "_count": "50"},
                json_body=_page([cond(1), cond(2)], nxt[0]))
    h.replay.on("GET", nxt[0], json_body=_page([cond(3)], nxt[1]))
    h.replay.on("GET", nxt[1], json_body=_page([cond(4)], None))
    result = search_all(h.client, "Condition", {"patient": "a-195900.E-8269"})
    assert [r["id"] for r in result.resources] == [f"a-195900.PL-{n}" for n in (1, 2, 3, 4)]
    first_get = next(r for r in h.replay.seen if r.method == "GET")
    assert "ah-practice=Organization%2Fa-1.Practice-195900" in str(first_get.url)


def test_generic_next_links_and_page_limit(harness: Any) -> None:
    """A HAPI-style server (synthetic pages): plain next links, and the page limit."""
    h = harness("generic-r4")
    h.replay.on("POST", "https://hapi.example.org/oauth/token", json_body={"access_token": "x", "expires_in": 300})
    pages = [f"{GENERIC_BASE}?_getpages=abc&_getpagesoffset={n}&_count=100" for n in (100, 200, 300)]

    def obs(n: int) -> dict[str, Any]:
        return {"resource": {"resourceType": "Observation", "id": f"o{n}"}, "search": {"mode": "match"}}

    h.replay.on("GET", f"{GENERIC_BASE}/Observation", params={"patient": "p1", "_count": "100"},
                json_body=_page([obs(0)], pages[0], total=4))
    for i, url in enumerate(pages):
        h.replay.on("GET", url, json_body=_page([obs(i + 1)], pages[i + 1] if i + 1 < len(pages) else None))
    assert len(search_all(h.client, "Observation", {"patient": "p1"}).resources) == 4
    limited = search_all(h.client, "Observation", {"patient": "p1"}, max_pages=2)
    assert limited.truncated and len(limited.resources) == 2
    assert limited.warnings[-1].code == "too-costly"


def test_a_next_link_to_another_server_is_not_followed(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    evil = "https://attacker.example/r4/Encounter?-pageContext=x"
    h.replay.on("GET", f"{CERNER_BASE}/Encounter", params={"patient": "1", "_count": "50"},
                json_body=_page(body("cerner", "encounter-12752183.json")["entry"], evil))
    with pytest.raises(UpstreamBadResponse, match="outside"):
        search_all(h.client, "Encounter", {"patient": "1"})
    assert not any("attacker" in str(r.url) for r in h.replay.seen)


def test_page_size_respects_resource_maximum(harness: Any) -> None:
    from fhir_gateway.upstream.paging import first_page_params

    h = harness("cerner")
    assert first_page_params(h.client, "DiagnosticReport", {"patient": "1"})["_count"] == "50"
    assert first_page_params(h.client, "Observation", {"patient": "1"})["_count"] == "50"
    e = harness("epic")
    assert first_page_params(e.client, "Observation", {})["_count"] == "100"
