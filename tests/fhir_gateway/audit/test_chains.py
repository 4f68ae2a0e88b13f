"""Several audit chains: chain 1 for entries written with the audited change, one per process for group-committed
read entries. ``verify`` walks them all and finds an edit, deletion, insertion or reordering in any of them;
retention purges each; entries written before there were chains still verify after the migration."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, delete, insert, select, update

from fhir_gateway.access import RequestContext
from fhir_gateway.app import create_app
from fhir_gateway.audit.chain import event_digest, link
from fhir_gateway.audit.events import AuditInput, build_audit_event
from fhir_gateway.audit.tables import GENESIS, audit_head, audit_log
from fhir_gateway.storage.codec import JsonCodec, associated_data
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.migrate import upgrade
from tests.fhir_gateway.conftest import Fhir, make_settings, patient

KEY = os.urandom(32)


@pytest.fixture
def workers(database_url: str) -> Iterator[list[Flask]]:
    """Two apps on one database: two worker processes, each with its own appender and chain."""
    apps = [create_app(make_settings(database_url), audit_key=KEY) for _ in range(2)]
    yield apps
    for app in apps:
        app.extensions["telehub.fhir"].repository.engine.dispose()


def verify(app: Flask) -> Any:
    svc = app.extensions["telehub.fhir"]
    with svc.repository.transaction() as conn:
        return svc.audit.verify(conn)


def tamper(app: Flask, fn: Any) -> None:
    with app.extensions["telehub.fhir"].repository.engine.begin() as conn:
        fn(conn)


def rows_of(conn: Connection, chain: int) -> Sequence[Any]:
    return conn.execute(select(audit_log).where(audit_log.c.chain == chain).order_by(audit_log.c.chain_seq)).all()


def populate(apps: list[Flask]) -> tuple[int, int]:
    """Writes (chain 1) and reads through both workers; returns the workers' chains."""
    clients = [Fhir(app.test_client()) for app in apps]
    pid = clients[0].create(patient(family="Chains"))["id"]
    for i in range(4):
        assert clients[i % 2].get(f"Patient/{pid}").status_code == 200
        assert clients[i % 2].get("Patient?family=Chains").status_code == 200
    clients[1].create(patient(family="Chains2"))
    chains = [app.extensions["telehub.fhir"].audit.appender(app.extensions["telehub.fhir"].repository.engine).chain
              for app in apps]
    assert None not in chains and len(set(chains)) == 2 and 1 not in chains
    report = verify(apps[0])
    assert report.ok and report.chains == 3 and report.checked == 2 + 8, report
    return chains[0], chains[1]


def test_each_worker_appends_to_a_chain_of_its_own(workers: list[Flask]) -> None:
    first, second = populate(workers)
    with workers[0].extensions["telehub.fhir"].repository.engine.connect() as conn:
        assert [r.subtype for r in rows_of(conn, 1)] == ["create", "create"]
        assert [r.chain_seq for r in rows_of(conn, first)] == [1, 2, 3, 4]
        assert [r.chain_seq for r in rows_of(conn, second)] == [1, 2, 3, 4]
        heads = {h.id: h.seq for h in conn.execute(select(audit_head))}
    assert heads == {1: 2, first: 4, second: 4}


@pytest.mark.parametrize("attack", ["edit", "delete-middle", "delete-tail", "insert-copy", "swap", "move-chain",
                                    "unknown-chain"])
