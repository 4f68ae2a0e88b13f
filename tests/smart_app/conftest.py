"""Fixtures for the SMART app: a live Telehub (TELEHUB_AUTH=smart) with the sandbox EHR and the app mounted
exactly as ``telehub demo`` composes them, served by werkzeug on a thread, with the demo data, users and
today's visits; and a scripted browser (``requests``) that walks the launch like a person would.

Layout: ``http://127.0.0.1:PORT/fhir`` (hub), ``/sandbox`` (EHR), ``/app`` (the app under test).
"""
from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from werkzeug.serving import make_server

from fhir_gateway.app import create_app
from fhir_gateway.demo import PHYSICIAN, seed_demo_data, seed_demo_users, seed_demo_visits
from fhir_gateway.settings import Settings
from tests.sandbox_fixtures.conftest import make_settings

PASSWORD_FOR_BENCH = "correct horse battery staple"


class _Front:
    """Lets the server pick its port before the app (whose base URL names the port) exists."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class LiveApp:
    origin: str
    mounted: Any
    settings: Settings
    username: str
    password: str
    totp_secret: str
    practitioner: str
    patients: dict[str, str] = field(default_factory=dict)  # family name -> hub id
    visits_seeded: int = 0

    @property
    def auth(self) -> Any:
        return self.mounted.hub_app.extensions["telehub.auth"].services

    @property
    def services(self) -> Any:
        from smart_app.services import EXT

        return self.mounted.smart_app.extensions[EXT]

    def fhir(self, path: str, **params: str) -> Any:
        scope = "system/Patient.rs system/Appointment.rs system/Encounter.rs system/Practitioner.rs"
        token = self.auth.tokens.issue(client_id="telehub-app-backend", user=None, lifetime=60, scope=scope)
        resp = requests.get(f"{self.origin}/fhir/{path}", params=params, timeout=30, headers={
            "Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json"})
        assert resp.status_code == 200, resp.text
        return resp.json()


def serve(tmp: Path) -> Iterator[LiveApp]:
    """The whole demo on a free port (module-scoped fixtures call this)."""
    from sandbox_fixtures.sandbox.wsgi import mount

    front = _Front()
    server = make_server("127.0.0.1", 0, front, threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    base = make_settings(tmp)
    settings = Settings(**{**base.__dict__, "base_url": f"{origin}/fhir"})
    seed_demo_data(settings)
    hub = create_app(settings)
    mounted = mount(hub)
    front.app = mounted
    physician = next(u for u in seed_demo_users(settings) if u.username == PHYSICIAN)
    seeded = seed_demo_visits(hub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    live = LiveApp(origin, mounted, settings, physician.username, physician.password or "",
                   physician.totp_secret or "", (physician.fhir_user or "").split("/", 1)[1], visits_seeded=seeded)
    for entry in live.fhir("Patient", _count="50").get("entry", []):
        live.patients[entry["resource"]["name"][0]["family"]] = entry["resource"]["id"]
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        hub.extensions["telehub.fhir"].repository.engine.dispose()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """One live demo per test process (the Playwright module makes its own)."""
    yield from serve(Path(tmp_path_factory.mktemp("smart-app")))


# ------------------------------------------------------------------ a scripted browser

_INPUT = re.compile(r'<input[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<value>[^"]*)"', re.I)


def form_fields(page: str) -> list[tuple[str, str]]:
    return [(m["name"], html.unescape(m["value"])) for m in _INPUT.finditer(page)]


@dataclass
class Browser:
    """A person at a browser: follows redirects, signs in once (TOTP codes are single-use), consents."""

    live: LiveApp
    session: requests.Session = field(default_factory=requests.Session)
    signed_in: bool = False
    username: str = ""  # default: the demo physician
    password: str = ""
    totp_secret: str = ""
    practitioner: str = ""

    def __post_init__(self) -> None:
        self.username = self.username or self.live.username
        self.password = self.password or self.live.password
        self.totp_secret = self.totp_secret or self.live.totp_secret
        self.practitioner = self.practitioner or self.live.practitioner

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.session.get(urljoin(self.live.origin, url), timeout=30, **kw)

    def sandbox_launch(self, *, flavour: str = "generic", patient: str = "Conn", banner: bool = True,
                       app: str = "telehub-app") -> requests.Response:
        """Press Launch in the sandbox EHR; returns the response after redirects (login or consent page)."""
        form = {"practitioner": self.practitioner, "patient": self.live.patients[patient], "flavour": flavour,
                "app": app}
        if banner:
            form["banner"] = "on"
        return self.session.post(f"{self.live.origin}/sandbox/launch", data=form, timeout=30)

    def sign_in(self, page: requests.Response) -> requests.Response:
        if 'name="password"' not in page.text:
            return page
        txn = dict(form_fields(page.text))["txn"]
        import time

        code = pyotp.TOTP(self.totp_secret)
        resp = self.session.post(f"{self.live.origin}/fhir/auth/login", timeout=30, data={
            "txn": txn, "username": self.username, "password": self.password, "otp": code.now()})
        if 'name="password"' in resp.text:  # the code of this 30 s step was used already: wait for the next
            time.sleep(31 - time.time() % 30)
            resp = self.session.post(f"{self.live.origin}/fhir/auth/login", timeout=30, data={
                "txn": txn, "username": self.username, "password": self.password, "otp": code.now()})
        self.signed_in = True
        return resp

    def consent(self, page: requests.Response, *, decision: str = "allow",
                drop: tuple[str, ...] = ()) -> requests.Response:
        fields = [(k, v) for k, v in form_fields(page.text) if not (k == "scope" and v in drop)]
        return self.session.post(f"{self.live.origin}/fhir/auth/consent", data=[*fields, ("decision", decision)],
                                 timeout=30)

    def launch(self, **kw: Any) -> requests.Response:
        """Sandbox → login (first time) → consent (allow) → the app's dashboard."""
        return self.consent(self.sign_in(self.sandbox_launch(**kw)))


@pytest.fixture(scope="session")
def browser(live_app: LiveApp) -> Browser:
    """The demo physician's browser, signed in at the hub once (a TOTP code works once per 30 s step)."""
    return Browser(live_app)


def session_record(browser: Browser) -> dict[str, Any]:
    """The app's server-side session for this browser (decrypted through the app's own store)."""
    sid = browser.session.cookies.get("telehub_app_sid")
    found = browser.live.services.store.get("session", sid or "")
    assert found is not None
    return dict(found)
