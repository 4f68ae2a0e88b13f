"""Creates: read-back via Location (Epic/Cerner return no body) and no blind retry of a POST."""
from __future__ import annotations

import ast
from typing import Any

import pytest
import requests

from fhir_gateway.upstream.errors import UpstreamConfigError, WriteNotConfirmed
from fhir_gateway.upstream.writes import create
from sandbox_fixtures.recordings import load
from tests.fhir_gateway.upstream.conftest import EPIC_BASE

PROBE = load("epic", "Observation.json")  # the-map write probe: submitted body, empty create answer, read-back
SUBMITTED = ast.literal_eval(PROBE["_canonical_submitted"]) if isinstance(PROBE["_canonical_submitted"], str) \
    else PROBE["_canonical_submitted"]
READ_BACK = ast.literal_eval(PROBE["_epic_returned_get"]) if isinstance(PROBE["_epic_returned_get"], str) \
    else PROBE["_epic_returned_get"]
NEW_ID = READ_BACK["id"]
MATCH = {"patient": "eq081-VQEgP8drUUqCWzHfw3", "category": "vital-signs", "code": "85354-9"}


def test_epic_create_reads_back_via_location(harness: Any) -> None:
    h = harness("epic")
    h.token()
    h.replay.on("POST", f"{EPIC_BASE}/Observation", status=201, raw=b"",
                headers={"Location": f"{EPIC_BASE}/Observation/{NEW_ID}"})
    h.replay.on("GET", f"{EPIC_BASE}/Observation/{NEW_ID}", json_body=READ_BACK)
    created = create(h.client, SUBMITTED)
    assert created.vendor_id == NEW_ID and created.resource == READ_BACK
    assert h.replay.count("POST", f"{EPIC_BASE}/Observation") == 1


def test_a_timed_out_create_is_checked_not_retried(harness: Any) -> None:
    h = harness("epic")
    h.token()
    h.replay.fail("POST", f"{EPIC_BASE}/Observation", requests.ReadTimeout("slow"))
    found = {"resourceType": "Bundle", "type": "searchset",
             "entry": [{"resource": READ_BACK, "search": {"mode": "match"}}]}
    h.replay.on("GET", f"{EPIC_BASE}/Observation", params={**MATCH, "_count": "100"}, json_body=found)
    created = create(h.client, SUBMITTED, match=MATCH)
    assert created.confirmed_by_search and created.vendor_id == NEW_ID
    assert h.replay.count("POST", f"{EPIC_BASE}/Observation") == 1  # it landed: no second POST


def test_a_verified_absent_create_is_tried_once_more(harness: Any) -> None:
    h = harness("epic")
    h.token()
    h.replay.fail("POST", f"{EPIC_BASE}/Observation", requests.ReadTimeout("slow"))
    h.replay.on("POST", f"{EPIC_BASE}/Observation", status=201, raw=b"",
                headers={"Location": f"{EPIC_BASE}/Observation/{NEW_ID}"})
    h.replay.on("GET", f"{EPIC_BASE}/Observation", params={**MATCH, "_count": "100"},
                json_body={"resourceType": "Bundle", "type": "searchset", "entry": []})
    h.replay.on("GET", f"{EPIC_BASE}/Observation/{NEW_ID}", json_body=READ_BACK)
    assert create(h.client, SUBMITTED, match=MATCH).vendor_id == NEW_ID
    assert h.replay.count("POST", f"{EPIC_BASE}/Observation") == 2


def test_without_match_criteria_an_unknown_outcome_is_never_retried(harness: Any) -> None:
    h = harness("epic")
    h.token()
    h.replay.on("POST", f"{EPIC_BASE}/Observation", status=502, raw=b"")
    with pytest.raises(WriteNotConfirmed, match="not retried"):
        create(h.client, SUBMITTED)
    assert h.replay.count("POST", f"{EPIC_BASE}/Observation") == 1


def test_unsupported_create_is_refused_locally(harness: Any) -> None:
    h = harness("epic")
    with pytest.raises(UpstreamConfigError, match="Appointment"):
        create(h.client, {"resourceType": "Appointment", "status": "proposed", "participant": []})
    assert not h.replay.seen
