"""parse_search: query parameters → typed SearchRequest (no database)."""
from __future__ import annotations

import pytest

from fhir_gateway.errors import InvalidSearch, UnknownResourceType
from fhir_gateway.search.parse import (
    ChainCriterion,
    CompositeValue,
    Criterion,
    DateValue,
    HasCriterion,
    IncludeSpec,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchRequest,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    parse_search,
)
from fhir_gateway.search.query_values import effective_targets, split_escaped, unescape
from fhir_gateway.search.registry import SearchRegistry, default_registry
from fhir_gateway.search.values import date_range, instant_to_micros

DAY = 86_400 * 1_000_000
NOW = date_range("2024-01-01T00:00:00Z")[0]


@pytest.fixture(scope="module")
def reg() -> SearchRegistry:
    return default_registry()


def parse(reg: SearchRegistry, rtype: str | None, *params: tuple[str, str], **kw: object) -> SearchRequest:
    return parse_search(reg, rtype, list(params), now=NOW, **kw)  # type: ignore[arg-type]


def only(req: SearchRequest) -> Criterion:
    assert len(req.criteria) == 1
    crit = req.criteria[0]
    assert isinstance(crit, Criterion)
    return crit


def error(reg: SearchRegistry, rtype: str | None, *params: tuple[str, str], **kw: object) -> InvalidSearch:
    with pytest.raises(InvalidSearch) as info:
        parse(reg, rtype, *params, **kw)
    return info.value


# -- escaping ------------------------------------------------------------------------------------

def test_split_escaped_keeps_escapes_for_the_next_level() -> None:
    assert split_escaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert split_escaped(r"a\$b$c\|d", "$") == [r"a\$b", r"c\|d"]
    assert split_escaped("s|c|x", "|", 1) == ["s", "c|x"]
    assert unescape(r"a\,b\$c\|d\\e") == r"a,b$c|d\e"


# -- token ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("8480-6", TokenValue(code="8480-6")),
    ("http://loinc.org|8480-6", TokenValue(system="http://loinc.org", code="8480-6")),
    ("|8480-6", TokenValue(code="8480-6", no_system=True)),
    ("http://loinc.org|", TokenValue(system="http://loinc.org")),
    (r"http://x|a\|b", TokenValue(system="http://x", code="a|b")),
    (r"a\,b", TokenValue(code="a,b")),
])
def test_token_forms(reg: SearchRegistry, raw: str, expected: TokenValue) -> None:
    assert only(parse(reg, "Observation", ("code", raw))).values == (expected,)


def test_token_or_and(reg: SearchRegistry) -> None:
    req = parse(reg, "Observation", ("status", "final,amended"), ("status", "final"))
    assert [c.values for c in req.criteria if isinstance(c, Criterion)] == [
        (TokenValue(code="final"), TokenValue(code="amended")), (TokenValue(code="final"),)]


def test_token_not_and_text(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("status:not", "final")))
    assert crit.modifier == "not" and crit.values == (TokenValue(code="final"),)
    crit = only(parse(reg, "Observation", ("code:text", "Systolic  BLOOD")))
    assert crit.values == (TextValue("systolic blood"),)


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below", "of-type"])
def test_token_terminology_modifiers_are_not_supported(reg: SearchRegistry, modifier: str) -> None:
    exc = error(reg, "Observation", (f"code:{modifier}", "http://x"))
    assert exc.code == "not-supported" and exc.expression == [f"code:{modifier}"]


def test_empty_token_is_invalid(reg: SearchRegistry) -> None:
    assert error(reg, "Observation", ("code", "|")).code == "invalid"


# -- string --------------------------------------------------------------------------------------

def test_string_is_normalised_and_keeps_exact(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Patient", ("name", "Zoë  Smith")))
    assert crit.values == (StringValue("zoe smith", "Zoë  Smith"),)
    assert only(parse(reg, "Patient", ("name:exact", "Smith"))).modifier == "exact"
    assert only(parse(reg, "Patient", ("name:contains", "mit"))).modifier == "contains"


def test_string_rejects_token_modifiers(reg: SearchRegistry) -> None:
    assert error(reg, "Patient", ("name:not", "x")).code == "not-supported"


# -- date ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
def test_date_prefixes(reg: SearchRegistry, prefix: str) -> None:
    crit = only(parse(reg, "Observation", ("date", f"{prefix}2020-03")))
    low, high = date_range("2020-03")
    assert crit.values == (DateValue(prefix, low, high),)  # type: ignore[arg-type]


def test_date_without_prefix_is_eq_and_plus_sign_may_arrive_as_space(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("date", "2020-01-15T11:00:00 01:00")))
    assert crit.values == (DateValue("eq", *date_range("2020-01-15T11:00:00+01:00")),)


