"""Demo set-up for ``telehub demo`` / ``make run`` (development only): demo data, demo users, the sandbox.

An empty database gets the sandbox fixtures' Synthea patients; the first start also creates a demo
physician (TOTP is mandatory for physicians) and a demo patient and shows their credentials once;
the hub is then served with the sandbox EHR mounted at /sandbox (:mod:`sandbox_fixtures.sandbox.wsgi`).
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update

from fhir_gateway.settings import Settings

PHYSICIAN = "demo-physician"
PATIENT = "demo-patient"
CLI_CLIENT = "telehub-demo-cli"  # for `telehub token` in the printed curl hint
SANDBOX_FACTORY = "sandbox_fixtures.sandbox.wsgi:create"


class DemoRefused(RuntimeError):
    """``telehub demo`` is a development tool: refused with TELEHUB_ENV=prod."""


@dataclass
class DemoUser:
    username: str
    role: str
    fhir_user: str | None
    password: str | None = field(default=None, repr=False)  # only when just created or reset
    totp_uri: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)


def demo_fixture_dir() -> Path | None:
    spec = importlib.util.find_spec("sandbox_fixtures")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "demo"
    return path if path.is_dir() else None


def seed_demo_data(settings: Settings) -> int:
    """Import the demo Bundles when the database holds no Patient yet; returns resources loaded."""
    from fhir_gateway.app import build_services
    from fhir_gateway.importer.run import run_import
    from fhir_gateway.storage.tables import resource

    services = build_services(settings)
    with services.repository.transaction() as conn:
        patients = conn.execute(select(func.count()).select_from(resource).where(
            resource.c.rtype == "Patient")).scalar_one()
    fixtures = demo_fixture_dir()
    if patients or fixtures is None:
        return 0
    report = run_import(settings, [fixtures], on_error="skip", restart=True, progress=False, services=services)
    return report.resources


def _first_id(services: Any, rtype: str) -> str | None:
    from fhir_gateway.storage.tables import resource

    with services.repository.transaction() as conn:
        fid = conn.execute(select(resource.c.fid).where(resource.c.rtype == rtype, resource.c.deleted.is_(False))
                           .order_by(resource.c.pk).limit(1)).scalar()
    return str(fid) if fid else None


def auth_services(settings: Settings) -> tuple[Any, Any]:
    """The FHIR and auth services as the app builds them (same key ring: sealed TOTP secrets stay readable)."""
    from fhir_gateway.app import build_services, signing_key_provider
    from fhir_gateway.auth import build_services as buildauth_services

    services = build_services(settings)
    return services, buildauth_services(settings, services.repository.engine,
                                         key_provider=signing_key_provider(services))


def _set_password(auth: Any, username: str, password: str) -> None:
    from fhir_gateway.auth.passwords import hash_secret
    from fhir_gateway.auth.tables import auth_user

    with auth.users.engine.begin() as conn:
        conn.execute(update(auth_user).where(auth_user.c.username == username)
                     .values(password_hash=hash_secret(password), failed_logins=0, locked_until=None))


def seed_demo_users(settings: Settings, *, reset: bool = False) -> list[DemoUser]:
    """Create (or with ``reset``, give new credentials to) the demo physician and patient, and the CLI client.

    Passwords and the TOTP secret are returned only when created or reset: the caller shows them once.
    """
    if settings.env == "prod":
        raise DemoRefused("demo users are refused when TELEHUB_ENV=prod")
    services, auth = auth_services(settings)
    practitioner, patient = _first_id(services, "Practitioner"), _first_id(services, "Patient")
    if auth.clients.get(CLI_CLIENT) is None:
        auth.clients.add(CLI_CLIENT, client_type="public", name="telehub demo CLI", scope="system/*.cruds",
                         grant_types=[])
    out: list[DemoUser] = []
    for username, role, ref in ((PHYSICIAN, "physician", f"Practitioner/{practitioner}" if practitioner else None),
                                (PATIENT, "patient", patient)):
        if role == "patient" and not patient:
            continue
        existing = auth.users.by_username(username)
        password = secrets.token_urlsafe(12)
        if existing is None:
            kw = {"patient": ref} if role == "patient" else {"fhir_user": ref}
            new = auth.users.add(username, password, role, **kw)
            out.append(DemoUser(username, role, new.fhir_user, password, new.totp_uri, new.totp_secret))
        elif reset:
            _set_password(auth, username, password)
            enrolled = auth.users.enrol_totp(username) if role == "physician" else None
            out.append(DemoUser(username, role, existing.fhir_user, password,
                                enrolled.totp_uri if enrolled else None, enrolled.totp_secret if enrolled else None))
        else:
            out.append(DemoUser(username, role, existing.fhir_user))
    services.repository.engine.dispose()
    return out


def origin_of(settings: Settings) -> str:
    """scheme://host:port of the public base URL: the sandbox lives at {origin}/sandbox."""
    parts = urlsplit(settings.fhir_base)
    return f"{parts.scheme}://{parts.netloc}"


def banner(origin: str, users: list[DemoUser]) -> str:
    """What the console shows at start (credentials only when just created: they are not stored in clear)."""
    lines = ["", "Telehub demo (development only: synthetic data; database and dev key under ./var/ by default)",
             f"  FHIR API          {origin}/fhir   (metadata: /fhir/metadata; TELEHUB_AUTH=smart: bearer tokens)",
             f"  Sandbox EHR       {origin}/sandbox   ← start here: pick a patient, launch the launch inspector",
             f"  Flavoured FHIR    {origin}/sandbox/epic/api/FHIR/R4  ·  /sandbox/cerner/r4/<tenant>  ·  "
             "/sandbox/athena/fhir/r4  ·  /sandbox/generic/fhir", "", "  Demo sign-in users:"]
    shown = False
    for u in users:
        lines.append(f"    {u.username:<15} {u.role:<10} {u.fhir_user or ''}")
        if u.password:
            shown = True
            lines.append(f"      password        {u.password}")
        if u.totp_secret:
            lines += [f"      TOTP secret     {u.totp_secret}",
                      f"      otpauth URI     {u.totp_uri}",
                      "      current code    .venv/bin/python -c 'import pyotp; "
                      f"print(pyotp.TOTP(\"{u.totp_secret}\").now())'"]
    if shown:
        lines.append("    These credentials are shown once; note them now (`telehub demo --reset-demo-users` "
                     "makes new ones).")
    else:
        lines.append("    Passwords and the TOTP secret were shown when the users were created; "
                     "`telehub demo --reset-demo-users` makes new ones.")
    lines += ["", "  A token for curl:  TOKEN=$(.venv/bin/telehub token --client-id "
              f"{CLI_CLIENT} --scope 'system/*.rs' --lifetime 3600)", "                     "
              f"curl -H \"Authorization: Bearer $TOKEN\" {origin}/fhir/Patient", ""]
    return "\n".join(lines)


def serve_demo(host: str, port: int, threads: int = 4) -> None:
    """Exec granian with the hub + sandbox factory: one worker (the sandbox keeps paging sessions in process)."""
    argv = ["granian", "--interface", "wsgi", "--factory", "--host", host, "--port", str(port), "--workers", "1",
            "--blocking-threads", str(threads), "--no-ws", "--log-level", "warning", SANDBOX_FACTORY]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
