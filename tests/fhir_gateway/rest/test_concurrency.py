"""Concurrent writers: If-Match makes lost updates impossible; plain updates all land as versions."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.fhir_gateway.conftest import Fhir, patient


def test_concurrent_updates_with_if_match_let_exactly_one_win(app, fhir: Fhir) -> None:  # type: ignore[no-untyped-def]
    created = fhir.create(patient())
    pid = created["id"]
    barrier = threading.Barrier(8)

    def attempt(i: int) -> int:
        client = Fhir(app.test_client())
        barrier.wait()
        resp = client.put(f"Patient/{pid}", {**created, "gender": "female", "birthDate": f"19{10 + i}-01-01"},
                          headers={"If-Match": 'W/"1"'})
        return int(resp.status_code)

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [412] * 7
    history = fhir.get(f"Patient/{pid}/_history").get_json()
    assert history["total"] == 2


def test_concurrent_plain_updates_each_make_a_version(app, fhir: Fhir) -> None:  # type: ignore[no-untyped-def]
    created = fhir.create(patient())
    pid = created["id"]

    def update(i: int) -> int:
        client = Fhir(app.test_client())
        resp = client.put(f"Patient/{pid}", {**created, "birthDate": f"19{10 + i}-01-01"})
        return int(resp.status_code)

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(update, range(6)))
    assert statuses == [200] * 6  # writers queue on the row lock; none is lost
    current = fhir.get(f"Patient/{pid}").get_json()
    assert current["meta"]["versionId"] == "7"
    assert fhir.get(f"Patient/{pid}/_history").get_json()["total"] == 7
