"""The MLLP listener in-process: several messages per connection, concurrent connections, TLS."""
from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir_gateway.hl7.ack import ack_code_of
from fhir_gateway.hl7.client import MllpClient
from fhir_gateway.hl7.ingest import Ingestor
from fhir_gateway.hl7.mllp import frame
from fhir_gateway.hl7.server import ListenerConfig, MllpServer
from tests.fhir_gateway.hl7.conftest import adt


class Running:
    def __init__(self, ingestor: Ingestor, config: ListenerConfig) -> None:
        self.server = MllpServer(ingestor.handle, config)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            self._stop = asyncio.Event()
            srv = await self.server.start()
            started.set()
            async with srv:
                await self._stop.wait()
                await self.server.aclose()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running(sqlite_ingestor: Ingestor) -> Iterator[Running]:
    r = Running(sqlite_ingestor, ListenerConfig(port=0, threads=4))
    yield r
    r.close()


def test_several_messages_on_one_connection_in_order(running: Running) -> None:
    with MllpClient("127.0.0.1", running.server.port) as client:
        codes = [ack_code_of(client.send(adt(f"C-{n}", f"M{n}"))) for n in range(5)]
        assert codes == ["AA"] * 5
        client.sock.sendall(frame(adt("C-10", "M10")) + frame(adt("C-11", "M11")))  # pipelined
        acks = [client.receive(), client.receive()]
    assert [a.split(b"MSA|")[1][:7] for a in acks] == [b"AA|C-10", b"AA|C-11"]


def test_concurrent_connections(running: Running) -> None:
    def one_sender(n: int) -> list[str | None]:
        with MllpClient("127.0.0.1", running.server.port) as client:
            return [ack_code_of(client.send(adt(f"C-{j}", f"M{n}-{j}", sender=f"S{n}"))) for j in range(5)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_sender, range(8)))
    assert results == [["AA"] * 5] * 8
    assert running.server.counts["AA"] == 40


def test_a_refused_message_gets_a_nak_and_the_connection_stays_usable(running: Running) -> None:
    with MllpClient("127.0.0.1", running.server.port) as client:
        nak = client.send(b"MSH|^~\\&|EHR|CLINIC|||20260101||ZZZ^Z01|C-1|P|2.5.1\r")
        assert ack_code_of(nak) == "AR" and b"\rERR|" in nak
        assert ack_code_of(client.send(adt("C-2", "M2"))) == "AA"


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_mllp_over_tls(sqlite_ingestor: Ingestor, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    r = Running(sqlite_ingestor, ListenerConfig(port=0, threads=2, tls_cert=cert, tls_key=key))
    try:
        ctx = ssl.create_default_context(cafile=cert)
        with MllpClient("127.0.0.1", r.server.port, tls=ctx, server_hostname="localhost") as client:
            assert client.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
            assert ack_code_of(client.send(adt("C-1", "M1"))) == "AA"
    finally:
        r.close()