def test_verify_finds_tampering_in_a_worker_chain(workers: list[Flask], attack: str) -> None:
    first, second = populate(workers)

    def attack_it(conn: Connection) -> None:
        rows = rows_of(conn, second)
        if attack == "edit":
            forged = JsonCodec().encode({"resourceType": "AuditEvent", "id": "forged"}, b"")
            conn.execute(update(audit_log).where(audit_log.c.seq == rows[1].seq).values(body=forged))
        elif attack == "delete-middle":
            conn.execute(delete(audit_log).where(audit_log.c.seq == rows[1].seq))
        elif attack == "delete-tail":
            conn.execute(delete(audit_log).where(audit_log.c.seq == rows[-1].seq))
        elif attack == "insert-copy":
            copy = rows[1]._asdict()
            top = conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc()).limit(1)).scalar_one()
            conn.execute(insert(audit_log).values(**{**copy, "seq": top + 1, "event_id": "inserted"}))
        elif attack == "swap":  # two entries exchange their places in the global order
            a, b = rows[1]._asdict(), rows[2]._asdict()
            conn.execute(delete(audit_log).where(audit_log.c.seq.in_([a["seq"], b["seq"]])))
            conn.execute(insert(audit_log).values(**{**b, "seq": a["seq"]}))
            conn.execute(insert(audit_log).values(**{**a, "seq": b["seq"]}))
        elif attack == "move-chain":  # an entry re-labelled as the other worker's
            conn.execute(update(audit_log).where(audit_log.c.seq == rows[-1].seq).values(chain=first, chain_seq=5))
            conn.execute(update(audit_head).where(audit_head.c.id == first).values(seq=5))
        elif attack == "unknown-chain":
            conn.execute(update(audit_log).where(audit_log.c.seq == rows[0].seq).values(chain=99))

    tamper(workers[0], attack_it)
    report = verify(workers[0])
    assert not report.ok, attack
    expected = {"edit": {"edited"}, "delete-middle": {"deleted"}, "delete-tail": {"deleted"},
                "insert-copy": {"inserted"}, "swap": {"reordered", "edited"}, "move-chain": {"edited", "deleted"},
                "unknown-chain": {"inserted"}}[attack]
    assert report.problem in expected, report
    assert report.chain in ({first, second} if attack == "move-chain" else {second, 99}), report
    assert "BROKEN" in str(report)


def test_retention_purges_every_chain_and_the_chains_still_verify(workers: list[Flask]) -> None:
    populate(workers)
    svc = workers[0].extensions["telehub.fhir"]
    now = time.time_ns() // 1000
    seven_years_on = now + int(7 * 365.25 * 24 * 3600 * 1_000_000)
    with svc.repository.transaction(write=True) as conn:
        removed = svc.audit.purge(conn, now + 1, AuditInput("security", 200, RequestContext(user="admin")),
                                  now=seven_years_on)
    assert removed == 10
    report = verify(workers[0])
    assert report.ok and report.checked == 1, report  # the purge's own entry
    # the workers go on appending after the purge; the chains stay verifiable
    assert Fhir(workers[1].test_client()).get("Patient?family=Chains").status_code == 200
    assert verify(workers[0]).ok


def test_entries_from_before_chains_verify_after_the_migration(database_url: str) -> None:
    """A trail written by the one-chain schema (0008) is chain 1 after 0009, and still verifies."""
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0008")
        codec = JsonCodec()
        prev = GENESIS
        with engine.begin() as conn:
            for seq in range(1, 4):
                event = build_audit_event(AuditInput("read", 200, RequestContext(user="u")), 1_700_000_000_000_000,
                                          event_id=f"old-{seq}")
                digest = link(KEY, seq, prev, event_digest(event))  # the one-chain formula: seq|prev|
                conn.execute(insert(audit_log).values(  # only the columns the 0008 schema has
                    seq=seq, event_id=f"old-{seq}", recorded=1, action="R", subtype="read", outcome="0", agent=None,
                    patients="", body=codec.encode(event, associated_data("AuditEvent", f"old-{seq}", 0)),
                    prev_hash=prev, hash=digest, materialized=False))
                prev = digest
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=3, hash=prev))
        upgrade(engine)
    finally:
        engine.dispose()
    app = create_app(make_settings(database_url, encryption=False), audit_key=KEY, codec=JsonCodec())
    try:
        assert verify(app).ok and verify(app).checked == 3
        pid = Fhir(app.test_client()).create(patient())["id"]  # chain 1 goes on after the old entries
        assert Fhir(app.test_client()).get(f"Patient/{pid}").status_code == 200  # and a worker chain starts
        report = verify(app)
        assert report.ok and report.checked == 5 and report.chains == 2, report
        with app.extensions["telehub.fhir"].repository.engine.connect() as conn:
            assert [r.chain_seq for r in rows_of(conn, 1)] == [1, 2, 3, 4]
    finally:
        app.extensions["telehub.fhir"].repository.engine.dispose()