def test_date_ap_widens_by_a_tenth_of_the_distance_to_now(reg: SearchRegistry) -> None:
    low, high = date_range("2014-01-01")  # about ten years before NOW
    value = only(parse(reg, "Observation", ("date", "ap2014-01-01"))).values[0]
    assert isinstance(value, DateValue) and value.prefix == "ap"
    widen = low - value.low
    assert widen == value.high - high
    assert 360 * DAY < widen < 370 * DAY


def test_date_ap_widens_at_least_one_day(reg: SearchRegistry) -> None:
    low, _ = date_range("2024-01-01")
    value = only(parse(reg, "Observation", ("date", "ap2024-01-01"))).values[0]
    assert isinstance(value, DateValue) and low - value.low == DAY


def test_date_ap_defaults_to_the_current_clock(reg: SearchRegistry) -> None:
    req = parse_search(reg, "Observation", [("date", "ap2000")])
    assert isinstance(req.criteria[0], Criterion)


@pytest.mark.parametrize("raw", ["2020-13", "yesterday", "xx2020", "2020-01-01T25:00", "ge"])
def test_bad_dates_are_invalid_and_name_the_parameter_not_the_value(reg: SearchRegistry, raw: str) -> None:
    exc = error(reg, "Patient", ("birthdate", raw))
    assert exc.code == "invalid" and exc.expression == ["birthdate"]
    assert raw not in exc.diagnostics


def test_last_updated(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("_lastUpdated", "gt2020-01-01")))
    assert crit.param.code == "_lastUpdated" and crit.values == (DateValue("gt", *date_range("2020-01-01")),)


# -- number / quantity ---------------------------------------------------------------------------

def test_number_ranges_and_prefixes(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "RiskAssessment", ("probability", "gt0.8,100,1e2")))
    assert crit.values == (NumberValue("gt", 0.8, 0.75, 0.85), NumberValue("eq", 100.0, 99.5, 100.5),
                           NumberValue("eq", 100.0, 50.0, 150.0))


@pytest.mark.parametrize("raw", ["abc", "gt", "1.2.3", "zz5", "NaN", "Infinity"])
def test_bad_numbers(reg: SearchRegistry, raw: str) -> None:
    assert error(reg, "RiskAssessment", ("probability", raw)).code == "invalid"


def test_quantity_forms(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("value-quantity", "le5.4|http://unitsofmeasure.org|mg,5.4||mg,5.4")))
    n = NumberValue("le", 5.4, 5.35, 5.45)
    assert crit.values[0] == QuantityValue(n, "http://unitsofmeasure.org", "mg")
    assert crit.values[1] == QuantityValue(NumberValue("eq", 5.4, 5.35, 5.45), None, "mg")
    assert crit.values[2] == QuantityValue(NumberValue("eq", 5.4, 5.35, 5.45))
    assert error(reg, "Observation", ("value-quantity", "5|mg")).code == "invalid"


# -- uri -----------------------------------------------------------------------------------------

def test_uri_modifiers(reg: SearchRegistry) -> None:
    assert only(parse(reg, "ValueSet", ("url:below", "http://acme.org/fhir"))).values == (
        UriValue("http://acme.org/fhir"),)
    assert only(parse(reg, "ValueSet", ("url:above", "http://acme.org/fhir/ValueSet/1"))).modifier == "above"
    assert only(parse(reg, "Patient", ("_profile", "http://x/sd"))).param.type == "uri"
    assert only(parse(reg, "Patient", ("_source", "http://x/src"))).param.type == "uri"


# -- reference -----------------------------------------------------------------------------------

def test_reference_forms(reg: SearchRegistry) -> None:
    values = only(parse(reg, "Observation", ("subject", "Patient/123,123,Patient/123/_history/2"))).values
    assert values == (ReferenceValue("Patient", "123"), ReferenceValue(None, "123"),
                      ReferenceValue("Patient", "123", version="2"))


def test_bare_id_and_typed_reference_agree_for_patient(reg: SearchRegistry) -> None:
    a = only(parse(reg, "Observation", ("patient", "123"))).values
    b = only(parse(reg, "Observation", ("patient", "Patient/123"))).values
    assert a == b == (ReferenceValue("Patient", "123"),)


