"""include_query / revinclude_query against real index rows, on SQLite and on PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Select, create_engine

from fhir_gateway.search.includes import include_query, revinclude_query
from fhir_gateway.search.index_rows import IndexRows, ReferenceRow
from fhir_gateway.search.parse import IncludeSpec, SearchRequest, parse_search
from fhir_gateway.search.registry import SearchRegistry, default_registry
from fhir_gateway.storage.tables import INDEX_TABLES, metadata, resource


@pytest.fixture(scope="module")
def engine(module_database_url: str) -> Iterator[Engine]:
    """A fresh SQLite or PostgreSQL database per module (tests/conftest.py), with the tables created."""
    engine = create_engine(module_database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def add(conn: Connection, rtype: str, fid: str, *refs: tuple[str, str], deleted: bool = False) -> int:
    result = conn.execute(resource.insert().values(rtype=rtype, fid=fid, version=1, deleted=deleted,
                                                   last_updated=0, body=None))
    pk = result.inserted_primary_key[0] if result.inserted_primary_key else None
    assert isinstance(pk, int)
    rows = IndexRows(reference=[])
    for param, target in refs:
        if target.startswith("#"):
            rows.reference.append(ReferenceRow(param, None, None, target))
        else:
            target_type, _, target_id = target.partition("/")
            rows.reference.append(ReferenceRow(param, target_type, target_id))
    if rows.reference:
        conn.execute(INDEX_TABLES["reference"].insert(),
                     [asdict(r) | {"resource_pk": pk, "rtype": rtype} for r in rows.reference])
    return pk


Db = tuple[Engine, dict[str, int]]


@pytest.fixture(scope="module")
def db(engine: Engine) -> Db:
    pks: dict[str, int] = {}
    with engine.begin() as conn:
        pks["p1"] = add(conn, "Patient", "p1", ("general-practitioner", "Practitioner/dr1"))
        pks["dr1"] = add(conn, "Practitioner", "dr1")
        pks["dr2"] = add(conn, "Practitioner", "dr2", deleted=True)
        pks["pr1"] = add(conn, "PractitionerRole", "pr1", ("practitioner", "Practitioner/dr1"),
                         ("endpoint", "Endpoint/ep1"))
        pks["ep1"] = add(conn, "Endpoint", "ep1")
        pks["med1"] = add(conn, "Medication", "med1")
        pks["med2"] = add(conn, "Medication", "med2", deleted=True)
        pks["mr1"] = add(conn, "MedicationRequest", "mr1", ("medication", "Medication/med1"),
                         ("subject", "Patient/p1"), ("patient", "Patient/p1"))
        pks["mr2"] = add(conn, "MedicationRequest", "mr2", ("medication", "#contained"))
        pks["mr3"] = add(conn, "MedicationRequest", "mr3", ("medication", "Medication/med2"),
                         ("requester", "Practitioner/dr2"))
        pks["ct1"] = add(conn, "CareTeam", "ct1", ("participant", "Practitioner/dr1"),
                         ("participant", "Patient/p1"), ("participant", "PractitionerRole/pr1"),
                         ("subject", "Patient/p1"), ("patient", "Patient/p1"))
        pks["o1"] = add(conn, "Observation", "o1", ("subject", "Patient/p1"), ("patient", "Patient/p1"),
                        ("code-value-reference$1", "Medication/med1"))
        pks["prov1"] = add(conn, "Provenance", "prov1", ("target", "CareTeam/ct1"), ("agent", "Practitioner/dr1"))
        pks["prov2"] = add(conn, "Provenance", "prov2", ("target", "Patient/p1"), ("target", "CareTeam/ct1"))
        pks["prov3"] = add(conn, "Provenance", "prov3", ("target", "Patient/p1"), deleted=True)
        pks["prov4"] = add(conn, "Provenance", "prov4", ("target", "MedicationRequest/mr1"))
    return engine, pks


@pytest.fixture(scope="module")
def reg() -> SearchRegistry:
    return default_registry()


def req(reg: SearchRegistry, rtype: str, *params: tuple[str, str]) -> SearchRequest:
    return parse_search(reg, rtype, list(params))


def fids(db: Db, stmt: Select[Any]) -> list[str]:
    engine, pks = db
    names = {pk: fid for fid, pk in pks.items()}
    with engine.connect() as conn:
        return [names[pk] for pk in conn.execute(stmt).scalars()]


def page(db: Db, *names: str) -> list[int]:
    return [db[1][n] for n in names]


def test_include_skips_deleted_and_contained(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "MedicationRequest", ("_include", "MedicationRequest:medication"))
    assert fids(db, include_query(reg, "MedicationRequest", page(db, "mr1", "mr2", "mr3"), r.include)) == ["med1"]


def test_include_with_target_type(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "CareTeam", ("_include", "CareTeam:participant:Practitioner"))
    assert fids(db, include_query(reg, "CareTeam", page(db, "ct1"), r.include)) == ["dr1"]
    r = req(reg, "CareTeam", ("_include", "CareTeam:participant:PractitionerRole"),
            ("_include", "CareTeam:participant:Patient"))
    assert fids(db, include_query(reg, "CareTeam", page(db, "ct1"), r.include)) == ["p1", "pr1"]


def test_include_all_participants_each_once(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "CareTeam", ("_include", "CareTeam:participant"), ("_include", "CareTeam:subject"))
    assert fids(db, include_query(reg, "CareTeam", page(db, "ct1"), r.include)) == ["p1", "dr1", "pr1"]


def test_include_wildcards(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "PractitionerRole", ("_include", "PractitionerRole:*"))
    assert fids(db, include_query(reg, "PractitionerRole", page(db, "pr1"), r.include)) == ["dr1", "ep1"]
    r = req(reg, "Observation", ("_include", "*"))
    # composite components ($) are not references of their own
    assert fids(db, include_query(reg, "Observation", page(db, "o1"), r.include)) == ["p1"]


def test_include_specs_for_other_types_are_skipped(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "CareTeam", ("_include", "MedicationRequest:medication"))
    assert fids(db, include_query(reg, "CareTeam", page(db, "ct1"), r.include)) == []
    assert fids(db, include_query(reg, "CareTeam", [], req(reg, "CareTeam", ("_include", "*")).include)) == []


def test_include_iterate_is_the_callers_loop(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "MedicationRequest", ("_include", "MedicationRequest:patient"),
            ("_include:iterate", "Patient:general-practitioner"),
            ("_revinclude:iterate", "PractitionerRole:practitioner"))
    seen = set(page(db, "mr1"))
    found = fids(db, include_query(reg, "MedicationRequest", page(db, "mr1"), r.include))
    assert found == ["p1"]
    rounds = [found]
    new = {db[1][f] for f in found} - seen
    while new:
        seen |= new
        inc = [s for s in r.include if s.iterate]
        rev = [s for s in r.revinclude if s.iterate]
        batch = fids(db, include_query(reg, None, sorted(new), inc)) + fids(
            db, revinclude_query(reg, None, sorted(new), rev))
        new = {db[1][f] for f in batch} - seen
        rounds.append(sorted(f for f in batch if db[1][f] in new))
    assert rounds == [["p1"], ["dr1"], ["pr1"], []]


def test_revinclude_provenance(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "Patient", ("_revinclude", "Provenance:target"))
    assert fids(db, revinclude_query(reg, "Patient", page(db, "p1"), r.revinclude)) == ["prov2"]  # prov3 deleted
    r = req(reg, "CareTeam", ("_revinclude", "Provenance:target"))
    assert fids(db, revinclude_query(reg, "CareTeam", page(db, "ct1"), r.revinclude)) == ["prov1", "prov2"]


def test_revinclude_over_a_mixed_page(db: Db, reg: SearchRegistry) -> None:
    spec = [IncludeSpec("Provenance", "target", reverse=True)]
    assert fids(db, revinclude_query(reg, None, page(db, "p1", "mr1", "ct1"), spec)) == ["prov1", "prov2", "prov4"]


def test_revinclude_with_target_type(db: Db, reg: SearchRegistry) -> None:
    spec = [IncludeSpec("Provenance", "target", "Patient", reverse=True)]
    assert fids(db, revinclude_query(reg, None, page(db, "p1", "ct1"), spec)) == ["prov2"]
    assert fids(db, revinclude_query(reg, "CareTeam", page(db, "ct1"), spec)) == []


def test_revinclude_wildcard(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "Patient", ("_revinclude", "*"))
    assert fids(db, revinclude_query(reg, "Patient", page(db, "p1"), r.revinclude)) == [
        "mr1", "ct1", "o1", "prov2"]
    assert fids(db, revinclude_query(reg, "Patient", page(db, "p1"), [])) == []


def test_us_core_practitioner_role_includes(db: Db, reg: SearchRegistry) -> None:
    r = req(reg, "PractitionerRole", ("_include", "PractitionerRole:endpoint"),
            ("_include", "PractitionerRole:practitioner"))
    assert fids(db, include_query(reg, "PractitionerRole", page(db, "pr1"), r.include)) == ["dr1", "ep1"]
