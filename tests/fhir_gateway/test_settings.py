"""Settings: defaults < file < environment; unsafe combinations refused at start-up."""
from __future__ import annotations

from pathlib import Path

import pytest

from fhir_gateway.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_ones() -> None:
    s = load_settings({})
    assert s.database_url.startswith("sqlite:///") and s.redis_url is None and s.env == "dev"


def test_environment_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "telehub.toml"
    f.write_text('database_url = "sqlite:///from-file.db"\nmax_body_bytes = 2048\n')
    s = load_settings({"TELEHUB_SETTINGS_FILE": str(f), "TELEHUB_MAX_BODY_BYTES": "4096"})
    assert s.database_url == "sqlite:///from-file.db"
    assert s.max_body_bytes == 4096


def test_auth_off_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="refused"):
        load_settings({"TELEHUB_ENV": "prod", "TELEHUB_AUTH": "off"})


def test_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TELEHUB_MAX_BODY_BYTES"):
        load_settings({"TELEHUB_MAX_BODY_BYTES": "lots"})
    with pytest.raises(SettingsError, match="TELEHUB_ENV"):
        load_settings({"TELEHUB_ENV": "staging"})
    f = tmp_path / "bad.toml"
    f.write_text('databse_url = "typo"\n')
    with pytest.raises(SettingsError, match=r"unknown settings.*databse_url"):
        load_settings({}, settings_file=str(f))