def test_effective_targets_follow_resolve_is(reg: SearchRegistry) -> None:
    patient = reg.get("Observation", "patient")
    assert patient is not None and patient.targets == ("Patient", "Group")
    assert effective_targets(patient) == ("Patient",)
    subject = reg.get("Observation", "subject")
    assert subject is not None and effective_targets(subject) == subject.targets


def test_absolute_and_canonical_references(reg: SearchRegistry) -> None:
    values = only(parse(reg, "Observation", ("subject", "http://other.org/fhir/Patient/1"))).values
    assert values == (ReferenceValue(url="http://other.org/fhir/Patient/1"),)
    values = only(parse(reg, "QuestionnaireResponse", ("questionnaire", "http://q.org/Questionnaire/q|2.0"))).values
    assert values == (ReferenceValue(url="http://q.org/Questionnaire/q", version="2.0"),)


def test_reference_under_this_servers_base_url_is_relative(reg: SearchRegistry) -> None:
    req = parse(reg, "Observation", ("subject", "https://hub.example/fhir/Patient/1"),
                base_url="https://hub.example/fhir/")
    assert only(req).values == (ReferenceValue("Patient", "1"),)


def test_reference_type_modifier(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("subject:Patient", "123")))
    assert crit.modifier == "Patient" and crit.values == (ReferenceValue("Patient", "123"),)
    assert error(reg, "Observation", ("subject:Patient", "Group/1")).code == "invalid"
    assert error(reg, "Observation", ("subject:Practitioner", "1")).code == "invalid"


@pytest.mark.parametrize("raw", ["Practitioner/1", "Foo/1", "a/b/c", "bad id!"])
def test_bad_references(reg: SearchRegistry, raw: str) -> None:
    assert error(reg, "Observation", ("patient", raw)).code == "invalid"


def test_reference_identifier_is_a_token(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("subject:identifier", "http://hosp/mrn|123")))
    assert crit.modifier == "identifier" and crit.values == (TokenValue("http://hosp/mrn", "123"),)


# -- composite -----------------------------------------------------------------------------------

