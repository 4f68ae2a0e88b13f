"""One upstream call: 401 → refresh → retry, 429 Retry-After, back-off, error shapes, breaker, throttle, audit."""
from __future__ import annotations

from typing import Any

import pytest
import redis
import requests

from fhir_gateway.upstream.errors import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamHttpError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from fhir_gateway.upstream.throttle import MemoryBucket, RedisBucket, Throttle
from sandbox_fixtures.recordings import body, request
from tests.fhir_gateway.upstream.conftest import FakeClock, recording_bytes

DERRICK = "eq081-VQEgP8drUUqCWzHfw3"
PATIENT = "patient-eq081-VQEgP8drUUqCWzHfw3.json"


def _epic(harness: Any, *tokens: str) -> Any:
    h = harness("epic")
    h.token(*(tokens or ("tok-1",)))
    return h


def test_read_sends_fhir_json_accept_and_bearer(harness: Any) -> None:
    h = _epic(harness)
    h.replay.on("GET", request("epic", PATIENT)["url"], json_body=body("epic", PATIENT))
    patient = h.client.read("Patient", DERRICK, patient="hub-p1")
    assert patient["id"] == DERRICK
    get = h.replay.seen[-1]
    assert get.headers["Accept"] == "application/fhir+json" and get.headers["Authorization"] == "Bearer tok-1"
    call = h.auditor.calls[-1]
    assert (call.method, call.resource_type, call.status, call.patient) == ("GET", "Patient", 200, "hub-p1")
    assert DERRICK not in call.audit_input().description  # no ids or queries in the text; the URL is hashed


def test_401_refreshes_the_token_once_and_retries(harness: Any) -> None:
    h = _epic(harness, "stale", "fresh")
    url = request("epic", PATIENT)["url"]
    # Epic's invalid-bearer answer: 401, empty body, WWW-Authenticate (vendor-notes §2.3; shape, not a capture)
    h.replay.on("GET", url, status=401, raw=b"",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token '
                                             'provided is not valid"'})
    h.replay.on("GET", url, json_body=body("epic", PATIENT))
    assert h.client.read("Patient", DERRICK)["id"] == DERRICK
    gets = [r for r in h.replay.seen if r.method == "GET" and "Patient" in str(r.url)]
    assert [g.headers["Authorization"] for g in gets] == ["Bearer stale", "Bearer fresh"]
    assert h.client.tokens.acquired == 2 and h.clock.sleeps == []


def test_a_second_401_is_an_auth_error(harness: Any) -> None:
    h = _epic(harness, "a", "b")
    h.replay.on("GET", request("epic", PATIENT)["url"], status=401, raw=b"")
    with pytest.raises(UpstreamAuthError, match="401 again"):
        h.client.read("Patient", DERRICK)
    assert h.client.tokens.acquired == 2


