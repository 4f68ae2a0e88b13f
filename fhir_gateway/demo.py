"""Demo set-up for ``telehub demo`` / ``make run`` (development only): demo data, demo users, the sandbox.

An empty database gets the sandbox fixtures' Synthea patients; the first start also creates a demo
physician (TOTP is mandatory for physicians) and a demo patient and shows their credentials once;
the hub is then served with the sandbox EHR mounted at /sandbox (:mod:`sandbox_fixtures.sandbox.wsgi`).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

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
             f"  SMART app         {origin}/app   (launch \"{APP_NAME}\" from the sandbox as {PHYSICIAN})",
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


# ------------------------------------------------------------------ the SMART app (/app) in the demo

APP_CLIENT = "telehub-app"  # the app's launch client (confidential, client_secret_basic)
APP_BACKEND_CLIENT = "telehub-app-backend"  # the app's backend-services client (private_key_jwt, RS384)
APP_NAME = "Telehub (virtual visits)"
DEMO_VISIT_SYSTEM = "urn:telehub:demo-visit"


def register_smart_app(auth: Any, *, public_url: str, secret: str, jwks: dict[str, Any], user_scope: str,
                       backend_scope: str) -> None:
    """Register (or re-register when anything changed) the app's two clients; the launch client has a launch
    URI so the sandbox EHR lists it."""
    from fhir_gateway.auth.clients import ClientError

    base = public_url.rstrip("/")
    found = auth.clients.get(APP_CLIENT)
    if found is None or found.redirect_uris != [f"{base}/callback"] or found.scope != user_scope \
            or found.launch_uri != f"{base}/launch" or not found.check_client_secret(secret):
        if found is not None:
            auth.clients.remove(APP_CLIENT)
        with contextlib.suppress(ClientError):
            auth.clients.add(APP_CLIENT, client_type="symmetric", secret=secret, name=APP_NAME,
                             redirect_uris=[f"{base}/callback"], launch_uri=f"{base}/launch", scope=user_scope)
    if auth.clients.get(APP_BACKEND_CLIENT) is not None:
        auth.clients.remove(APP_BACKEND_CLIENT)  # a new key each start: nothing private is stored
    with contextlib.suppress(ClientError):
        auth.clients.add(APP_BACKEND_CLIENT, client_type="asymmetric", name=f"{APP_NAME} backend", jwks=jwks,
                         scope=backend_scope)


def _demo_visit_times(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, datetime]:
    """(day start, day end, anchor): the anchor is 'now' kept between 08:00 and four hours before midnight."""
    local = now.astimezone(tz)
    start = datetime.combine(local.date(), time.min, tz)
    end = datetime.combine(local.date() + timedelta(days=1), time.min, tz)
    anchor = max(start + timedelta(hours=8), min(local, end - timedelta(hours=4)))
    anchor = anchor.replace(minute=anchor.minute - anchor.minute % 15, second=0, microsecond=0)
    return start, end, anchor


def seed_demo_visits(hub_app: Any, *, timezone_name: str = "America/New_York", now: datetime | None = None) -> int:
    """Today's virtual visits for the demo physician (once a day): done, two waiting, two booked.

    Written through the hub's own FHIR API in-process (one transaction), so the audit trail records them.
    Returns how many Appointments were created (0 when today already has some or nothing to seed).
    """
    import orjson

    now = now or datetime.now(UTC)
    tz = ZoneInfo(timezone_name)
    auth = hub_app.extensions["telehub.auth"].services
    user = auth.users.by_username(PHYSICIAN)
    if user is None or not user.fhir_user or auth.clients.get(APP_BACKEND_CLIENT) is None:
        return 0
    practitioner = user.fhir_user.split("/", 1)[1]
    token = auth.tokens.issue(client_id=APP_BACKEND_CLIENT, user=None, lifetime=120,
                              scope="system/Appointment.cruds system/Encounter.cruds system/Patient.rs")["access_token"]
    client = hub_app.test_client()
    origin = origin_of(hub_app.extensions["telehub.fhir"].settings)
    base_path = urlsplit(hub_app.extensions["telehub.fhir"].settings.fhir_base).path.rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json",
               "Content-Type": "application/fhir+json"}
    start, end, anchor = _demo_visit_times(now, tz)
    existing = client.get(f"{base_path}/Appointment", base_url=origin, headers=headers, query_string=[
        ("practitioner", practitioner), ("date", f"ge{start.isoformat()}"), ("date", f"lt{end.isoformat()}")])
    patients = client.get(f"{base_path}/Patient", base_url=origin, headers=headers, query_string={"_count": "3"})
    if existing.status_code != 200 or existing.get_json().get("total", 0) or patients.status_code != 200:
        return 0
    people = [e["resource"] for e in patients.get_json().get("entry", [])]
    if not people:
        return 0
    plan = [(-90, "fulfilled", "Follow-up: blood pressure", None), (15, "arrived", "Cough and fever for 3 days", 12),
            (30, "arrived", "Medication review", 4), (60, "booked", "Annual wellness check-in", None),
            (120, "booked", "Lab results discussion", None)]
    entries = []
    for n, (offset, status, reason, waited) in enumerate(plan):
        person = people[n % len(people)]
        visit_start = anchor + timedelta(minutes=offset)
        full_url = f"urn:uuid:{uuid.uuid4()}"
        name = " ".join([*person.get("name", [{}])[0].get("given", []), person.get("name", [{}])[0].get("family", "")])
        entries.append({"fullUrl": full_url, "request": {"method": "POST", "url": "Appointment"}, "resource": {
            "resourceType": "Appointment", "status": status,
            "identifier": [{"system": DEMO_VISIT_SYSTEM, "value": f"{start.date().isoformat()}-{n}"}],
            "serviceType": [{"text": "Video visit"}], "reasonCode": [{"text": reason}],
            "start": visit_start.isoformat(), "end": (visit_start + timedelta(minutes=20)).isoformat(),
            "participant": [{"actor": {"reference": f"Patient/{person['id']}", "display": name.strip()},
                             "status": "accepted"},
                            {"actor": {"reference": f"Practitioner/{practitioner}"}, "status": "accepted"}]}})
        if waited is not None:
            entries.append({"request": {"method": "POST", "url": "Encounter"}, "resource": {
                "resourceType": "Encounter", "status": "arrived",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR",
                          "display": "virtual"},
                "subject": {"reference": f"Patient/{person['id']}"}, "appointment": [{"reference": full_url}],
                "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
                "period": {"start": (now - timedelta(minutes=waited)).isoformat()}}})
    resp = client.post(f"{base_path}/", base_url=origin, headers=headers,
                       data=orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    return len(plan) if resp.status_code == 200 else 0
