"""Group commit of read audit entries: concurrent requests share transactions, every one of them is
audited before it is answered, a failed batch fails all of its requests and leaves none of its entries,
and the chain stays gap-free and verifiable when several appenders (worker processes) and write
transactions move the same head."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from fhir_gateway.app import create_app
from fhir_gateway.audit.appender import GroupCommit, Prepared, chain_rows
from fhir_gateway.audit.chain import link, link_hash
from fhir_gateway.audit.tables import GENESIS, audit_head, audit_log
from tests.fhir_gateway.conftest import Fhir, make_settings, patient

THREADS = 8


@pytest.fixture
def audited(database_url: str) -> Any:
    app = create_app(make_settings(database_url), audit_key=os.urandom(32))
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


def appender(app: Flask) -> GroupCommit:
    svc = app.extensions["telehub.fhir"]
    return svc.audit.appender(svc.repository.engine)  # type: ignore[no-any-return]


def entries(app: Flask) -> list[dict[str, Any]]:
    svc = app.extensions["telehub.fhir"]
    with svc.repository.transaction() as conn:
        return list(svc.audit.entries(conn))


def verify(app: Flask) -> Any:
    svc = app.extensions["telehub.fhir"]
    with svc.repository.transaction() as conn:
        return svc.audit.verify(conn)


def seqs_and_head(app: Flask) -> tuple[list[int], int]:
    """All entries' places, chain after chain, and how many there should be: each chain's places must be
    1..its head (so the list equals range(1, n + 1) chain after chain, compared via ``gapless``)."""
    engine = app.extensions["telehub.fhir"].repository.engine
    with engine.connect() as conn:
        heads = {int(h.id): int(h.seq) for h in conn.execute(select(audit_head))}
        places: dict[int, list[int]] = {chain: [] for chain in heads}
        for row in conn.execute(select(audit_log.c.chain, audit_log.c.chain_seq).order_by(audit_log.c.seq)):
            places[int(row.chain)].append(int(row.chain_seq))
    for chain, last in heads.items():
        assert places[chain] == list(range(1, last + 1)), (chain, places[chain], last)  # gap-free, in order
    total = sum(heads.values())
    return list(range(1, total + 1)), total


def reads_by_outcome(app: Flask) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in entries(app):
        if e["subtype"][0]["code"] == "read":
            out[e["outcome"]] = out.get(e["outcome"], 0) + 1
    return out


def hold_first_batch_until_queued(monkeypatch: pytest.MonkeyPatch, group: GroupCommit, queued: int,
                                  then: Any = None) -> list[int]:
    """Make the first batch wait until ``queued`` more entries are pending, so the next batch has them all;
    ``then(original, self, conn, entries)`` replaces every later batch's write. Returns batch sizes."""
    original = GroupCommit._append
    sizes: list[int] = []

    def append(self: GroupCommit, conn: Any, batch: list[Prepared]) -> tuple[int, str]:
        sizes.append(len(batch))
        if len(sizes) == 1:
            deadline = time.monotonic() + 20
            while len(self._pending) < queued and time.monotonic() < deadline:
                time.sleep(0.005)
        elif then is not None:
            return then(original, self, conn, batch)  # type: ignore[no-any-return]
        return original(self, conn, batch)

    monkeypatch.setattr(GroupCommit, "_append", append)
    return sizes


def concurrent_reads(app: Flask, paths: list[str]) -> list[int]:
    barrier = threading.Barrier(len(paths))

    def read(path: str) -> int:
        client = Fhir(app.test_client())
        barrier.wait()
        return int(client.get(path).status_code)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(read, paths))


