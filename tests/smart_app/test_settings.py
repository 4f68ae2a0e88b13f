"""``TELEHUB_APP_*`` settings: parsed at start-up, refused when unsafe."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from smart_app.backend_auth import generate_key
from smart_app.settings import AppSettingsError, TrustedIssuer, load_app_settings, parse_issuers


def test_issuers_with_vendor_profiles() -> None:
    assert parse_issuers("https://a/fhir/=epic, https://b/r4 ,") == (
        TrustedIssuer("https://a/fhir", "epic"), TrustedIssuer("https://b/r4", "generic-r4"))


def test_issuer_tenant_and_sync_window(tmp_path: Path) -> None:
    assert parse_issuers("https://ehr:8443/R4=epic:clinic-a") == (
        TrustedIssuer("https://ehr:8443/R4", "epic", "clinic-a"),)
    key, jwk = tmp_path / "key", tmp_path / "jwk.json"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    jwk.write_text(json.dumps(generate_key()))
    env = {"TELEHUB_APP_CLIENT_SECRET": "s", "TELEHUB_APP_SECRET_KEY_FILE": str(key),
           "TELEHUB_APP_BACKEND_KEY_FILE": str(jwk)}
    assert load_app_settings(env).sync_max_age == 900
    assert load_app_settings({**env, "TELEHUB_APP_SYNC_MAX_AGE": "60"}).sync_max_age == 60
    for bad in ("soon", "-1"):
        with pytest.raises(AppSettingsError, match="SYNC_MAX_AGE"):
            load_app_settings({**env, "TELEHUB_APP_SYNC_MAX_AGE": bad})


def test_load_from_environment(tmp_path: Path) -> None:
    key, jwk = tmp_path / "key", tmp_path / "jwk.json"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    jwk.write_text(json.dumps(generate_key()))
    settings = load_app_settings({"TELEHUB_APP_CLIENT_SECRET": "s", "TELEHUB_APP_SECRET_KEY_FILE": str(key),
                                  "TELEHUB_APP_BACKEND_KEY_FILE": str(jwk), "TELEHUB_APP_HUB_BASE": "https://hub/fhir/",
                                  "TELEHUB_APP_COOKIE_SAMESITE": "None"})
    assert settings.hub_base == "https://hub/fhir" and settings.trusted_issuers == (TrustedIssuer("https://hub/fhir"),)
    assert settings.redirect_uri == "http://127.0.0.1:8080/app/callback" and settings.cookie_samesite == "None"
    assert "client_secret=" not in repr(settings) and "secret_key=" not in repr(settings)  # never logged


@pytest.mark.parametrize("env,message", [
    ({"TELEHUB_APP_CLIENT_SECRET": "s"}, "SECRET_KEY_FILE"),
    ({"TELEHUB_APP_SECRET_KEY_FILE": "/nonexistent"}, "cannot read"),
])
def test_unsafe_or_broken_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(AppSettingsError, match=message):
        load_app_settings(env)