def test_429_retry_after_is_honoured(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    rec = request("cerner", "patient-12744580.json")
    # no Cerner 429 was ever recorded (vendor-notes §7 gaps): a 429 with Retry-After, then the real answer
    h.replay.on("GET", rec["url"], status=429, raw=b"", headers={"Retry-After": "7"})
    h.replay.on("GET", rec["url"], json_body=body("cerner", "patient-12744580.json"))
    assert h.client.read("Patient", "12744580")["id"] == "12744580"
    assert h.clock.sleeps == [7.0]


def test_503_backs_off_exponentially_with_jitter_then_gives_up(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    h.replay.on("GET", request("cerner", "patient-12744580.json")["url"], status=503, raw=b"")
    with pytest.raises(UpstreamRateLimited):
        h.client.read("Patient", "12744580")
    # base 0.5 s doubling, equal jitter with rng = 0.5 → 3/4 of each ceiling; 4 retries
    assert h.clock.sleeps == [0.375, 0.75, 1.5, 3.0]


def test_retry_after_too_long_is_not_waited(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    h.replay.on("GET", request("cerner", "patient-12744580.json")["url"], status=429, raw=b"",
                headers={"Retry-After": "3600"})
    with pytest.raises(UpstreamRateLimited, match="Retry-After"):
        h.client.read("Patient", "12744580")
    assert h.clock.sleeps == []


def test_epic_html_404_is_a_clear_error(harness: Any) -> None:
    h = _epic(harness)
    rec = request("epic", "error-request-unsupported-resource-type.json")
    html = body("epic", "error-request-unsupported-resource-type.json")["_non_json_body"].encode("latin-1")
    h.replay.on("GET", rec["url"], status=404, raw=html, headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamBadResponse, match="HTML page") as err:
        h.client.get(rec["url"], None, resource_type="FakeResourceTypeThatDoesNotExist")
    assert err.value.status == 404


def test_malformed_json_is_a_clear_error(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    rec = request("cerner", "patient-12744580.json")
    truncated = recording_bytes("cerner", "patient-12744580.json")[:700]  # a real body, cut short
    h.replay.on("GET", rec["url"], raw=truncated, headers={"Content-Type": "application/fhir+json"})
    with pytest.raises(UpstreamBadResponse, match="not valid JSON"):
        h.client.read("Patient", "12744580")


def test_vendor_operation_outcomes(harness: Any) -> None:
    h = _epic(harness)
    rec = request("epic", "error-search-with-unsupported-param.json")
    h.replay.on("GET", rec["url"], status=400, json_body=body("epic", "error-search-with-unsupported-param.json"))
    with pytest.raises(UpstreamHttpError) as err:
        h.client.get(rec["url"], None, resource_type="Patient", search=True)
    assert err.value.vendor_codes == ["59100", "59159"] and err.value.status == 400
    assert "59159" in str(err.value) and "demographics" not in str(err.value)
    rec = request("epic", "error-404-on-nonexistent-patient-id.json")
    h.replay.on("GET", rec["url"], status=404, json_body=body("epic", "error-404-on-nonexistent-patient-id.json"))
    with pytest.raises(UpstreamNotFound) as nf:
        h.client.read("Patient", "this-id-definitely-does-not-exist-c2f4692e")
    assert nf.value.vendor_codes == ["59008"]


def test_cerner_minimal_outcome(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    rec = request("cerner", "error-404-on-nonexistent-patient-id.json")
    h.replay.on("GET", rec["url"], status=404, json_body=body("cerner", "error-404-on-nonexistent-patient-id.json"))
    with pytest.raises(UpstreamNotFound, match="error/not-found"):
        h.client.read("Patient", "this-id-definitely-does-not-exist-13581fed1")


def test_xml_answer_when_accept_was_ignored(harness: Any) -> None:
    h = _epic(harness)
    h.replay.on("GET", request("epic", PATIENT)["url"], raw=b'<Patient xmlns="http://hl7.org/fhir"/>',
                headers={"Content-Type": "application/fhir+xml"})
    with pytest.raises(UpstreamBadResponse, match="XML"):
        h.client.read("Patient", DERRICK)


def test_connection_errors_retry_then_open_the_circuit(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    h.replay.fail("GET", request("cerner", "patient-12744580.json")["url"], requests.ConnectionError("refused"))
    with pytest.raises(UpstreamUnavailable, match="no answer"):
        h.client.read("Patient", "12744580")
    assert h.client.calls == 5 and h.client.breaker.state == "open"  # 1 + 4 retries; 5 failures open it
    assert {c.status for c in h.auditor.calls} == {0}  # failed calls are audited too
    with pytest.raises(UpstreamUnavailable, match="circuit open"):
        h.client.read("Patient", "12744580")
    assert h.client.calls == 5  # nothing sent while open
    h.clock.now += 31
    assert h.client.breaker.state == "half-open"
    h.replay.routes.clear()
    h.token()
    h.replay.on("GET", request("cerner", "patient-12744580.json")["url"],
                json_body=body("cerner", "patient-12744580.json"))
    assert h.client.read("Patient", "12744580")["id"] == "12744580"
    assert h.client.breaker.state == "closed"


def test_timeouts_come_from_the_profile(harness: Any) -> None:
    h = harness("epic")
    assert h.client.timeout == (5.0, 60.0)


def test_memory_bucket_throttles_with_the_clock() -> None:
    clock = FakeClock()
    throttle = Throttle(MemoryBucket(rate=2.0, burst=2), "c", clock, clock.sleep)
    for _ in range(4):
        throttle.acquire()
    assert clock.sleeps == [0.5, 0.5]


def test_redis_bucket_is_shared_by_workers(redis_url: str, redis_key_prefix: str) -> None:
    client: Any = redis.Redis.from_url(redis_url)
    clock = FakeClock()
    workers = [Throttle(RedisBucket(client, 1.0, 3, redis_key_prefix), "clinic", clock, clock.sleep)
               for _ in range(2)]
    for i in range(4):
        workers[i % 2].acquire()
    assert clock.sleeps == [1.0]  # 3 shared tokens, the 4th call (either worker) waits a second


def test_calls_are_throttled_to_the_profile(harness: Any) -> None:
    h = harness("cerner")
    h.token()
    rec = request("cerner", "patient-12744580.json")
    h.replay.on("GET", rec["url"], json_body=body("cerner", "patient-12744580.json"))
    for _ in range(25):
        h.client.read("Patient", "12744580")
    assert h.clock.sleeps and sum(h.clock.sleeps) == pytest.approx(0.5, abs=0.01)  # burst 20, then 10/s
