"""Settings: defaults < optional settings file (TOML) < environment, passed into ``create_app``.

Nothing below the app factory reads the environment; it receives a :class:`Settings`.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "TELEHUB_"


class SettingsError(ValueError):
    """A setting is missing or inconsistent; raised at start-up, never at request time."""


@dataclass(frozen=True)
class Settings:
    env: str = "dev"  # dev | prod | test
    database_url: str = "sqlite:///var/telehub.db"
    redis_url: str | None = None
    base_url: str = "http://127.0.0.1:8080/fhir"
    auth: str = "off"  # off | smart (the SMART issue adds "smart")
    kek_file: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    sql_echo: bool = False
    # HIPAA safeguards (issue 3): all on by default; production refuses to turn any off
    log_level: str | None = None
    frame_ancestors: str = "'self'"  # e.g. "'self' https://*.epic.com" for EHR-embedded pages
    session_idle_minutes: int = 15
    session_cookie_samesite: str = "Lax"  # "None" for sessions inside EHR iframes (adds Partitioned)
    baa_signed: str = ""  # comma-separated outside adapters with a signed BAA, e.g. "daily,aws-ses"
    csp_connect_src: str = ""
    csp_frame_src: str = ""
    csp_media_src: str = ""
    encryption: bool = True
    blind_indexes: bool = True
    audit: bool = True
    # SMART tokens (issue 4): access-token lifetimes in seconds
    token_lifetime_user: int = 3600
    token_lifetime_backend: int = 300
    # EHR adapters (issue 5): clinic connection files, <dir>/<tenant>.toml (TELEHUB_CONNECTIONS_DIR)
    connections_dir: str = "var/connections"
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> Settings:
        """Refuse unsafe combinations (for example no auth in production)."""
        if self.env not in ("dev", "prod", "test"):
            raise SettingsError(f"TELEHUB_ENV must be dev, prod or test, not {self.env!r}")
        if self.env == "prod" and self.auth == "off":
            raise SettingsError("TELEHUB_AUTH=off is refused when TELEHUB_ENV=prod")
        if self.env == "prod" and not (self.encryption and self.blind_indexes and self.audit):
            raise SettingsError("encryption, blind indexes and audit cannot be turned off when TELEHUB_ENV=prod")
        if not (60 <= self.token_lifetime_user <= 86400 and 30 <= self.token_lifetime_backend <= 3600):
            raise SettingsError("token lifetimes: users 60-86400 s, backend services 30-3600 s")
        if self.max_body_bytes < 1024:
            raise SettingsError("TELEHUB_MAX_BODY_BYTES must be at least 1024")
        return self

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/")


def _coerce(name: str, raw: Any, current: Any) -> Any:
    if isinstance(current, bool):
        return str(raw).lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an integer") from exc
    return raw


def load_settings(environ: dict[str, str] | None = None, settings_file: str | None = None,
                  **overrides: Any) -> Settings:
    """Build settings from defaults, then ``settings_file`` (or TELEHUB_SETTINGS_FILE), then the environment."""
    environ = dict(os.environ if environ is None else environ)
    settings = Settings()
    names = {f.name for f in fields(Settings)} - {"extra"}
    path = settings_file or environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if path:
        data = tomllib.loads(Path(path).read_text())
        unknown = set(data) - names
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        settings = replace(settings, **{k: _coerce(k, v, getattr(settings, k)) for k, v in data.items()})
    from_env = {}
    for name in names:
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in environ:
            from_env[name] = _coerce(name, environ[key], getattr(settings, name))
    settings = replace(settings, **from_env, **overrides)
    return settings.check()