def test_concurrent_reads_are_each_audited_in_shared_transactions(audited: Flask,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fhir = Fhir(audited.test_client())
    ids = [fhir.create(patient(family=f"Group{i}"))["id"] for i in range(THREADS)]
    group = appender(audited)
    sizes = hold_first_batch_until_queued(monkeypatch, group, THREADS - 1)
    statuses = concurrent_reads(audited, [f"Patient/{pid}" for pid in ids])
    assert statuses == [200] * THREADS
    assert sizes == [1, THREADS - 1]  # the leader's own entry, then everything queued meanwhile: one transaction
    read = [e for e in entries(audited) if e["subtype"][0]["code"] == "read"]
    assert sorted(x["what"]["reference"].split("/")[1] for e in read for x in e["entity"]
                  if x["role"]["code"] == "1") == sorted(ids)  # every read, with its patient
    seqs, head = seqs_and_head(audited)
    assert seqs == list(range(1, head + 1))  # gap-free, and the head is the last entry
    assert verify(audited).ok


def test_a_failed_batch_fails_all_of_its_requests_and_writes_none_of_its_entries(
        audited: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    fhir = Fhir(audited.test_client())
    ids = [fhir.create(patient(family=f"Fail{i}"))["id"] for i in range(THREADS)]
    before = len(entries(audited))
    group = appender(audited)

    def fail_after_insert(original: Any, self: GroupCommit, conn: Any, batch: list[Prepared]) -> tuple[int, str]:
        def insert_then_fail(cur: Any, rows: list[Any]) -> None:
            GroupCommit._insert(self, cur, rows)  # the rows and the new head are written…
            raise RuntimeError("disk full")  # …and then the transaction fails

        setattr(self, "_insert", insert_then_fail)  # noqa: B010 - this instance only, for this batch
        self._head = None  # the path with a transaction of several statements (PostgreSQL has a one-statement one)
        try:
            return original(self, conn, batch)  # type: ignore[no-any-return]
        finally:
            delattr(self, "_insert")

    sizes = hold_first_batch_until_queued(monkeypatch, group, THREADS - 1, then=fail_after_insert)
    statuses = concurrent_reads(audited, [f"Patient/{pid}" for pid in ids])
    assert sizes[:2] == [1, THREADS - 1]
    assert sorted(statuses) == [200] + [500] * (THREADS - 1)  # the whole failed batch, and only it
    monkeypatch.undo()
    assert reads_by_outcome(audited).get("0") == 1  # only the committed batch's read is in the trail
    # (each failed request still left a failure entry, written after its response was decided)
    assert len(entries(audited)) == before + 1 + reads_by_outcome(audited).get("8", 0)
    seqs, head = seqs_and_head(audited)
    assert seqs == list(range(1, head + 1))  # the failed batch's rows and head update rolled back
    assert verify(audited).ok
    assert fhir.get(f"Patient/{ids[0]}").status_code == 200  # and the appender works again
    assert verify(audited).ok


def test_a_read_whose_entry_cannot_be_written_fails_and_leaves_no_entry(audited: Flask,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fhir = Fhir(audited.test_client())
    pid = fhir.create(patient(family="Unwritable"))["id"]
    assert fhir.get(f"Patient/{pid}").status_code == 200  # the appender now knows the head (its fast path)
    group = appender(audited)
    before = reads_by_outcome(audited)
    monkeypatch.setattr(group, "_sql", {k: v.replace("audit_log (", "audit_log_gone (") for k, v in group._sql.items()})
    resp = fhir.get(f"Patient/{pid}")
    assert resp.status_code == 500 and resp.get_json()["resourceType"] == "OperationOutcome"
    monkeypatch.undo()
    after = reads_by_outcome(audited)
    assert after.get("0") == before.get("0") == 1  # the failed read left no success entry…
    assert after.get("8") == 1  # …only the failure entry, written after the response was decided
    seqs, head = seqs_and_head(audited)
    assert seqs == list(range(1, head + 1)) and verify(audited).ok
    assert fhir.get(f"Patient/{pid}").status_code == 200
    assert reads_by_outcome(audited).get("0") == 2 and verify(audited).ok


def test_entries_interleave_with_write_transactions_and_other_processes_appenders(database_url: str) -> None:
    """Two apps on one database stand for two worker processes: each has its own appender and cached
    head, and write requests append in their own transactions; the chain stays one gap-free chain."""
    key = os.urandom(32)
    apps = [create_app(make_settings(database_url), audit_key=key) for _ in range(2)]
    try:
        clients = [Fhir(app.test_client()) for app in apps]
        pid = clients[0].create(patient(family="Workers"))["id"]

        def work(i: int) -> list[int]:
            client = clients[i % 2]
            out = [client.get(f"Patient/{pid}").status_code for _ in range(5)]
            out.append(client.post("Patient", patient(family=f"W{i}")).status_code)
            out += [client.get(f"Patient?family=W{i}").status_code for _ in range(3)]
            return out

        with ThreadPoolExecutor(6) as pool:
            statuses = [s for batch in pool.map(work, range(6)) for s in batch]
        assert set(statuses) == {200, 201}
        seqs, head = seqs_and_head(apps[0])
        assert len(seqs) == 1 + 6 * 9 and seqs == list(range(1, head + 1))
        assert verify(apps[0]).ok and verify(apps[1]).ok
        assert all(appender(app).entries for app in apps)  # both "workers" wrote batches
    finally:
        for app in apps:
            app.extensions["telehub.fhir"].repository.engine.dispose()


def test_chain_rows_link_each_entry_to_its_predecessor() -> None:
    key = os.urandom(32)
    events = [{"resourceType": "AuditEvent", "id": f"e{i}"} for i in range(3)]
    from fhir_gateway.audit.chain import event_digest

    batch = [Prepared(e["id"], 1, "R", "read", "0", None, "", b"", event_digest(e)) for e in events]
    rows, head = chain_rows(key, 7, (41, GENESIS), batch)
    assert [(r[0], r[1]) for r in rows] == [(7, 42), (7, 43), (7, 44)]
    prev = GENESIS
    for row, event in zip(rows, events, strict=True):
        assert row[10] == prev and row[11] == link_hash(key, row[1], prev, event, 7)
        prev = row[11]
    assert head == (44, prev)
    assert link(key, 42, GENESIS, event_digest(events[0]), 7) == rows[0][11]
    assert link(key, 42, GENESIS, event_digest(events[0]), 1) != rows[0][11]  # the chain is part of the link
