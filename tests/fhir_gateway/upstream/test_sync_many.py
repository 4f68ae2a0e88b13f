"""``sync_many``: many patients through one connection with a bounded pool, against the sandbox's
vendor-flavoured endpoints in-process; the result equals the sequential one, limits are shared."""
from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_gateway.app import build_services
from fhir_gateway.rest.context import Validator
from fhir_gateway.upstream.sync import sync_patient
from fhir_gateway.upstream.sync_many import pool_size, sync_many, worker_client
from tests.fhir_gateway.conftest import make_settings
from tests.fhir_gateway.upstream.conftest import FakeClock
from tests.fhir_gateway.upstream.test_sync_sandbox import _client
from tests.sandbox_fixtures.conftest import Sandbox, build


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = build(tmp_path_factory.mktemp("sandbox-many"))
    yield sb
    sb.app.hub_app.extensions["telehub.fhir"].repository.engine.dispose()


def _target(path: Path) -> Any:
    built = build_services(make_settings(f"sqlite:///{path}"), audit_key=os.urandom(32))
    return dataclasses.replace(built, validator=Validator(r4b_models=False))


@pytest.mark.parametrize("vendor", ["cerner", "athena"])
def test_sync_many_matches_sequential(sandbox: Sandbox, tmp_path: Path, vendor: str) -> None:
    patients = sorted(sandbox.patients.values())
    sequential, concurrent = _target(tmp_path / "seq.sqlite3"), _target(tmp_path / "con.sqlite3")
    try:
        one_by_one = [sync_patient(sequential, _client(sandbox, vendor, FakeClock()), p) for p in patients]
        client = _client(sandbox, vendor, FakeClock())
        many = sync_many(concurrent, client, patients, workers=3)
        assert many.workers == 3 and not many.failures, many.failures
        for alone, together in zip(one_by_one, many.reports, strict=True):
            assert together is not None
            assert together.fetched == alone.fetched and together.created == alone.created
            assert together.calls == alone.calls  # each worker counts its own calls only
        assert many.calls == sum(r.calls for r in one_by_one)
        assert "3/3 patients synced with 3 worker(s)" in many.summary()
    finally:
        sequential.repository.engine.dispose()
        concurrent.repository.engine.dispose()


def test_one_patients_error_does_not_stop_the_others(sandbox: Sandbox, tmp_path: Path) -> None:
    target = _target(tmp_path / "t.sqlite3")
    try:
        many = sync_many(target, _client(sandbox, "cerner", FakeClock()),
                         [sandbox.patients["Hintz"], "no-such-patient"], workers=2)
    finally:
        target.repository.engine.dispose()
    assert many.reports[0] is not None and many.reports[1] is None
    assert many.failures[1].startswith("UpstreamNotFound")


def test_pool_is_bounded_by_the_bucket_and_clones_share_limits(sandbox: Sandbox) -> None:
    client = _client(sandbox, "epic", FakeClock())
    burst = client.profile.rate_limit.burst
    assert pool_size(client, 100) == burst and pool_size(client, 100, 500) == burst
    assert pool_size(client, 3, 8) == 3 and pool_size(client, 0) == 1
    clone = worker_client(client)
    assert clone.session is not client.session and clone.calls == 0
    assert clone.throttle is client.throttle and clone.tokens is client.tokens and clone.breaker is client.breaker
    assert clone.session.adapters == client.session.adapters


def test_throttle_is_shared_across_workers(sandbox: Sandbox, tmp_path: Path) -> None:
    """Every worker takes from the same bucket: total waits match one bucket's arithmetic."""
    client = _client(sandbox, "cerner", FakeClock())
    lock = threading.Lock()
    takes: list[str] = []
    bucket = client.throttle.bucket
    original = bucket.take

    def counting(key: str, now: float) -> float:
        with lock:
            takes.append(key)
        return float(original(key, now))

    bucket.take = counting
    target = _target(tmp_path / "t.sqlite3")
    try:
        many = sync_many(target, client, sorted(sandbox.patients.values()), workers=3)
    finally:
        target.repository.engine.dispose()
    assert set(takes) == {client.connection.key} and len(takes) >= many.calls
