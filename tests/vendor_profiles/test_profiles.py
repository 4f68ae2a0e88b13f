"""Vendor profiles: the shipped ones load, and a bad one fails naming the file and the field."""
from __future__ import annotations

from pathlib import Path

import pytest

from vendor_profiles import ProfileError, ProfileRegistry, load_profile
from vendor_profiles.hooks import VendorHooks, hooks_for
from vendor_profiles.loader import DATA_DIR

SHIPPED = ["athena", "cerner", "epic", "generic-r4"]


@pytest.fixture(scope="module")
def registry() -> ProfileRegistry:
    return ProfileRegistry.load()


def test_every_shipped_profile_loads(registry: ProfileRegistry) -> None:
    assert registry.names() == SHIPPED


def test_paging_styles_are_each_vendors(registry: ProfileRegistry) -> None:
    styles = {p.name: (p.paging.style, p.paging.token_param) for p in registry}
    assert styles == {"epic": ("session-id", "sessionID"), "cerner": ("page-context", "-pageContext"),
                      "athena": ("cursor", "cursor"), "generic-r4": ("next-link", None)}


def test_epic_facts(registry: ProfileRegistry) -> None:
    epic = registry.get("epic")
    assert epic.auth.client_auth == "private_key_jwt" and epic.auth.assertion_alg == "RS384"
    assert epic.auth.assertion_jku and epic.auth.assertion_lifetime_s <= 300
    assert epic.tokens.format == "opaque" and epic.tokens.lifetime_s == 3600
    assert epic.errors.outcome_entries_in_searchset and epic.errors.html_error_pages
    assert epic.content.accept == "application/fhir+json"
    assert not epic.writes.create_returns_body and epic.writes.read_back_via_location
    assert epic.launch.banner_as_string
    assert ["patient", "category"] in epic.resources["Observation"].required_params
    assert not epic.supports("Appointment", "create")


def test_cerner_and_athena_tenancy(registry: ProfileRegistry) -> None:
    cerner, athena = registry.get("cerner"), registry.get("athena")
    assert cerner.base_url("t-1") == "https://fhir-ehr.cerner.com/r4/t-1"
    assert cerner.tokens.lifetime_s == 570 and cerner.scopes.style == "v2" and not cerner.scopes.wildcards
    assert cerner.extensions.video_links is not None
    assert cerner.extensions.video_links.roles["patient"] == "Patient Virtual Meeting Room"
    assert athena.tenancy.param == "ah-practice"
    assert athena.tenancy.param_format == "Organization/a-1.Practice-{tenant}"
    assert athena.scopes.explicit_required and not athena.tokens.lifetime_verified


def _broken(tmp_path: Path, old: str, new: str, name: str = "epic") -> Path:
    text = (DATA_DIR / f"{name}.toml").read_text()
    assert old in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("old", "new", "field"), [
    ('style = "session-id"', 'style = "sessionid"', "paging.style"),
    ("requests_per_second = 10.0", "requests_per_second = -1", "rate_limit.requests_per_second"),
    ('token_param = "sessionID"\n', "", "paging"),
    ("assertion_lifetime_s = 240", "assertion_lifetime_s = 900", "auth.assertion_lifetime_s"),
    ('interactions = ["read", "search", "create"]\nrequired_params = [["patient"]]',
     'interactions = ["read", "fetch"]\nrequired_params = [["patient"]]',
     "resources.AllergyIntolerance.interactions[1]"),
    ("[rate_limit]", "[rate_limit]\nrequests_per_minute = 3", "rate_limit.requests_per_minute"),
    ('type_text = "EPI"', 'type_text = "EPI"\nsystem_regexp = "x"', "identifiers.mrn[0].system_regexp"),
])
def test_a_bad_profile_names_file_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert err.value.path == str(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and field in str(err.value)


def test_missing_section_and_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\ndisplay = "X"\n')
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert err.value.field == "tenancy"
    path.write_text("name = \n")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert err.value.field == "(syntax)"


def test_name_must_match_file_and_hooks_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "epic.toml"
    path.write_text((DATA_DIR / "epic.toml").read_text().replace('name = "epic"', 'name = "epik"'))
    with pytest.raises(ProfileError, match="name"):
        load_profile(path)
    path = _broken(tmp_path, 'hooks = "athena"', 'hooks = "nope"', name="athena")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert err.value.field == "hooks"


def test_registry_fails_at_load_on_any_bad_file(tmp_path: Path) -> None:
    for name in SHIPPED:
        (tmp_path / f"{name}.toml").write_text((DATA_DIR / f"{name}.toml").read_text())
    assert ProfileRegistry.load(tmp_path).names() == SHIPPED
    (tmp_path / "cerner.toml").write_text((DATA_DIR / "cerner.toml").read_text().replace("burst = 20", "burst = 0"))
    with pytest.raises(ProfileError, match=r"cerner\.toml: rate_limit\.burst"):
        ProfileRegistry.load(tmp_path)


def test_a_fourth_vendor_is_a_data_file(tmp_path: Path) -> None:
    text = (DATA_DIR / "generic-r4.toml").read_text().replace('name = "generic-r4"', 'name = "hapi"')
    (tmp_path / "hapi.toml").write_text(text)
    registry = ProfileRegistry.load(tmp_path)
    assert registry.get("hapi").paging.style == "next-link"
    with pytest.raises(KeyError, match="unknown vendor profile"):
        registry.get("nextgen")


def test_hooks_default_and_athena() -> None:
    assert type(hooks_for(None)) is VendorHooks
    athena = hooks_for("athena")
    import base64
    import json

    claims = base64.urlsafe_b64encode(json.dumps({"ah_practice": "a-1.Practice-195900"}).encode()).decode().rstrip("=")
    assert athena.tenant_from_token({"access_token": f"e30.{claims}.sig"}) == "195900"
    assert athena.tenant_from_token({"access_token": "opaque"}) is None
