"""BlindIndexHasher, the blinded-parameter policy, and the keyless helpers the writer and the compiler share."""
from __future__ import annotations

import base64
import hmac
import random
import re
from pathlib import Path

import pytest

from fhir_gateway.crypto.blind_index import (
    DIGEST_BYTES,
    BlindIndexHasher,
    BlindPolicy,
    PolicyError,
    load_policy,
)
from fhir_gateway.search import extract
from fhir_gateway.search.hashing import (
    STRING_VALUE_MAX,
    BlindIndexer,
    DigestKind,
    IndexHasher,
    PlainIndexHasher,
    blind_indexer,
    calendar_key,
    calendar_keys,
    string_prefixes,
)
from fhir_gateway.search.index_rows import DateRow, IndexRows, QuantityRow, StringRow, TokenRow
from fhir_gateway.search.registry import default_registry
from fhir_gateway.search.values import MAX_TIME, MIN_TIME, date_range, normalize_string
from fhir_gateway.storage.index_writer import blind_rows
from fhir_gateway.storage.tables import idx_string

KEY = b"\x01" * 32
DOC = Path(__file__).resolve().parents[3] / "docs" / "blind-indexes.md"


@pytest.fixture(scope="module")
def policy() -> BlindPolicy:
    return load_policy()


@pytest.fixture(scope="module")
def hasher(policy: BlindPolicy) -> BlindIndexHasher:
    return BlindIndexHasher(KEY, policy)


# -- the hasher -------------------------------------------------------------------------------------

def test_digests_are_keyed_truncated_and_deterministic(hasher: BlindIndexHasher, policy: BlindPolicy) -> None:
    d = hasher.digest("Patient", "name", "prefix", "smi")
    assert d == hasher.digest("Patient", "name", "prefix", "smi")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", d)
    assert len(base64.urlsafe_b64decode(d + "==")) == DIGEST_BYTES
    assert d != BlindIndexHasher(b"\x02" * 32, policy).digest("Patient", "name", "prefix", "smi")
    assert d != hasher.digest("Patient", "name", "prefix", "smit")


def test_digests_are_standard_hmac_sha256(hasher: BlindIndexHasher) -> None:
    """The precomputed-state HMAC equals the textbook construction, subkey and all."""
    fields = (b"Patient", b"name", b"exact")
    domain = b"telehub/blind-index/v1" + b"".join(len(f).to_bytes(2, "big") + f for f in fields)
    subkey = hmac.digest(KEY, domain, "sha256")
    for value in ["Smith", "", "Nguyễn Ó'Brien", "x" * 300, "\U0001f600"]:
        mac = hmac.digest(subkey, value.encode(), "sha256")[:DIGEST_BYTES]
        assert hasher.digest("Patient", "name", "exact", value) == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_prefix_digests_are_the_digests_of_each_prefix(hasher: BlindIndexHasher) -> None:
    for value in ["smith", "nguyễn van a", "z" * 300, ""]:
        assert hasher.prefix_digests("Patient", "name", value) == [
            hasher.digest("Patient", "name", "prefix", p) for p in string_prefixes(value)]


def test_digests_are_domain_separated(hasher: BlindIndexHasher) -> None:
    """The same value under another type, parameter or kind gives an unrelated digest."""
    domains: list[tuple[str, str, DigestKind]] = [
        ("Patient", "name", "prefix"), ("Practitioner", "name", "prefix"), ("Patient", "family", "prefix"),
        ("Patient", "name", "exact"), ("Patient", "name", "token"), ("Patient", "name", "date"),
        ("Patient", "phone", "token"), ("Patient", "identifier", "token")]
    assert len({hasher.digest(t, p, k, "5551234") for t, p, k in domains}) == len(domains)
    # length-prefixed domains: shifting characters between fields does not collide
    assert hasher.digest("Patient", "name", "token", "x") != hasher.digest("Patientn", "ame", "token", "x")


def test_protect_is_the_token_digest_for_blinded_parameters_only(hasher: BlindIndexHasher) -> None:
    assert hasher.protect("Patient", "identifier", "MRN-1") == hasher.digest("Patient", "identifier", "token", "MRN-1")
    assert hasher.protect("Observation", "subject:identifier", "MRN-1") != "MRN-1"
    assert hasher.protect("Observation", "code", "8480-6") == "8480-6"
    assert hasher.protect("Patient", "gender", "female") == "female"


def test_the_hasher_implements_both_seams(hasher: BlindIndexHasher) -> None:
    assert isinstance(hasher, IndexHasher) and isinstance(hasher, BlindIndexer)
    assert blind_indexer(hasher) is hasher
    assert blind_indexer(PlainIndexHasher()) is None


def test_the_key_is_checked_and_never_shown(policy: BlindPolicy) -> None:
    with pytest.raises(ValueError, match="32"):
        BlindIndexHasher(b"short", policy)
    with pytest.raises(ValueError):
        BlindIndexHasher("k" * 32, policy)  # type: ignore[arg-type]
    secret = b"S3cr3tK3y" * 4
    hasher = BlindIndexHasher(secret, policy)
    assert "S3cr3t" not in repr(hasher) and "S3cr3t" not in str(vars(hasher).get("policy"))


