"""Production TLS: the real server (granian + the WSGI factory), started with infra/tls/granian-tls.env.

A TLS 1.0/1.1 client is refused by the server (a control server shows the same client can speak
TLS 1.1), legacy TLS 1.2 suites are refused, and TLS 1.2 and 1.3 clients are served /fhir/metadata.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
TLS_ENV = REPO / "infra" / "tls" / "granian-tls.env"
STARTUP_TIMEOUT_S = 60
V = ssl.TLSVersion


@dataclass(frozen=True)
class TlsServer:
    port: int
    cafile: Path
    cert: Path
    key: Path
    log: Path


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1/localhost and its PKCS#8 key (the format granian requires)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telehub test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pk8.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _shipped_tls_env() -> dict[str, str]:
    env = {}
    for line in TLS_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def client_context(minimum: ssl.TLSVersion, maximum: ssl.TLSVersion, cafile: Path,
                   ciphers: str = "DEFAULT:@SECLEVEL=0") -> ssl.SSLContext:
    """A verifying client pinned to a version range; SECLEVEL=0 lets our own OpenSSL offer TLS 1.0/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1/TLSv1_1 are deprecated
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> tuple[str | None, tuple[str, str, int] | None]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version(), tls.cipher()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop granian and its workers: the process group it leads (started with start_new_session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    work = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(work)
    kek = work / "kek.key"
    kek.write_bytes(base64.b64encode(os.urandom(32)))
    kek.chmod(0o600)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEHUB_", "GRANIAN_"))}
    env.update(_shipped_tls_env())
    env.update({
        "GRANIAN_SSL_CERTIFICATE": str(cert), "GRANIAN_SSL_KEYFILE": str(key),
        "TELEHUB_ENV": "test", "TELEHUB_AUTH": "off", "TELEHUB_DATABASE_URL": f"sqlite:///{work / 'hub.sqlite3'}",
        "TELEHUB_BASE_URL": f"https://127.0.0.1:{port}/fhir", "TELEHUB_KEK_FILE": str(kek),
    })
    assert env["GRANIAN_SSL_PROTOCOL_MIN"] == "tls1.2"
    log = work / "server.log"
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--blocking-threads", "2", "--no-ws", "--log-level", "warning",
            "fhir_gateway.wsgi:create"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ready = client_context(V.TLSv1_2, V.TLSv1_3, cert)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"granian exited with {proc.returncode}:\n{log.read_text()}")
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ready, timeout=10)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                finally:
                    conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"granian did not serve TLS within {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield TlsServer(port, cert, cert, key, log)
    finally:
        _stop(proc)


@contextlib.contextmanager
def _permissive_python_server(cert: Path, key: Path) -> Iterator[int]:
    """Control experiment: a plain Python ``ssl`` server that still allows TLS 1.0 and 1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = V.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn, ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(15)
        listener.close()


@pytest.mark.parametrize("version", [V.TLSv1, V.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_legacy_tls_client_is_refused_by_the_server(tls_server: TlsServer, version: ssl.TLSVersion) -> None:
    ctx = client_context(version, version, tls_server.cafile)
    with _permissive_python_server(tls_server.cert, tls_server.key) as control_port, \
            socket.create_connection(("127.0.0.1", control_port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() == {V.TLSv1: "TLSv1", V.TLSv1_1: "TLSv1.1"}[version]  # the client can speak it
        tls.send(b"x")
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(tls_server.port, ctx)
    # "…_ALERT_…": the server answered our ClientHello with a fatal alert (protocol_version/handshake_failure)
    assert "ALERT" in str(refused.value.reason), refused.value


def test_tls12_client_offering_only_legacy_suites_is_refused(tls_server: TlsServer) -> None:
    legacy = "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-SHA256:@SECLEVEL=0"
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(tls_server.port, client_context(V.TLSv1_2, V.TLSv1_2, tls_server.cafile, legacy))
    assert "ALERT" in str(refused.value.reason), refused.value


@pytest.mark.parametrize(("version", "name"), [(V.TLSv1_2, "TLSv1.2"), (V.TLSv1_3, "TLSv1.3")])
def test_modern_tls_clients_are_served(tls_server: TlsServer, version: ssl.TLSVersion, name: str) -> None:
    ctx = client_context(version, version, tls_server.cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", tls_server.port, context=ctx, timeout=30)
    try:
        conn.request("GET", "/fhir/metadata", headers={"Accept": "application/fhir+json"})
        resp = conn.getresponse()
        body = resp.read()
        assert isinstance(conn.sock, ssl.SSLSocket)
        negotiated, cipher = conn.sock.version(), conn.sock.cipher()
    finally:
        conn.close()
    assert resp.status == 200
    assert b'"CapabilityStatement"' in body
    assert negotiated == name
    assert cipher is not None and ("GCM" in cipher[0] or "CHACHA20" in cipher[0])  # AEAD only
    if version is V.TLSv1_2:
        assert cipher[0].startswith("ECDHE-")  # forward secrecy


def test_plain_http_on_the_tls_port_gets_no_http_response(tls_server: TlsServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw:
        raw.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            data = raw.recv(64)
        except OSError:
            data = b""
    assert not data.startswith(b"HTTP/")
