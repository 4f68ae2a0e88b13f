"""End-to-end fixtures: a live Telehub (TELEHUB_AUTH=smart) on 127.0.0.1, seeded over HTTP, the
npm ``fhirclient`` browser bundle and headless Debian Chromium driven by Playwright.

Layout of the one werkzeug server (a background thread, a free port)::

    http://127.0.0.1:PORT/fhir/…   the real Telehub Flask app (create_app), FHIR base and /fhir/auth/…
    http://127.0.0.1:PORT/app/…    tests/e2e/static/*.html + fhir-client.js from tests/e2e/js/node_modules

The static pages are served by a wrapper WSGI app in front of the product (the product is not
changed). A second, separate origin for the same pages is ``live.cross_origin`` (a tiny
``http.server`` thread on another port), for the CORS check.

Nothing here is downloaded at run time but the npm packages (``npm ci`` in tests/e2e/js when
node_modules is missing or stale). Chromium is Debian's /usr/bin/chromium (``infra/services/
ensure-chromium.sh`` installs it in CI; ``TELEHUB_E2E_CHROMIUM`` names another binary); never
``playwright install``. Without Chromium, node/npm
or the Python ``playwright`` package the browser tests skip on a developer's machine and fail
under CI=true (``tests.conftest.unavailable``).
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import http.server
import json
import mimetypes
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from fhir_gateway.app import create_app
from fhir_gateway.settings import Settings
from tests.conftest import unavailable

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
JS_DIR = HERE / "js"
FHIRCLIENT_BUNDLE = JS_DIR / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
PASSWORD = "correct horse battery staple"
JS_CLIENT = "e2e-js"  # the public browser app (npm fhirclient)
PY_CLIENT = "e2e-py"  # the confidential Python fhirclient app (client_secret_basic)
PY_SECRET = "e2e-python-client-secret-value"
SEEDER = "e2e-seeder"  # a client the seeding system token is minted for

# ------------------------------------------------------------------ the live server


class _Front:
    """WSGI front: /app/… are the test pages (static), everything else goes to Telehub."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/app/"):
            return _static(path[len("/app/"):], start_response)
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def _static_file(name: str) -> Path | None:
    if name == "fhir-client.js":
        return FHIRCLIENT_BUNDLE if FHIRCLIENT_BUNDLE.is_file() else None
    candidate = (STATIC / name).resolve()
    return candidate if candidate.parent == STATIC and candidate.is_file() else None


def _static(name: str, start_response: Any) -> Iterable[bytes]:
    name = name.split("?", 1)[0] or "index.html"
    path = _static_file(name)
    if path is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    body = path.read_bytes()
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                              ("Cache-Control", "no-store")])
    return [body]


class _StaticHandler(http.server.BaseHTTPRequestHandler):
    """The same pages on a second origin (another port): a SMART app is usually not the FHIR server's origin."""

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0]
        path = _static_file(name[len("/app/"):]) if name.startswith("/app/") else None
        if path is None:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@dataclass
class Seed:
    patient: str  # Peter Chalmers, with 3 Observations and a Condition
    other_patient: str  # Lan Nguyen, with 1 Observation
    encounter: str  # an Encounter of Peter's
    practitioner: str
    observations: int = 3


@dataclass
class Live:
    origin: str  # http://127.0.0.1:PORT
    base_url: str  # http://127.0.0.1:PORT/fhir
    app: Any  # the Flask app
    auth: Any  # AuthServices (app.extensions["telehub.auth"].services)
    seed: Seed
    system_token: str
    cross_origin: str = ""  # http://127.0.0.1:OTHER (same pages, another origin)
    users: dict[str, str | None] = field(default_factory=dict)  # username -> TOTP secret (None: no second factor)

    @property
    def app_url(self) -> str:
        return f"{self.origin}/app"

    def fhir(self, method: str, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token or self.system_token}"}
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        return requests.request(method, f"{self.base_url}/{path}", headers=headers,
                                data=json.dumps(body) if body is not None else None, timeout=30)

    def create(self, resource: dict[str, Any]) -> str:
        resp = self.fhir("POST", resource["resourceType"], resource)
        assert resp.status_code == 201, resp.text
        rid: str = resp.json()["id"]
        return rid

    def add_user(self, username: str, role: str, **kw: Any) -> str | None:
        """Add a sign-in user; returns their TOTP secret when the store enrols one (physicians: mandatory)."""
        user = self.auth.users.add(username, PASSWORD, role, **kw)
        secret: str | None = getattr(user, "totp_secret", None)
        self.users[username] = secret
        return secret

    def otp(self, username: str) -> str:
        """The current one-time code for ``username`` ("" for a user without a second factor)."""
        secret = self.users.get(username)
        if not secret:
            return ""
        import pyotp

        return str(pyotp.TOTP(secret).now())