def test_composite_parses_each_component_by_its_type(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Observation", ("code-value-quantity", "http://loinc.org|8480-6$gt100")))
    assert crit.values == (CompositeValue((
        TokenValue("http://loinc.org", "8480-6"),
        QuantityValue(NumberValue("gt", 100.0, 99.5, 100.5)),
    )),)


def test_composite_needs_every_component(reg: SearchRegistry) -> None:
    assert error(reg, "Observation", ("code-value-quantity", "8480-6")).code == "invalid"
    assert error(reg, "Observation", ("code-value-quantity", "8480-6$1$2")).code == "invalid"


# -- :missing ------------------------------------------------------------------------------------

def test_missing(reg: SearchRegistry) -> None:
    assert only(parse(reg, "Patient", ("birthdate:missing", "true"))).missing is True
    assert only(parse(reg, "Patient", ("birthdate:missing", "false"))).missing is False
    assert error(reg, "Patient", ("birthdate:missing", "yes")).code == "invalid"
    assert error(reg, "Patient", ("_id:missing", "true")).code == "not-supported"


def test_id(reg: SearchRegistry) -> None:
    crit = only(parse(reg, "Patient", ("_id", "a,b")))
    assert crit.param.code == "_id" and crit.values == (TokenValue(code="a"), TokenValue(code="b"))
    assert only(parse(reg, "Patient", ("_id:not", "a"))).modifier == "not"
    assert error(reg, "Patient", ("_id:text", "a")).code == "not-supported"


# -- chaining and _has ---------------------------------------------------------------------------

def test_chain_with_type(reg: SearchRegistry) -> None:
    crit = parse(reg, "Observation", ("subject:Patient.name", "peter")).criteria[0]
    assert isinstance(crit, ChainCriterion) and crit.param.code == "subject"
    [(target, inner)] = crit.links
    assert target == "Patient" and isinstance(inner, Criterion) and inner.param.code == "name"
    assert inner.values == (StringValue("peter", "peter"),)
    assert crit.name == "subject:Patient.name"


def test_chain_without_type_tries_every_target_that_defines_the_parameter(reg: SearchRegistry) -> None:
    crit = parse(reg, "Observation", ("subject.name", "peter")).criteria[0]
    assert isinstance(crit, ChainCriterion)
    assert sorted(t for t, _ in crit.links) == ["Location", "Patient"]  # Group and Device have no 'name'


def test_chain_two_levels(reg: SearchRegistry) -> None:
    crit = parse(reg, "Observation", ("patient.organization.name", "acme")).criteria[0]
    assert isinstance(crit, ChainCriterion)
    [(target, inner)] = crit.links
    assert target == "Patient" and isinstance(inner, ChainCriterion)
    assert [t for t, _ in inner.links] == ["Organization"]


def test_chain_errors(reg: SearchRegistry) -> None:
    assert error(reg, "Observation", ("subject.nonesuch", "x")).code == "not-supported"
    assert error(reg, "Observation", ("status.name", "x")).code == "not-supported"
    assert error(reg, "Observation", ("subject:Nonesuch.name", "x")).code == "invalid"
    assert error(reg, "Observation", ("subject:Patient.birthdate", "notadate")).code == "invalid"
    exc = error(reg, "Observation", ("a.b.c.d.e", "x"))
    assert exc.expression == ["a.b.c.d.e"]


def test_chain_depth_is_bounded(reg: SearchRegistry) -> None:
    name = "patient." + ".".join(["organization.partof"] * 3) + ".name"
    assert error(reg, "Observation", (name, "x")).code == "not-supported"


def test_has(reg: SearchRegistry) -> None:
    crit = parse(reg, "Patient", ("_has:Observation:patient:code", "1234-5")).criteria[0]
    assert isinstance(crit, HasCriterion) and crit.source_type == "Observation" and crit.param.code == "patient"
    assert isinstance(crit.inner, Criterion) and crit.inner.values == (TokenValue(code="1234-5"),)


def test_nested_has(reg: SearchRegistry) -> None:
    crit = parse(reg, "Patient", ("_has:Observation:patient:_has:Provenance:target:agent", "Practitioner/1")
                 ).criteria[0]
    assert isinstance(crit, HasCriterion) and isinstance(crit.inner, HasCriterion)
    assert crit.inner.source_type == "Provenance"


@pytest.mark.parametrize(("name", "code"), [
    ("_has:Observation:patient", "invalid"),
    ("_has:Nonesuch:patient:code", "invalid"),
    ("_has:Observation:nonesuch:code", "not-supported"),
    ("_has:Observation:code:code", "not-supported"),
    ("_has:Observation:patient:nonesuch", "not-supported"),
])
def test_has_errors(reg: SearchRegistry, name: str, code: str) -> None:
    assert error(reg, "Patient", (name, "x")).code == code


def test_has_target_type_must_fit(reg: SearchRegistry) -> None:
    assert error(reg, "Organization", ("_has:Observation:patient:code", "x")).code == "invalid"


# -- unsupported, unknown, lenient ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["_text", "_content", "_query", "_filter", "_list", "_contained", "phonetic"])
def test_special_parameters_are_honestly_not_supported(reg: SearchRegistry, name: str) -> None:
    exc = error(reg, "Patient", (name, "x"))
    assert exc.code == "not-supported" and exc.status == 400 and exc.expression == [name]


def test_near_is_not_supported(reg: SearchRegistry) -> None:
    assert error(reg, "Location", ("near", "42|-71|10|km")).code == "not-supported"


def test_unknown_parameter(reg: SearchRegistry) -> None:
    exc = error(reg, "Patient", ("nonesuch", "secret-value"))
    assert exc.code == "not-supported" and exc.expression == ["nonesuch"]
    assert "secret-value" not in exc.diagnostics


def test_lenient_drops_unknown_but_not_malformed(reg: SearchRegistry) -> None:
    req = parse(reg, "Patient", ("nonesuch", "x"), ("name:in", "y"), ("_text", "z"), ("gender", "male"),
                lenient=True)
    assert req.ignored == ["nonesuch", "name:in", "_text"]
    assert [c.name for c in req.criteria] == ["gender"]
    assert error(reg, "Patient", ("birthdate", "notadate"), lenient=True).code == "invalid"


def test_empty_values_are_ignored(reg: SearchRegistry) -> None:
    req = parse(reg, "Patient", ("name", ""), ("_count", ""))
    assert req.criteria == [] and req.count is None


def test_unknown_resource_type(reg: SearchRegistry) -> None:
    with pytest.raises(UnknownResourceType):
        parse(reg, "Nonesuch")


# -- control parameters --------------------------------------------------------------------------

def test_count_is_capped(reg: SearchRegistry) -> None:
    assert parse(reg, "Patient", ("_count", "20")).count == 20
    assert parse(reg, "Patient", ("_count", "0")).count == 0
    assert parse(reg, "Patient", ("_count", "5000"), max_count=100).count == 100
    for bad in ("-1", "ten", "1.5"):
        assert error(reg, "Patient", ("_count", bad)).code == "invalid"


def test_repeated_single_valued_control_parameter(reg: SearchRegistry) -> None:
    assert error(reg, "Patient", ("_count", "1"), ("_count", "2")).code == "invalid"


def test_paging_parameters(reg: SearchRegistry) -> None:
    req = parse(reg, "Patient", ("_offset", "40"), ("_snapshot", "1234"))
    assert (req.offset, req.snapshot) == (40, 1234)


def test_total_summary_elements_format_pretty(reg: SearchRegistry) -> None:
    req = parse(reg, "Patient", ("_total", "accurate"), ("_summary", "count"), ("_elements", "id, name,birthDate"),
                ("_format", "json"), ("_pretty", "true"))
    assert (req.total, req.summary, req.elements) == ("accurate", "count", ("id", "name", "birthDate"))
    assert req.criteria == [] and req.ignored == []
    for summary in ("true", "text", "data", "false"):
        assert parse(reg, "Patient", ("_summary", summary)).summary == summary
    assert error(reg, "Patient", ("_total", "some")).code == "invalid"
    assert error(reg, "Patient", ("_summary", "yes")).code == "invalid"
    assert error(reg, "Patient", ("_elements", "a;b")).code == "invalid"


def test_sort(reg: SearchRegistry) -> None:
    req = parse(reg, "Observation", ("_sort", "status,-date,_id,-_lastUpdated"))
    assert [(k.code, k.descending) for k in req.sort] == [
        ("status", False), ("date", True), ("_id", False), ("_lastUpdated", True)]
    assert error(reg, "Observation", ("_sort", "nonesuch")).expression == ["_sort"]
    assert error(reg, "Observation", ("_sort", "code-value-quantity")).code == "not-supported"
    assert error(reg, "Observation", ("_sort", "status,")).code == "invalid"


def test_includes(reg: SearchRegistry) -> None:
    req = parse(reg, "CareTeam", ("_include", "CareTeam:participant:Practitioner"), ("_include", "CareTeam:*"),
                ("_include:iterate", "PractitionerRole:practitioner"), ("_include", "*"),
                ("_revinclude", "Provenance:target"), ("_revinclude:recurse", "Provenance:target:CareTeam"))
    assert req.include == [
        IncludeSpec("CareTeam", "participant", "Practitioner"),
        IncludeSpec("CareTeam", None),
        IncludeSpec("PractitionerRole", "practitioner", iterate=True),
        IncludeSpec(None, None),
    ]
    assert req.revinclude == [
        IncludeSpec("Provenance", "target", reverse=True),
        IncludeSpec("Provenance", "target", "CareTeam", iterate=True, reverse=True),
    ]


@pytest.mark.parametrize("raw", ["CareTeam", "Nonesuch:x", "CareTeam:status", "CareTeam:participant:Nonesuch",
                                 "CareTeam:participant:Observation", "a:b:c:d"])
def test_bad_includes(reg: SearchRegistry, raw: str) -> None:
    assert error(reg, "CareTeam", ("_include", raw)).code == "invalid"


def test_include_modifier_must_be_iterate(reg: SearchRegistry) -> None:
    assert error(reg, "CareTeam", ("_include:deep", "CareTeam:subject")).code == "not-supported"


# -- system-wide search --------------------------------------------------------------------------

def test_system_search_allows_common_parameters_only(reg: SearchRegistry) -> None:
    req = parse(reg, None, ("_id", "a"), ("_lastUpdated", "gt2020"), ("_tag", "x|y"))
    assert req.types == () and [c.name for c in req.criteria] == ["_id", "_lastUpdated", "_tag"]
    assert error(reg, None, ("code", "x")).code == "not-supported"


def test_system_search_with_type(reg: SearchRegistry) -> None:
    req = parse(reg, None, ("_type", "Observation,Condition"), ("code", "x"))
    assert req.types == ("Observation", "Condition")
    assert only(req).resource_types == ("Observation", "Condition")
    assert error(reg, None, ("_type", "Observation,Patient"), ("code", "x")).code == "not-supported"
    assert error(reg, None, ("_type", "Nonesuch")).code == "invalid"


def test_type_is_only_for_system_search(reg: SearchRegistry) -> None:
    assert error(reg, "Patient", ("_type", "Patient")).code == "not-supported"
    assert parse(reg, "Patient", ("_type", "Patient"), lenient=True).ignored == ["_type"]


def test_has_needs_one_type(reg: SearchRegistry) -> None:
    assert error(reg, None, ("_has:Observation:patient:code", "x")).code == "not-supported"


def test_now_helper_roundtrip() -> None:
    from datetime import UTC, datetime
    assert instant_to_micros(datetime(2024, 1, 1, tzinfo=UTC)) == NOW
