"""match_query / count_query against real index rows, on SQLite and on PostgreSQL.

The extractor is not involved: rows are written straight into the index tables
in the shape documented in ``search/index_rows.py``. The PostgreSQL run uses a
throwaway database ``telehub_test_<random>``; it is skipped when the server on
127.0.0.1:5432 is unreachable.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

import pytest
from sqlalchemy import Connection, Engine, create_engine

from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search.compile import count_query, match_query
from fhir_gateway.search.hashing import IndexHasher, PlainIndexHasher
from fhir_gateway.search.index_rows import (
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from fhir_gateway.search.parse import parse_search
from fhir_gateway.search.registry import SearchRegistry, default_registry
from fhir_gateway.search.values import date_range, normalize_string, number_range
from fhir_gateway.storage.tables import INDEX_TABLES, metadata, resource

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NOW = date_range("2024-01-01")[0]


# -- databases -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(module_database_url: str) -> Iterator[Engine]:
    """A fresh SQLite or PostgreSQL database per module (tests/conftest.py), with the tables created."""
    engine = create_engine(module_database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def add(conn: Connection, rtype: str, fid: str, rows: IndexRows | None = None, *, deleted: bool = False,
        updated: str = "2023-01-01T00:00:00Z") -> int:
    """Insert a current resource and its index rows, as the repository would."""
    result = conn.execute(resource.insert().values(rtype=rtype, fid=fid, version=1, deleted=deleted,
                                                   last_updated=date_range(updated)[0], body=None))
    pk = result.inserted_primary_key[0] if result.inserted_primary_key else None
    assert isinstance(pk, int)
    rows = rows or IndexRows()
    for kind, table in INDEX_TABLES.items():
        items = getattr(rows, kind)
        if items:
            conn.execute(table.insert(), [asdict(r) | {"resource_pk": pk, "rtype": rtype} for r in items])
    return pk


def s(param: str, value: str) -> StringRow:
    return StringRow(param, normalize_string(value), value)


def d(param: str, low: str, high: str | None = None) -> DateRow:
    return DateRow(param, date_range(low)[0], date_range(high or low)[1])


def q(param: str, value: str, system: str | None = UCUM, code: str | None = None, unit: str | None = None,
      grp: int | None = None) -> QuantityRow:
    v, lo, hi = number_range(value)
    return QuantityRow(param, v, lo, hi, system, code, unit, grp)


def ref(param: str, target: str, url: str | None = None, grp: int | None = None) -> ReferenceRow:
    rtype, _, fid = target.partition("/")
    return ReferenceRow(param, rtype or None, fid or None, url, None, grp)


def subject_patient(target: str) -> list[ReferenceRow]:
    return [ref("subject", target), ref("patient", target)]


def load(conn: Connection) -> dict[str, int]:
    pks: dict[str, int] = {}
    gender = "http://hl7.org/fhir/administrative-gender"
    pks["org1"] = add(conn, "Organization", "org1", IndexRows(string=[s("name", "Acme Health")]))
    pks["org2"] = add(conn, "Organization", "org2", IndexRows(string=[s("name", "Beta Clinic")]))
    pks["org3"] = add(conn, "Organization", "org3", IndexRows(string=[s("name", "Acme Deleted")]), deleted=True)
    pks["dr1"] = add(conn, "Practitioner", "dr1", IndexRows(
        string=[s("name", "House")], token=[TokenRow("identifier", "http://hosp/npi", "N1")]))
    pks["p1"] = add(conn, "Patient", "p1", IndexRows(
        string=[s("name", "Smith"), s("name", "John"), s("family", "Smith")],
        token=[TokenRow("gender", gender, "male"), TokenRow("identifier", "http://hosp/mrn", "MRN1"),
               TokenRow("_tag", "http://tags", "vip")],
        date=[d("birthdate", "1980-05-12")],
        reference=[ref("organization", "Organization/org1"), ref("general-practitioner", "Practitioner/dr1")],
        uri=[UriRow("_profile", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")]),
        updated="2021-06-01T00:00:00Z")
    pks["p2"] = add(conn, "Patient", "p2", IndexRows(
        string=[s("name", "Smithson"), s("name", "Zoë")],
        token=[TokenRow("gender", gender, "female"), TokenRow("identifier", "http://hosp/mrn", "MRN2")],
        date=[d("birthdate", "1990")], reference=[ref("organization", "Organization/org2")]))
    pks["p3"] = add(conn, "Patient", "p3", IndexRows(
        string=[s("name", "Jones")], token=[TokenRow("gender", gender, "male")]))
    pks["p4"] = add(conn, "Patient", "p4", IndexRows(string=[s("name", "Smith")]), deleted=True)
    pks["p5"] = add(conn, "Patient", "p5", IndexRows(
        string=[s("name", "O'Brien 100%")], reference=[ref("organization", "Organization/org3")]))
    pks["loc1"] = add(conn, "Location", "loc1", IndexRows(string=[s("name", "Smith Clinic Room")]))
    pks["o1"] = add(conn, "Observation", "o1", IndexRows(
        token=[TokenRow("code", LOINC, "8480-6", "systolic blood pressure"), TokenRow("status", None, "final"),
               TokenRow("code-value-quantity$0", LOINC, "8480-6", grp=0),
               TokenRow("component-code-value-quantity$0", LOINC, "8480-6", grp=1),
               TokenRow("component-code-value-quantity$0", LOINC, "8462-4", grp=2)],
        date=[d("date", "2020-01-15T10:00:00Z")],
        quantity=[q("value-quantity", "120", code="mm[Hg]", unit="mmHg"),
                  q("code-value-quantity$1", "120", code="mm[Hg]", grp=0),
                  q("component-code-value-quantity$1", "120", code="mm[Hg]", grp=1),
                  q("component-code-value-quantity$1", "80", code="mm[Hg]", grp=2)],
        reference=subject_patient("Patient/p1")), updated="2022-01-01T00:00:00Z")
    pks["o2"] = add(conn, "Observation", "o2", IndexRows(
        token=[TokenRow("code", LOINC, "8480-6"), TokenRow("status", None, "preliminary"),
               TokenRow("code-value-quantity$0", LOINC, "8480-6", grp=0)],
        date=[d("date", "2020-02")],
        quantity=[q("value-quantity", "95", code="mm[Hg]"), q("code-value-quantity$1", "95", grp=0)],
        reference=subject_patient("Patient/p2")), updated="2022-06-01T00:00:00Z")
    pks["o3"] = add(conn, "Observation", "o3", IndexRows(
        token=[TokenRow("code", LOINC, "29463-7", "body weight"), TokenRow("status", None, "final")],
        date=[d("date", "2021-01-01", "2021-01-31")],
        quantity=[q("value-quantity", "70.5", code="kg")],
        reference=subject_patient("Patient/p1")))
    pks["o4"] = add(conn, "Observation", "o4", IndexRows(
        token=[TokenRow("code", None, "xyz"), TokenRow("status", None, "amended")],
        reference=[ref("subject", "Location/loc1")]))
    pks["o5"] = add(conn, "Observation", "o5", IndexRows(
        token=[TokenRow("code", "http://other", "8480-6"), TokenRow("status", None, "final")],
        reference=[ref("subject", "Group/g1")]))
    pks["o6"] = add(conn, "Observation", "o6", IndexRows(
        token=[TokenRow("subject:identifier", "http://hosp/mrn", "MRN1")],
        reference=[ref("subject", "Patient/ext1", url="http://other.example/fhir/Patient/ext1"),
                   ref("patient", "Patient/ext1", url="http://other.example/fhir/Patient/ext1")]))
    pks["o7"] = add(conn, "Observation", "o7", IndexRows(
        token=[TokenRow("code", LOINC, "8480-6"), TokenRow("status", None, "final")],
        reference=subject_patient("Patient/p3")), deleted=True)
    pks["prov1"] = add(conn, "Provenance", "prov1", IndexRows(
        reference=[ref("target", "Observation/o1"), ref("agent", "Practitioner/dr1")]))
    pks["prov2"] = add(conn, "Provenance", "prov2", IndexRows(reference=[ref("target", "Patient/p1")]))
    pks["vs1"] = add(conn, "ValueSet", "vs1", IndexRows(uri=[UriRow("url", "http://acme.org/fhir/ValueSet/123")]))
    pks["vs2"] = add(conn, "ValueSet", "vs2", IndexRows(
        uri=[UriRow("url", "http://acme.org/fhir/ValueSet/123/extra")]))
    pks["vs3"] = add(conn, "ValueSet", "vs3", IndexRows(uri=[UriRow("url", "http://acme.org/fhir")]))
    pks["vs4"] = add(conn, "ValueSet", "vs4", IndexRows(uri=[UriRow("url", "http://acme.org/fhirx")]))
    long_name = "Long " * 80  # 400 characters; the extractor stores the first 255 of its normalised form
    pks["org4"] = add(conn, "Organization", "org4", IndexRows(
        string=[StringRow("name", normalize_string(long_name)[:255], long_name)]))
    pks["c1"] = add(conn, "Condition", "c1", IndexRows(quantity=[q("onset-age", "40", code="a", unit="yr")]))
    pks["c2"] = add(conn, "Condition", "c2", IndexRows(  # a Range 30-50 a
        quantity=[QuantityRow("onset-age", None, 30.0, 50.0, UCUM, "a")]))
    pks["c3"] = add(conn, "Condition", "c3", IndexRows(  # a Range >= 60 a
        quantity=[QuantityRow("onset-age", None, 60.0, None, UCUM, "a")]))
    for fid, value in [("ra1", "0.8"), ("ra2", "0.25"), ("ra3", "100"), ("ra4", None)]:
        numbers = [NumberRow("probability", *number_range(value))] if value else []
        pks[fid] = add(conn, "RiskAssessment", fid, IndexRows(number=numbers))
    return pks


@pytest.fixture(scope="module")
def db(engine: Engine) -> tuple[Engine, dict[str, int]]:
    with engine.begin() as conn:
        pks = load(conn)
    return engine, pks


@pytest.fixture(scope="module")
def reg() -> SearchRegistry:
    return default_registry()


Db = tuple[Engine, dict[str, int]]


def run(db: Db, reg: SearchRegistry, rtype: str | None, *params: tuple[str, str],
        hasher: IndexHasher | None = None, **kw: object) -> list[str]:
    """The fids matched, in query order; also checks count_query agrees."""
    engine, pks = db
    fids = {pk: fid for fid, pk in pks.items()}
    kw.setdefault("now", NOW)
    request = parse_search(reg, rtype, list(params), **kw)  # type: ignore[arg-type]
    with engine.connect() as conn:
        found = list(conn.execute(match_query(reg, request, hasher)).scalars())
        total = conn.execute(count_query(reg, request, hasher)).scalar_one()
    assert total == len(found)
    return [fids[pk] for pk in found]


def match(db: Db, reg: SearchRegistry, rtype: str | None, *params: tuple[str, str],
          hasher: IndexHasher | None = None, **kw: object) -> set[str]:
    return set(run(db, reg, rtype, *params, hasher=hasher, **kw))


# -- token ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("8480-6", {"o1", "o2", "o5"}),
    ("http://loinc.org|8480-6", {"o1", "o2"}),
    ("|xyz", {"o4"}),
    ("xyz", {"o4"}),
    ("|8480-6", set()),
    ("http://loinc.org|", {"o1", "o2", "o3"}),
    ("29463-7,xyz", {"o3", "o4"}),
])
def test_token(db: Db, reg: SearchRegistry, value: str, expected: set[str]) -> None:
    assert match(db, reg, "Observation", ("code", value)) == expected


def test_repeated_parameters_are_anded(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("code", "http://loinc.org|8480-6"), ("status", "final")) == {"o1"}
    assert match(db, reg, "Observation", ("status", "final"), ("status", "amended")) == set()


def test_token_not_includes_resources_without_the_value(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("status:not", "final")) == {"o2", "o4", "o6"}
    assert match(db, reg, "Observation", ("status:not", "final,amended")) == {"o2", "o6"}


def test_token_text(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("code:text", "Systolic")) == {"o1"}
    assert match(db, reg, "Observation", ("code:text", "pressure")) == set()


def test_identifier_gender_tag(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("identifier", "http://hosp/mrn|MRN1")) == {"p1"}
    assert match(db, reg, "Patient", ("identifier", "MRN2")) == {"p2"}
    assert match(db, reg, "Patient", ("gender", "male")) == {"p1", "p3"}
    assert match(db, reg, "Patient", ("_tag", "http://tags|vip")) == {"p1"}


# -- string --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    (("name", "smi"), {"p1", "p2"}),
    (("name", "SMITH"), {"p1", "p2"}),
    (("name", "zoë"), {"p2"}),
    (("name", "Zoe"), {"p2"}),
    (("name:exact", "Smith"), {"p1"}),
    (("name:exact", "smith"), set()),
    (("name:contains", "MIT"), {"p1", "p2"}),
    (("name:contains", "100%"), {"p5"}),
    (("name:contains", "%"), {"p5"}),
    (("name", "o_"), set()),
    (("name", "o'brien 100%"), {"p5"}),
    (("name", "smith,jones"), {"p1", "p2", "p3"}),
])
def test_string(db: Db, reg: SearchRegistry, params: tuple[str, str], expected: set[str]) -> None:
    assert match(db, reg, "Patient", params) == expected


# -- date ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2020", {"o1", "o2"}),
    ("2020-01", {"o1"}),
    ("2020-02-10", set()),  # o2 is the whole of February: not contained in one day
    ("2021-01", {"o3"}),
    ("2021-01-15", set()),
    ("ne2020", {"o3"}),
    ("gt2020-01-15", {"o2", "o3"}),
    ("ge2020-01-15", {"o1", "o2", "o3"}),
    ("lt2020-02-01", {"o1"}),
    ("le2020-02-01", {"o1", "o2"}),
    ("sa2020-01-31", {"o2", "o3"}),
    ("eb2020-02-15", {"o1"}),
    ("2020-01-15T10:00:00Z", {"o1"}),
    ("2020-01-15T10:00:00+01:00", set()),
    ("2020-01-15T11:00:00 01:00", {"o1"}),  # '+' decoded to a space
    ("ap2019-09", {"o1", "o2"}),  # widened ~5 months each way (NOW is 2024): to early March 2020
    ("ge2020-01-15,lt2020-01-01", {"o1", "o2", "o3"}),
])
def test_date(db: Db, reg: SearchRegistry, value: str, expected: set[str]) -> None:
    assert match(db, reg, "Observation", ("date", value)) == expected


def test_date_range_by_two_parameters(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("date", "ge2020-01-01"), ("date", "lt2020-12-31")) == {"o1", "o2"}


def test_date_ap_is_narrow_close_to_now(db: Db, reg: SearchRegistry) -> None:
    near = date_range("2020-01-16")[0]
    assert match(db, reg, "Observation", ("date", "ap2020-01-14"), now=near) == {"o1"}
    assert match(db, reg, "Observation", ("date", "ap2020-01-13"), now=near) == set()


def test_last_updated_uses_the_resource_table(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("_lastUpdated", "lt2022-03")) == {"o1"}
    assert match(db, reg, "Observation", ("_lastUpdated", "2022")) == {"o1", "o2"}
    assert match(db, reg, "Observation", ("_lastUpdated", "ge2022-06-01T00:00:00Z")) == {
        "o2", "o3", "o4", "o5", "o6"}


# -- number / quantity ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("0.8", {"ra1"}),
    ("0.80", {"ra1"}),  # [0.795, 0.805)
    ("0.9", set()),
    ("100", {"ra3"}),
    ("1e2", {"ra3"}),
    ("gt0.5", {"ra1", "ra3"}),
    ("lt0.5", {"ra2"}),
    ("ge0.8", {"ra1", "ra3"}),
    ("le0.25", {"ra2"}),
    ("ne0.8", {"ra2", "ra3"}),
    ("sa0.8", {"ra3"}),
    ("eb0.8", {"ra2"}),
    ("ap95", {"ra3"}),
    ("ap0.75", {"ra1"}),  # ±0.075
    ("ap0.7", set()),  # [0.63, 0.77]
])
def test_number(db: Db, reg: SearchRegistry, value: str, expected: set[str]) -> None:
    assert match(db, reg, "RiskAssessment", ("probability", value)) == expected


def test_number_missing(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "RiskAssessment", ("probability:missing", "true")) == {"ra4"}


@pytest.mark.parametrize(("value", "expected"), [
    ("120", {"o1"}),
    ("gt100", {"o1"}),
    ("le95", {"o2", "o3"}),
    ("120|http://unitsofmeasure.org|mm[Hg]", {"o1"}),
    ("120||mmHg", {"o1"}),
    ("120||mm[Hg]", {"o1"}),
    ("120|http://other|mm[Hg]", set()),
    ("70.5|http://unitsofmeasure.org|kg", {"o3"}),
    ("gt0|http://unitsofmeasure.org|", {"o1", "o2", "o3"}),
])
def test_quantity(db: Db, reg: SearchRegistry, value: str, expected: set[str]) -> None:
    assert match(db, reg, "Observation", ("value-quantity", value)) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("40", {"c1"}),
    ("40||a", {"c1"}),
    ("gt45", {"c2", "c3"}),
    ("ge50", {"c2", "c3"}),
    ("lt35", {"c2"}),
    ("le30", {"c2"}),
    ("sa55", {"c3"}),
    ("eb55", {"c1", "c2"}),
    ("ap40", {"c1", "c2"}),
    ("ne40", {"c2", "c3"}),
])
def test_quantity_ranges(db: Db, reg: SearchRegistry, value: str, expected: set[str]) -> None:
    assert match(db, reg, "Condition", ("onset-age", value)) == expected


def test_string_longer_than_the_column_matches_the_cut_value(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Organization", ("name", "long " * 70)) == {"org4"}
    assert match(db, reg, "Organization", ("name:exact", "Long " * 80)) == {"org4"}


# -- uri -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    (("url", "http://acme.org/fhir/ValueSet/123"), {"vs1"}),
    (("url:below", "http://acme.org/fhir/ValueSet"), {"vs1", "vs2"}),
    (("url:below", "http://acme.org/fhir"), {"vs1", "vs2", "vs3"}),  # not http://acme.org/fhirx
    (("url:above", "http://acme.org/fhir/ValueSet/123/_history/5"), {"vs1", "vs3"}),
])
def test_uri(db: Db, reg: SearchRegistry, params: tuple[str, str], expected: set[str]) -> None:
    assert match(db, reg, "ValueSet", params) == expected


def test_profile(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("_profile", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")
                 ) == {"p1"}


# -- reference -----------------------------------------------------------------------------------

def test_patient_id_and_typed_reference_give_the_same_result(db: Db, reg: SearchRegistry) -> None:
    a = run(db, reg, "Observation", ("patient", "p1"))
    assert a == run(db, reg, "Observation", ("patient", "Patient/p1")) == ["o1", "o3"]


@pytest.mark.parametrize(("params", "expected"), [
    (("subject", "p1"), {"o1", "o3"}),
    (("subject:Patient", "p1"), {"o1", "o3"}),
    (("subject", "Location/loc1"), {"o4"}),
    (("subject", "Group/g1"), {"o5"}),
    (("subject", "Patient/p3"), set()),  # only a deleted observation points there
    (("subject", "http://other.example/fhir/Patient/ext1"), {"o6"}),
    (("subject:identifier", "http://hosp/mrn|MRN1"), {"o6"}),
    (("subject", "p1,Location/loc1"), {"o1", "o3", "o4"}),
])
def test_reference(db: Db, reg: SearchRegistry, params: tuple[str, str], expected: set[str]) -> None:
    assert match(db, reg, "Observation", params) == expected


def test_reference_to_this_server_by_absolute_url(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("patient", "https://hub.example/fhir/Patient/p1"),
                 base_url="https://hub.example/fhir") == {"o1", "o3"}


# -- composite -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    (("code-value-quantity", "http://loinc.org|8480-6$gt100"), {"o1"}),
    (("code-value-quantity", "http://loinc.org|8480-6$lt100"), {"o2"}),
    (("code-value-quantity", "http://loinc.org|8480-6$gt100,http://loinc.org|8480-6$lt100"), {"o1", "o2"}),
    (("component-code-value-quantity", "http://loinc.org|8462-4$lt100"), {"o1"}),
    (("component-code-value-quantity", "http://loinc.org|8462-4$gt100"), set()),  # 120 is the other component
    (("code-value-quantity:missing", "false"), {"o1", "o2"}),
])
def test_composite(db: Db, reg: SearchRegistry, params: tuple[str, str], expected: set[str]) -> None:
    assert match(db, reg, "Observation", params) == expected


# -- :missing, _id, snapshot ---------------------------------------------------------------------

def test_missing(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("birthdate:missing", "true")) == {"p3", "p5"}
    assert match(db, reg, "Patient", ("birthdate:missing", "false")) == {"p1", "p2"}
    assert match(db, reg, "Observation", ("date:missing", "true")) == {"o4", "o5", "o6"}
    assert match(db, reg, "Observation", ("subject:missing", "true")) == set()


def test_id(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Observation", ("_id", "o1,o2,o7")) == {"o1", "o2"}
    assert match(db, reg, "Observation", ("_id:not", "o1")) == {"o2", "o3", "o4", "o5", "o6"}
    assert match(db, reg, "Patient", ("_id", "o1")) == set()


def test_deleted_resources_never_match(db: Db, reg: SearchRegistry) -> None:
    assert "p4" not in match(db, reg, "Patient")
    assert "o7" not in match(db, reg, "Observation")


def test_snapshot_bounds_the_matches(db: Db, reg: SearchRegistry) -> None:
    _, pks = db
    assert match(db, reg, "Observation", ("_snapshot", str(pks["o2"]))) == {"o1", "o2"}


# -- chaining ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    (("subject:Patient.name", "smith"), {"o1", "o2", "o3"}),
    (("subject.name", "smith"), {"o1", "o2", "o3", "o4"}),  # Patient and Location both have 'name'
    (("patient.name", "jones"), set()),  # only the deleted o7 points at p3
    (("subject.gender", "female"), {"o2"}),
    (("subject:Patient.organization.name", "acme"), {"o1", "o3"}),
    (("patient.organization.name", "beta"), {"o2"}),
    (("patient.identifier", "http://hosp/mrn|MRN1"), {"o1", "o3"}),
    (("patient._id", "p2"), {"o2"}),
])
def test_chain(db: Db, reg: SearchRegistry, params: tuple[str, str], expected: set[str]) -> None:
    assert match(db, reg, "Observation", params) == expected


def test_chain_ignores_deleted_targets(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("organization.name", "acme")) == {"p1"}  # p5's org3 is deleted


def test_has(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("_has:Observation:patient:code", "8480-6")) == {"p1", "p2"}  # not p3 (o7)
    assert match(db, reg, "Patient", ("_has:Observation:patient:code", "29463-7")) == {"p1"}
    assert match(db, reg, "Patient", ("_has:Observation:subject:status", "amended")) == set()
    assert match(db, reg, "Location", ("_has:Observation:subject:status", "amended")) == {"loc1"}


def test_nested_has(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Patient", ("_has:Observation:patient:_has:Provenance:target:agent", "Practitioner/dr1")
                 ) == {"p1"}


def test_has_and_chain_combined(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, "Practitioner", ("_has:Provenance:agent:target:Observation.patient.name", "smith")
                 ) == {"dr1"}


# -- sorting -------------------------------------------------------------------------------------

def test_default_order_is_pk(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Observation") == ["o1", "o2", "o3", "o4", "o5", "o6"]


def test_sort_by_date_nulls_last(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Observation", ("_sort", "date")) == ["o1", "o2", "o3", "o4", "o5", "o6"]
    assert run(db, reg, "Observation", ("_sort", "-date")) == ["o3", "o2", "o1", "o4", "o5", "o6"]


def test_sort_several_keys(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Observation", ("_sort", "status,-date")) == ["o4", "o3", "o1", "o5", "o2", "o6"]


def test_sort_uses_min_ascending_and_max_descending(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Patient", ("_sort", "name")) == ["p1", "p3", "p5", "p2"]  # john, jones, o'brien, smithson
    assert run(db, reg, "Patient", ("_sort", "-name")) == ["p2", "p1", "p5", "p3"]  # zoe, smith, o'brien, jones


def test_sort_by_id_and_last_updated(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Patient", ("_sort", "-_id")) == ["p5", "p3", "p2", "p1"]
    assert run(db, reg, "Observation", ("_sort", "-_lastUpdated")) == ["o3", "o4", "o5", "o6", "o2", "o1"]


def test_sort_by_quantity_number_reference(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Observation", ("_sort", "value-quantity"), ("value-quantity:missing", "false")) == [
        "o3", "o2", "o1"]
    assert run(db, reg, "RiskAssessment", ("_sort", "-probability")) == ["ra3", "ra1", "ra2", "ra4"]
    # Patient/p2, Patient/p1 (o1, o3 by pk), Patient/ext1, Location/loc1, Group/g1
    assert run(db, reg, "Observation", ("_sort", "-subject")) == ["o2", "o1", "o3", "o6", "o4", "o5"]


def test_sort_with_criteria(db: Db, reg: SearchRegistry) -> None:
    assert run(db, reg, "Observation", ("patient", "p1"), ("_sort", "-date")) == ["o3", "o1"]


# -- system-wide ---------------------------------------------------------------------------------

def test_system_search(db: Db, reg: SearchRegistry) -> None:
    assert match(db, reg, None, ("_id", "p1,o1,org3")) == {"p1", "o1"}
    assert match(db, reg, None, ("_tag", "vip")) == {"p1"}
    assert match(db, reg, None, ("_type", "Observation,Patient"), ("_lastUpdated", "lt2022-01-02")) == {"p1", "o1"}
    assert match(db, reg, None, ("_type", "Organization,Location"), ("name", "smith")) == {"loc1"}


# -- blind indexes -------------------------------------------------------------------------------

class TaggingHasher:
    """Protects Patient/Practitioner identifiers and Patient family names, keyed by resource type."""

    PROTECTED = {("Patient", "identifier"), ("Practitioner", "identifier"), ("Patient", "family")}

    def protect(self, rtype: str, param: str, value: str) -> str:
        return f"h:{rtype}:{value}" if (rtype, param) in self.PROTECTED else value


@pytest.fixture(scope="module")
def hashed(db: Db) -> Db:
    engine, pks = db
    h = TaggingHasher()
    with engine.begin() as conn:
        family = normalize_string("Blackwood")
        pks["hp"] = add(conn, "Patient", "hp", IndexRows(
            token=[TokenRow("identifier", "http://hosp/mrn", h.protect("Patient", "identifier", "SECRET1"))],
            string=[StringRow("family", h.protect("Patient", "family", family[:n]), "") for n in
                    range(1, len(family) + 1)]))
        pks["hd"] = add(conn, "Practitioner", "hd", IndexRows(
            token=[TokenRow("identifier", "http://hosp/npi", h.protect("Practitioner", "identifier", "SECRET1"))]))
    return db


def test_hasher_protocol() -> None:
    assert isinstance(TaggingHasher(), IndexHasher)
    assert PlainIndexHasher().protect("Patient", "identifier", "x") == "x"


def test_blind_index_token(hashed: Db, reg: SearchRegistry) -> None:
    h = TaggingHasher()
    assert match(hashed, reg, "Patient", ("identifier", "http://hosp/mrn|SECRET1"), hasher=h) == {"hp"}
    assert match(hashed, reg, "Patient", ("identifier", "http://hosp/mrn|SECRET1")) == set()
    assert match(hashed, reg, None, ("_type", "Patient,Practitioner"), ("identifier", "SECRET1"),
                 hasher=h) == {"hp", "hd"}


def test_blind_index_string_prefix_is_equality(hashed: Db, reg: SearchRegistry) -> None:
    h = TaggingHasher()
    assert match(hashed, reg, "Patient", ("family", "BLACK"), hasher=h) == {"hp"}
    assert match(hashed, reg, "Patient", ("family", "lack"), hasher=h) == set()
    with pytest.raises(InvalidSearch) as info:
        match(hashed, reg, "Patient", ("family:contains", "lack"), hasher=h)
    assert info.value.expression == ["family:contains"]


# -- query plans ---------------------------------------------------------------------------------

def test_sqlite_plan_uses_the_lookup_indexes(reg: SearchRegistry) -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    request = parse_search(reg, "Patient", [("identifier", "x|y"), ("name", "smi")], now=NOW)
    sql = match_query(reg, request).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_idx_token_lookup" in plan
    assert "ix_idx_string_lookup (rtype=? AND param=? AND value>? AND value<?)" in plan
    engine.dispose()


def test_postgres_plan_uses_semi_joins(db: Db, reg: SearchRegistry) -> None:
    engine, _ = db
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    request = parse_search(reg, "Observation", [("patient", "p1"), ("code", "http://loinc.org|8480-6"),
                                                ("status:not", "final"), ("_sort", "-date")], now=NOW)
    sql = match_query(reg, request).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_idx_reference_lookup" in plan or "ix_idx_token_lookup" in plan