def _kek_file(directory: Path) -> str:
    path = directory / "kek.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    path.chmod(0o600)
    return str(path)


def _serve(server: BaseWSGIServer | http.server.HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return thread


def _seed(live: Live) -> Seed:
    practitioner = live.create({"resourceType": "Practitioner", "name": [{"family": "House", "given": ["Greg"]}]})
    peter = live.create({"resourceType": "Patient", "name": [{"family": "Chalmers", "given": ["Peter"]}],
                         "gender": "male", "birthDate": "1974-12-25"})
    lan = live.create({"resourceType": "Patient", "name": [{"family": "Nguyen", "given": ["Lan"]}],
                       "gender": "female", "birthDate": "1980-02-03"})
    encounter = live.create({"resourceType": "Encounter", "status": "in-progress",
                             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "VR", "display": "virtual"},
                             "subject": {"reference": f"Patient/{peter}"},
                             "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}]})

    def observation(who: str, code: str, display: str, value: float, unit: str) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "subject": {"reference": f"Patient/{who}"}, "effectiveDateTime": "2024-05-01T10:00:00Z",
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                  "code": unit}}

    for code, display, value, unit in (("8867-4", "Heart rate", 72, "/min"), ("8310-5", "Body temperature", 36.8,
                                       "Cel"), ("29463-7", "Body weight", 81.2, "kg")):
        live.create(observation(peter, code, display, value, unit))
    live.create(observation(lan, "8867-4", "Heart rate", 64, "/min"))
    live.create({"resourceType": "Condition",
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003",
                                      "display": "Hypertension"}], "text": "Hypertension"},
                 "subject": {"reference": f"Patient/{peter}"}})
    return Seed(patient=peter, other_patient=lan, encounter=encounter, practitioner=practitioner)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Telehub with TELEHUB_AUTH=smart on a fresh SQLite file, served on 127.0.0.1:<free port>, seeded."""
    tmp = tmp_path_factory.mktemp("e2e-live")
    front = _Front()
    server = make_server("127.0.0.1", 0, front, threaded=True)
    origin = f"http://127.0.0.1:{server.server_port}"
    settings = Settings(env="test", database_url=f"sqlite:///{tmp / 'telehub.sqlite3'}", base_url=f"{origin}/fhir",
                        auth="smart", kek_file=_kek_file(tmp))
    app = create_app(settings)
    front.app = app
    auth = app.extensions["telehub.auth"].services
    # The clients a real deployment would register (telehub clients add …).
    auth.clients.add(SEEDER, client_type="public", redirect_uris=["http://127.0.0.1/unused"], scope="system/*.cruds")
    auth.clients.add(JS_CLIENT, client_type="public", name="E2E browser app",
                     redirect_uris=[f"{origin}/app/index.html"],
                     scope="openid fhirUser launch launch/patient launch/encounter patient/*.rs user/*.rs")
    system_token = auth.tokens.issue(client_id=SEEDER, user=None, scope="system/*.cruds",
                                     lifetime=3600)["access_token"]
    thread = _serve(server)
    side = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StaticHandler)
    side_thread = _serve(side)
    live = Live(origin=origin, base_url=f"{origin}/fhir", app=app, auth=auth, seed=None,  # type: ignore[arg-type]
                system_token=system_token, cross_origin=f"http://127.0.0.1:{side.server_port}")
    try:
        live.seed = _seed(live)
        yield live
    finally:
        server.shutdown()
        side.shutdown()
        thread.join(10)
        side_thread.join(10)
        server.server_close()
        side.server_close()
        app.extensions["telehub.fhir"].repository.engine.dispose()


# ------------------------------------------------------------------ a SMART backend-services client

BACKEND = "e2e-backend"


@dataclass
class Backend:
    """A confidential-asymmetric client: RS384 key pair, registered with its public JWKS."""

    client_id: str
    key: Any  # joserfc RSAKey (private)
    token_url: str

    def assertion(self, **claims: Any) -> str:
        """RFC 7523 client assertion as SMART Backend Services specifies it (iss = sub = client_id, aud = token URL)."""
        from joserfc import jwt

        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "iat": now, "exp": now + 240,
                "jti": uuid.uuid4().hex}
        body.update(claims)
        return jwt.encode({"alg": "RS384", "kid": self.key.kid, "typ": "JWT"}, body, self.key, algorithms=["RS384"])

    def token_request(self, scope: str) -> requests.Response:
        return requests.post(self.token_url, timeout=30, data={
            "grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion()})


@pytest.fixture(scope="session")
def backend(live: Live) -> Backend:
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "e2e-rs384-1", "alg": "RS384", "use": "sig"})
    live.auth.clients.add(BACKEND, client_type="asymmetric", name="E2E EHR backend",
                          jwks={"keys": [key.as_dict(private=False)]}, scope="system/*.rs launch")
    return Backend(BACKEND, key, f"{live.base_url}/auth/token")


@pytest.fixture
def backend_token(backend: Backend) -> Callable[[str], str]:
    def get(scope: str) -> str:
        resp = backend.token_request(scope)
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        return token

    return get


# ------------------------------------------------------------------ npm fhirclient


def _bundle_is_current() -> bool:
    """node_modules holds exactly the fhirclient version package-lock.json pins."""
    try:
        locked = json.loads((JS_DIR / "package-lock.json").read_text())["packages"]["node_modules/fhirclient"]
        installed = json.loads((JS_DIR / "node_modules" / "fhirclient" / "package.json").read_text())
    except (OSError, KeyError, ValueError):
        return False
    return bool(installed.get("version") == locked.get("version") and FHIRCLIENT_BUNDLE.is_file())


@pytest.fixture(scope="session")
def fhirclient_js() -> Path:
    """The npm ``fhirclient`` browser bundle, installed by ``npm ci`` (tests/e2e/js) when missing or stale."""
    if _bundle_is_current():
        return FHIRCLIENT_BUNDLE
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        unavailable("node/npm not found: the browser tests need the npm fhirclient package "
                    "(apt-get install nodejs npm)")
    lock_path = Path(tempfile.gettempdir()) / "telehub-e2e-npm-ci.lock"
    with open(lock_path, "w") as lock:  # one `npm ci` at a time across pytest-xdist workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _bundle_is_current():
            started = time.monotonic()
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                                  capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                pytest.fail(f"npm ci in {JS_DIR} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                            pytrace=False)
            print(f"npm ci in tests/e2e/js: {time.monotonic() - started:.1f}s")
    if not FHIRCLIENT_BUNDLE.is_file():
        pytest.fail(f"npm ci did not produce {FHIRCLIENT_BUNDLE}", pytrace=False)
    return FHIRCLIENT_BUNDLE


# ------------------------------------------------------------------ Playwright + Debian Chromium


@pytest.fixture(scope="session")
def browser(fhirclient_js: Path, headless_browser: Any) -> Any:
    """The process's one headless Chromium (tests/conftest.py)."""
    return headless_browser


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A fresh browser context per test (no Telehub session cookie, no fhirclient sessionStorage)."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    pg.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    pg.console_log = console  # shown by the tests when an assertion fails
    try:
        yield pg
    finally:
        with contextlib.suppress(Exception):
            context.close()
