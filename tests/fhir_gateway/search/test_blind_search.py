"""Search on blind indexes answers exactly what plaintext search answers, wherever it answers at all.

A differential test: the same resources go into a server with plaintext indexes (SQLite) and one with
:class:`BlindIndexHasher` indexes (SQLite and PostgreSQL); every supported query must match the same ids.
Then the compiler's handling of searches over several types that store a parameter differently.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from fhir_gateway.app import create_app
from fhir_gateway.crypto.blind_index import BlindIndexHasher, load_policy
from fhir_gateway.errors import InvalidSearch
from fhir_gateway.search.compile import count_query, match_query
from fhir_gateway.search.hashing import IndexHasher
from fhir_gateway.search.parse import parse_search
from fhir_gateway.search.registry import default_registry
from fhir_gateway.storage.tables import resource
from tests.fhir_gateway.conftest import Fhir, make_settings

FAMILIES = ["Smith", "Smithers", "Smyth", "Schmidt", "Ó'Brien", "O'Brian", "de la Cruz", "DE LA  CRUZ", "Nguyễn",
            "Ng", "Müller", "Mueller"]
GIVENS = ["Ann", "Anna", "Annabel", "José", "Jose", "Li", "Zoë"]
DATES = ["1974", "1974-12", "1974-12-25", "1974-12-31", "1975-01-01", "2000-02-29", "2000-02", "1899-07-04"]
SYSTEMS = ["urn:mrn", "urn:ssn"]


def dataset() -> list[dict[str, Any]]:
    rnd = random.Random(20240519)
    out: list[dict[str, Any]] = []
    for i in range(40):
        rtype = "Practitioner" if i % 5 == 4 else "Patient"
        body: dict[str, Any] = {"resourceType": rtype, "id": f"r{i}"}
        if i % 7:
            body["name"] = [{"family": rnd.choice(FAMILIES), "given": rnd.sample(GIVENS, rnd.randint(1, 2))}]
        if i % 3 == 0:
            body["name"] = [*body.get("name", []), {"text": f"{rnd.choice(GIVENS)} {rnd.choice(FAMILIES)}"}]
        if i % 4:
            body["identifier"] = [{"system": rnd.choice(SYSTEMS), "value": f"ID-{rnd.randint(1, 6)}"}]
        if i % 2:
            body["telecom"] = [{"system": "phone", "value": f"555-{rnd.randint(1, 4)}"}]
        if rtype == "Patient" and i % 6:
            body["birthDate"] = rnd.choice(DATES)
            body["gender"] = rnd.choice(["male", "female"])
        if i % 5 == 1:
            body["address"] = [{"line": [f"{rnd.randint(1, 3)} Elm Street"], "city": rnd.choice(["Boston", "Bos"]),
                                "postalCode": rnd.choice(["02134", "02139", "0213"])}]
        out.append(body)
    out.append({"resourceType": "Organization", "id": "org1", "name": "Smith Clinic"})
    out.append({"resourceType": "Organization", "id": "org2", "name": "Anna's Hospital"})
    return out


def queries() -> list[str]:
    found: list[str] = []
    for family in ["smith", "Ó'Brien", "de la cruz", "nguyen", "müller", "mueller"]:
        found += [f"Patient?family={family[:n]}" for n in range(1, len(family) + 1)]
    found += [f"Patient?name={v}" for v in ["s", "sm", "SMI", "smithe", "ann", "anna", "jose", "josé", "zoe",
                                              "ann smith", "li ng", "de la", "DE LA CRUZ", "o'b", "ob", "x"]]
    found += [f"Patient?family:exact={v}" for v in ["Smith", "smith", "DE LA  CRUZ", "de la Cruz", "Müller", "Ó'Brien"]]
    found += [f"Patient?given:exact={v}" for v in ["Ann", "ann", "José", "Jose"]]
    found += [f"Patient?birthdate={d}" for d in ["1974", "1974-12", "1974-12-25", "1975", "1975-01", "2000-02",
                                                  "2000-02-29", "1899", "1899-07-04", "eq1974-12", "1974,2000"]]
    found += [f"Patient?identifier={v}" for v in ["ID-1", "urn:mrn|ID-2", "urn:ssn|ID-3", "|ID-1", "urn:mrn|",
                                                   "ID-1,ID-2", "id-1"]]
    found += ["Patient?identifier:not=ID-1", "Patient?identifier:missing=true", "Patient?birthdate:missing=true",
              "Patient?birthdate:missing=false", "Patient?name:missing=true", "Patient?telecom=phone|555-1",
              "Patient?phone=555-2", "Patient?phone:not=555-2", "Patient?address=1 elm", "Patient?address=bos",
              "Patient?address-city=bos", "Patient?address-city:exact=Bos", "Patient?address-postalcode=0213",
              "Patient?address-postalcode=02134", "Patient?address-postalcode:exact=0213",
              "Patient?gender=female&family=sm", "Patient?birthdate=1974&name=ann",
              "Practitioner?name=sm", "Practitioner?identifier=ID-1", "Practitioner?family:exact=Smith",
              "Organization?name=smith", "Organization?name:contains=clinic"]
    return found


def load(fhir: Fhir) -> None:
    for body in dataset():
        resp = fhir.put(f"{body['resourceType']}/{body['id']}", body)
        assert resp.status_code == 201, resp.get_data(as_text=True)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'plain.sqlite3'}", blind_indexes=False))
    load(Fhir(app.test_client()))
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture
def blind(database_url: str) -> Iterator[Flask]:
    app = create_app(make_settings(database_url), hasher=BlindIndexHasher(b"\x07" * 32, load_policy()))
    load(Fhir(app.test_client()))
    yield app
    app.extensions["telehub.fhir"].repository.engine.dispose()


def test_blind_search_matches_plaintext_search(plain: Flask, blind: Flask) -> None:
    expected, actual = Fhir(plain.test_client()), Fhir(blind.test_client())
    nonempty = 0
    for query in queries():
        want = expected.search_ids(query + "&_count=100")
        assert actual.search_ids(query + "&_count=100") == want, query
        nonempty += bool(want)
    assert nonempty > 60


def system_search(app: Flask, *params: tuple[str, str]) -> set[str]:
    services = app.extensions["telehub.fhir"]
    registry, hasher = services.registry, services.search.hasher
    request = parse_search(registry, None, list(params))
    with services.repository.engine.connect() as conn:
        pks = set(conn.execute(match_query(registry, request, hasher)).scalars())
        assert conn.execute(count_query(registry, request, hasher)).scalar_one() == len(pks)
        return set(conn.execute(select(resource.c.fid).where(resource.c.pk.in_(pks))).scalars())


def test_a_search_across_types_that_store_a_parameter_differently(plain: Flask, blind: Flask) -> None:
    """Patient and Practitioner names are blinded (each under its own digests), Organization names are not."""
    for params in [
        [("_type", "Patient,Practitioner,Organization"), ("name", "smith")],
        [("_type", "Patient,Organization"), ("name", "ann")],
        [("_type", "Patient,Practitioner"), ("identifier", "ID-1")],
        [("_type", "Patient,Practitioner"), ("identifier:not", "urn:mrn|ID-1")],
        [("_type", "Patient,Organization"), ("name:missing", "true")],
        [("_type", "Patient,Practitioner,Organization"), ("name:exact", "Smith Clinic")],
    ]:
        want = system_search(plain, *params)
        assert system_search(blind, *params) == want, params
        assert want, params
    with pytest.raises(InvalidSearch) as info:
        system_search(blind, ("_type", "Patient,Organization"), ("name:contains", "mit"))
    assert info.value.expression == ["name:contains"] and info.value.status == 400
    assert system_search(plain, ("_type", "Patient,Organization"), ("name:contains", "mit"))


@pytest.mark.parametrize(("params", "label"), [
    ([("name:contains", "zyzzo")], "name:contains"),
    ([("identifier:text", "zyzzo")], "identifier:text"),
    ([("birthdate", "gt1970")], "birthdate"),
    ([("birthdate", "ap1970")], "birthdate"),
    ([("birthdate", "1970-01-01T00:00:00Z")], "birthdate"),
    ([("death-date", "le2000")], "death-date"),
    ([("_sort", "-birthdate")], "_sort"),
    ([("_sort", "address-city")], "_sort"),
    ([("_has:Observation:subject:status", "final"), ("_sort", "name")], "_sort"),
])
def test_refusals_name_the_parameter(params: list[tuple[str, str]], label: str) -> None:
    registry = default_registry()
    hasher: IndexHasher = BlindIndexHasher(b"\x07" * 32, load_policy())
    request = parse_search(registry, "Patient", params)
    with pytest.raises(InvalidSearch) as info:
        match_query(registry, request, hasher)
    assert info.value.expression == [label] and "blind index" in info.value.diagnostics
    assert "1970" not in info.value.diagnostics and "zyzzo" not in info.value.diagnostics


def test_plain_and_protect_only_hashers_compile_as_before() -> None:
    registry = default_registry()
    request = parse_search(registry, "Patient", [("name", "smi"), ("birthdate", "gt1970"), ("_sort", "family")])
    blind = str(match_query(registry, parse_search(registry, "Patient", [("name", "smi")]),
                            BlindIndexHasher(b"\x07" * 32, load_policy())))
    plain = str(match_query(registry, request))
    assert "LIKE" in plain and "idx_date" in plain
    assert "LIKE" not in blind and "idx_string_1.value = " in blind
