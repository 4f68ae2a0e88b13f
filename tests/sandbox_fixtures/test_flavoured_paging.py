"""Every paging style across several pages, per flavour (vendor-notes §2.3, §3.3, §4.2, §5.2)."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.sandbox_fixtures.conftest import ORIGIN, Sandbox, json_of

PRACTICE = "Organization/a-1.Practice-195900"


def walk(sandbox: Sandbox, first: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow link[next] verbatim; return every page and the next links seen."""
    pages, nexts = [], []
    url: str | None = first
    while url:
        resp = sandbox.get(url)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        page = json_of(resp)
        pages.append(page)
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
        if url:
            nexts.append(url)
        assert len(pages) < 20
    return pages, nexts


def match_ids(pages: list[dict[str, Any]]) -> list[str]:
    return [e["resource"]["id"] for p in pages for e in p.get("entry", []) if e["search"]["mode"] == "match"]


def expected_ids(sandbox: Sandbox, query: str) -> set[str]:
    bundle = json_of(sandbox.get(f"/fhir/Observation?{query}&_count=200"))
    return {e["resource"]["id"] for e in bundle["entry"]}


def test_generic_plain_next_links(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    pages, nexts = walk(sandbox, f"{sandbox.base('generic')}/Observation?patient={patient}&_count=10")
    assert len(pages) == 4
    assert all(n.startswith(f"{ORIGIN}{sandbox.base('generic')}/Observation?") and "_offset=" in n for n in nexts)
    ids = match_ids(pages)
    assert len(ids) == len(set(ids)) == len(expected_ids(sandbox, f"patient={patient}"))


def test_epic_session_paging_outcome_entries_and_page_size_total(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Hintz"]
    pages, nexts = walk(sandbox, f"{sandbox.base('epic')}/Observation?patient={patient}&category=vital-signs&_count=6")
    assert len(pages) == 4  # 20 vital signs
    for url in nexts:  # Observation?sessionID=17-…, nothing else (§2.3)
        parts = urlsplit(url)
        assert parts.path == f"{sandbox.base('epic')}/Observation"
        query = parse_qs(parts.query)
        assert list(query) == ["sessionID"] and query["sessionID"][0].startswith("17-")
    ids = match_ids(pages)
    assert len(ids) == len(set(ids)) == len(expected_ids(sandbox, f"patient={patient}&category=vital-signs"))
    for page in pages:
        matches = [e for e in page["entry"] if e["search"]["mode"] == "match"]
        outcomes = [e for e in page["entry"] if e["search"]["mode"] == "outcome"]
        assert page["total"] == len(matches)  # total = the page size when _count is set
        assert len(outcomes) == 1 and outcomes[0]["fullUrl"].startswith("urn:uuid:")
        issue = outcomes[0]["resource"]["issue"][0]
        assert (issue["severity"], issue["code"]) == ("warning", "suppressed")
        assert issue["details"]["coding"][0] == {
            "system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369", "code": "59204",
            "display": issue["details"]["coding"][0]["display"]}
    assert all(e["fullUrl"].startswith(f"{ORIGIN}{sandbox.base('epic')}/Observation/")
               for p in pages for e in p["entry"] if e["search"]["mode"] == "match")


def test_cerner_page_context_paging_without_total(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Conn"]
    pages, nexts = walk(sandbox, f"{sandbox.base('cerner')}/Observation?patient={patient}&_count=10")
    assert len(pages) >= 3
    for url in nexts:
        query = parse_qs(urlsplit(url).query)
        assert set(query) == {"-pageContext", "-pageDirection"} and query["-pageDirection"] == ["NEXT"]
    assert all("total" not in p for p in pages)  # §3.3 often omitted
    ids = match_ids(pages)
    assert len(ids) == len(set(ids)) == len(expected_ids(sandbox, f"patient={patient}"))


def test_athena_cursor_paging_keeps_practice(sandbox: Sandbox) -> None:
    patient = sandbox.patients["Wiegand"]
    pages, nexts = walk(sandbox, f"{sandbox.base('athena')}/Observation?patient={patient}&ah-practice={PRACTICE}"
                                 "&_count=8")
    assert len(pages) >= 3
    for url in nexts:
        query = parse_qs(urlsplit(url).query)
        assert query["ah-practice"] == [PRACTICE] and len(query["cursor"]) == 1 and "_offset" not in query
    ids = match_ids(pages)
    assert len(ids) == len(set(ids)) == len(expected_ids(sandbox, f"patient={patient}"))


@pytest.mark.parametrize("flavour,query", [
    ("epic", "category=vital-signs&_count=5"),
    ("cerner", "_count=5"),
    ("athena", f"ah-practice={PRACTICE}&_count=5"),
])
def test_expired_paging_session(sandbox: Sandbox, flavour: str, query: str) -> None:
    patient = sandbox.patients["Hintz"]
    first = json_of(sandbox.get(f"{sandbox.base(flavour)}/Observation?patient={patient}&{query}"))
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    sandbox.clock.now += sandbox.flavours[flavour].paging.ttl + 1
    resp = sandbox.get(next_url)
    assert resp.status_code == 400
    issue = json_of(resp)["issue"][0]
    if flavour == "epic":  # §2.3 expired session → 4113
        assert issue["details"]["coding"][0]["code"] == "4113"
    else:
        assert "expired" in (issue.get("diagnostics") or issue["details"]["text"])


def test_forged_session_token_is_refused(sandbox: Sandbox) -> None:
    resp = sandbox.get(f"{sandbox.base('epic')}/Observation?sessionID=17-NOPE")
    assert resp.status_code == 400 and json_of(resp)["issue"][0]["details"]["coding"][0]["code"] == "4113"