# -- the policy -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rtype", "param", "mode"), [
    ("Patient", "name", "blind"), ("Patient", "family", "blind"), ("Patient", "given", "blind"),
    ("Patient", "identifier", "blind"), ("Patient", "telecom", "blind"), ("Patient", "phone", "blind"),
    ("Patient", "email", "blind"), ("Patient", "address", "blind"), ("Patient", "address-city", "blind"),
    ("Patient", "address-postalcode", "blind"), ("Patient", "birthdate", "blind"), ("Patient", "death-date", "blind"),
    ("Patient", "phonetic", "omit"), ("Practitioner", "phonetic", "omit"),
    ("RelatedPerson", "name", "blind"), ("RelatedPerson", "birthdate", "blind"), ("Person", "telecom", "blind"),
    ("PractitionerRole", "phone", "blind"), ("Observation", "identifier", "blind"), ("Coverage", "identifier", "blind"),
    ("Observation", "subject:identifier", "blind"), ("Encounter", "patient:identifier", "blind"),
    ("Device", "udi-carrier", "blind"), ("AuditEvent", "address", "blind"),
    ("Patient", "gender", None), ("Patient", "address-state", None), ("Patient", "address-country", None),
    ("Patient", "race", None), ("Patient", "general-practitioner", None), ("Observation", "value-string", None),
    ("Observation", "code", None), ("Observation", "date", None), ("Organization", "name", None),
    ("Organization", "address", None), ("Location", "address-postalcode", None), ("Device", "udi-di", None),
    ("Observation", "code-value-string$1", None), ("Patient", "name$0", None),
])
def test_policy_modes(policy: BlindPolicy, rtype: str, param: str, mode: str | None) -> None:
    assert policy.mode(rtype, param) == mode
    assert (policy.reason(rtype, param) is not None) == (mode is not None)


def test_every_policy_parameter_is_documented(policy: BlindPolicy) -> None:
    doc = DOC.read_text(encoding="utf-8")
    for entry in policy.entries:
        for code in entry.params:
            assert f"`{code}`" in doc, code
        for rtype in entry.types:
            assert rtype == "*" or rtype in doc, rtype
    blinded = policy.blinded(default_registry())
    assert "name" in blinded["Patient"] and "*:identifier" in blinded["Observation"]


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('version = 2\n', "version"),
    ('version = 1\nextra = 1\n', "unknown keys"),
    ('version = 1\n[[blind]]\ntypes = ["Patient"]\nparams = ["nmae"]\nreason = "x"\n', "nmae"),
    ('version = 1\n[[blind]]\ntypes = ["Patinet"]\nparams = ["name"]\nreason = "x"\n', "Patinet"),
    ('version = 1\n[[blind]]\ntypes = ["Patient", "Organization"]\nparams = ["family"]\nreason = "x"\n',
     "Organization"),
    ('version = 1\n[[blind]]\ntypes = ["*"]\nparams = ["nosuch"]\nreason = "x"\n', "nosuch"),
    ('version = 1\n[[blind]]\ntypes = ["Patient"]\nparams = ["general-practitioner"]\nreason = "x"\n', "reference"),
    ('version = 1\n[[blind]]\ntypes = ["Patient"]\nparams = ["name"]\nreason = " "\n', "reason"),
    ('version = 1\n[[blind]]\ntypes = ["Patient"]\nparams = []\nreason = "x"\n', "non-empty"),
    ('version = 1\n[[blind]]\ntypes = ["Patient"]\nparams = ["name"]\n', "reason"),
    ('version = 1\n[[blind]\n', "policy"),
])
def test_a_bad_policy_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(write_policy(tmp_path, text))


def test_omit_wins_over_blind(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, (
        'version = 1\n'
        '[[blind]]\ntypes = ["*"]\nparams = ["name"]\nreason = "names"\n'
        '[[omit]]\ntypes = ["Patient"]\nparams = ["name"]\nreason = "not searched"\n')))
    assert policy.mode("Patient", "name") == "omit"
    assert policy.mode("Organization", "name") == "blind"
    assert policy.mode("Patient", "subject:identifier") is None


# -- keyless helpers --------------------------------------------------------------------------------

def test_string_prefixes_are_cut_to_the_column_width() -> None:
    assert string_prefixes("smi") == ["s", "sm", "smi"]
    assert string_prefixes("") == []
    long = "a" * 400
    assert len(string_prefixes(long)) == STRING_VALUE_MAX
    assert STRING_VALUE_MAX == extract.STRING_VALUE_MAX == getattr(idx_string.c.value.type, "length", None)


@pytest.mark.parametrize(("value", "keys"), [
    ("1974", ["1974"]),
    ("1974-12", ["1974", "1974-12"]),
    ("1974-12-25", ["1974", "1974-12", "1974-12-25"]),
    ("1974-12-25T10:30:00Z", ["1974", "1974-12", "1974-12-25"]),
    ("1974-12-31T23:00:00-05:00", ["1975", "1975-01", "1975-01-01"]),  # UTC, as range search sees it
    ("0001-01-01", ["0001", "0001-01", "0001-01-01"]),
])
def test_calendar_keys(value: str, keys: list[str]) -> None:
    assert calendar_keys(*date_range(value)) == keys


def test_calendar_keys_of_ranges() -> None:
    low, _ = date_range("1974-12-02")
    _, high = date_range("1974-12-20")
    assert calendar_keys(low, high) == ["1974", "1974-12"]
    assert calendar_keys(date_range("1974-11")[0], date_range("1974-12")[1]) == ["1974"]
    assert calendar_keys(date_range("1974")[0], date_range("1975")[1]) == []
    assert calendar_keys(MIN_TIME, MAX_TIME) == []


@pytest.mark.parametrize(("value", "key"), [
    ("1974", "1974"), ("1974-12", "1974-12"), ("1974-02", "1974-02"), ("2000-02", "2000-02"),
    ("2000-02-29", "2000-02-29"), ("1974-12-25", "1974-12-25"), ("1974-12-25T10:00", None),
    ("1974-12-25T00:00:00Z", None), ("1974-12-25T00:00:00+00:00", None),
])
def test_calendar_key_of_a_search_value(value: str, key: str | None) -> None:
    assert calendar_key(*date_range(value)) == key


def test_calendar_keys_agree_with_range_semantics() -> None:
    """``eq`` on a unit matches a row iff the row's range lies inside the unit — what the range index does."""
    rnd = random.Random(7)
    texts: list[str] = []
    for _ in range(300):
        y, m, d = rnd.choice([1899, 1974, 1975, 2000]), rnd.randint(1, 12), rnd.randint(1, 28)
        texts += [f"{y}", f"{y}-{m:02d}", f"{y}-{m:02d}-{d:02d}",
                  f"{y}-{m:02d}-{d:02d}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00"
                  f"{rnd.choice(['Z', '+05:00', '-11:00'])}"]
    rows = [date_range(t) for t in texts]
    rows += [(a[0], b[1]) for a, b in zip(rows[::7], rows[3::7], strict=False) if a[0] <= b[1]]  # periods
    searches = {t for t in texts if "T" not in t}
    for search in searches:
        s_low, s_high = date_range(search)
        key = calendar_key(s_low, s_high)
        assert key == search
        for low, high in rows:
            assert (key in calendar_keys(low, high)) == (low >= s_low and high <= s_high), (search, low, high)


# -- the writer's row rewriting -------------------------------------------------------------------------

def test_blind_rows(hasher: BlindIndexHasher) -> None:
    d = hasher.digest
    value = normalize_string("Smith")
    rows = IndexRows(
        token=[TokenRow("identifier", "urn:mrn", "MRN-1", "medical record number"),
               TokenRow("gender", None, "female"), TokenRow("identifier", "urn:x", None, "type only")],
        string=[StringRow("family", value, "Smith"), StringRow("name", value, "Smith"),
                StringRow("name", normalize_string("Smithers"), "Smithers"), StringRow("phonetic", value, "Smith"),
                StringRow("address-state", "ma", "MA")],
        date=[DateRow("birthdate", *date_range("1974-12-25")), DateRow("death-date", *date_range("1974")),
              DateRow("birthdate", date_range("1974")[0], date_range("1975")[1])],
        quantity=[QuantityRow("x", 1.0, 0.5, 1.5)],
    )
    out = blind_rows(hasher, "Patient", rows)
    assert out.quantity is rows.quantity
    assert TokenRow("identifier", "urn:mrn", d("Patient", "identifier", "token", "MRN-1"), None) in out.token
    assert TokenRow("identifier", "urn:x", None, None) in out.token
    assert TokenRow("gender", None, "female") in out.token
    family = [r for r in out.string if r.param == "family"]
    assert [r.value for r in family] == [d("Patient", "family", "prefix", value[:n]) for n in range(1, 6)]
    assert [r.exact for r in family] == ["", "", "", "", d("Patient", "family", "exact", "Smith")]
    names = [r for r in out.string if r.param == "name"]
    assert len(names) == len("smithers") + 1  # the shared prefixes are written once; both full values kept
    assert not [r for r in out.string if r.param == "phonetic"]
    assert StringRow("address-state", "ma", "MA") in out.string
    assert out.date == []
    dates = {(r.param, r.code) for r in out.token if r.param in ("birthdate", "death-date")}
    assert dates == {("birthdate", d("Patient", "birthdate", "date", k)) for k in ("1974", "1974-12", "1974-12-25")} \
        | {("death-date", d("Patient", "death-date", "date", "1974")), ("birthdate", None)}


def test_blind_rows_leave_an_unblinded_resource_alone(hasher: BlindIndexHasher) -> None:
    rows = IndexRows(token=[TokenRow("code", "http://loinc.org", "8480-6", "systolic")],
                     date=[DateRow("date", *date_range("2020"))])
    assert blind_rows(hasher, "Observation", rows) is rows
