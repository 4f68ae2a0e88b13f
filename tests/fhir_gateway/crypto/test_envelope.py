"""EnvelopeCodec: AES-256-GCM bodies bound to their row; every failure is a bare DataIntegrityError."""
from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update

from fhir_gateway.app import create_app
from fhir_gateway.crypto.envelope import HEADER_SIZE, MAGIC, EnvelopeCodec, is_envelope, key_version
from fhir_gateway.crypto.keyring import KeyRing
from fhir_gateway.crypto.kms import FileKms
from fhir_gateway.crypto.rotation import rotate
from fhir_gateway.errors import DataIntegrityError
from fhir_gateway.storage.codec import BodyCodec, CompressingCodec, associated_data
from fhir_gateway.storage.engine import make_engine
from fhir_gateway.storage.migrate import upgrade
from fhir_gateway.storage.tables import resource, resource_version
from tests.fhir_gateway.conftest import Fhir, make_settings, patient

GENERIC = DataIntegrityError().diagnostics


@pytest.fixture
def kms(tmp_path: Path) -> FileKms:
    path = tmp_path / "kek.key"
    path.write_bytes(base64.b64encode(os.urandom(32)))
    return FileKms.from_file(path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def keyring(engine: Engine, kms: FileKms) -> KeyRing:
    ring = KeyRing(engine, kms)
    ring.ensure()
    return ring


@pytest.fixture
def codec(keyring: KeyRing) -> EnvelopeCodec:
    return EnvelopeCodec(keyring)


AAD = associated_data("Patient", "p1", 1)
BODY: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Quixotl", "given": ["Zebediah"]}],
                        "birthDate": "1961-07-04", "telecom": [{"system": "phone", "value": "555-0199"}]}


def synthea_sample(shared_data: Path, per_type: int = 25) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((shared_data / "synthea/small/ndjson").glob("*.ndjson")):
        with path.open("rb") as fh:
            out.extend(orjson.loads(line) for line in islice(fh, per_type))
    return out


def test_implements_the_body_codec_seam(codec: EnvelopeCodec) -> None:
    seam: BodyCodec = codec
    assert seam.decode(seam.encode(BODY, AAD), AAD) == BODY


def test_round_trip_synthea(codec: EnvelopeCodec, shared_data: Path) -> None:
    sample = synthea_sample(shared_data)
    assert len(sample) > 200
    for res in sample:
        aad = associated_data(res["resourceType"], res["id"], 1)
        blob = codec.encode(res, aad)
        assert is_envelope(blob)
        assert codec.decode(blob, aad) == res


def test_blob_layout_and_no_plaintext(codec: EnvelopeCodec, keyring: KeyRing) -> None:
    a, b = codec.encode(BODY, AAD), codec.encode(BODY, AAD)
    assert a[:2] == MAGIC and a[2] == 1
    assert key_version(a) == keyring.active_version()
    assert a[8:20] != b[8:20] and a != b  # fresh random nonce per encryption
    for secret in (b"Quixotl", b"Zebediah", b"1961-07-04", b"555-0199", b"Patient", b"p1"):
        assert secret not in a
    assert len(a) < len(orjson.dumps(BODY)) + HEADER_SIZE + 16 + 20  # compressed before encryption


@pytest.mark.parametrize("other", [associated_data("Patient", "p2", 1), associated_data("Patient", "p1", 2),
                                   associated_data("Person", "p1", 1), b""])
def test_body_bound_to_its_row(codec: EnvelopeCodec, other: bytes) -> None:
    blob = codec.encode(BODY, AAD)
    with pytest.raises(DataIntegrityError) as info:
        codec.decode(blob, other)
    assert info.value.diagnostics == GENERIC
    assert info.value.status == 500 and info.value.code == "security"


def test_every_tampered_byte_is_detected(codec: EnvelopeCodec) -> None:
    blob = codec.encode(BODY, AAD)
    for i in range(len(blob)):  # header (flags, key version, nonce), ciphertext and tag alike
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DataIntegrityError) as info:
            codec.decode(bytes(tampered), AAD)
        assert info.value.diagnostics == GENERIC


@pytest.mark.parametrize("garbage", [b"", b"TE", b"TE\x01", b"TE\x01\x01" + b"\x00" * 40, os.urandom(80),
                                     orjson.dumps(BODY), CompressingCodec().encode(BODY, AAD)],
                         ids=["empty", "magic", "prefix", "zero-key", "random", "json", "zlib-json"])
def test_garbage_and_plaintext_are_refused(codec: EnvelopeCodec, garbage: bytes) -> None:
    with pytest.raises(DataIntegrityError) as info:
        codec.decode(garbage, AAD)
    assert info.value.diagnostics == GENERIC


def test_truncated_and_extended_blobs_are_refused(codec: EnvelopeCodec) -> None:
    blob = codec.encode(BODY, AAD)
    for bad in (blob[:-1], blob[:HEADER_SIZE + 16], blob + b"\x00"):
        with pytest.raises(DataIntegrityError):
            codec.decode(bad, AAD)


def test_unknown_key_version_is_refused_without_naming_it(codec: EnvelopeCodec) -> None:
    blob = codec.encode(BODY, AAD)
    forged = blob[:4] + struct.pack(">I", 999) + blob[8:]
    with pytest.raises(DataIntegrityError) as info:
        codec.decode(forged, AAD)
    assert "999" not in str(info.value) and info.value.diagnostics == GENERIC


def test_memoryview_blobs_decode(codec: EnvelopeCodec) -> None:
    blob = codec.encode(BODY, AAD)
    assert codec.decode(memoryview(blob), AAD) == BODY  # type: ignore[arg-type]


def test_threads_share_one_codec_across_a_rotation(engine: Engine, keyring: KeyRing, codec: EnvelopeCodec) -> None:
    def work(i: int) -> int:
        aad = associated_data("Observation", str(i), 1)
        body = {"resourceType": "Observation", "id": str(i), "status": "final"}
        blob = codec.encode(body, aad)
        assert codec.decode(blob, aad) == body
        return key_version(blob) or 0

    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(work, range(200)))
        rotate(engine, keyring)
        second = list(pool.map(work, range(200, 400)))
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] < second[0]


# ------------------------------------------------------------------ through the whole server

def _bodies(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return [bytes(b) for t in (resource, resource_version)
                for b in conn.execute(select(t.c.body).where(t.c.body.is_not(None))).scalars()]


def test_server_stores_ciphertext_and_refuses_swapped_rows(database_url: str, engine: Engine,
                                                           keyring: KeyRing) -> None:
    app = create_app(make_settings(database_url), keyring=keyring)
    fhir = Fhir(app.test_client())
    try:
        a = fhir.create(patient("Vandersloot", "Ignatius", birthDate="1933-02-17"))
        b = fhir.create(patient("Okonkwo-Ruiz", "Philippa"))
        c = fhir.create(patient("Untouched", "Ursula"))
        a2 = fhir.put(f"Patient/{a['id']}", {**a, "gender": "other"}).get_json()
        assert a2["meta"]["versionId"] == "2"
        for blob in _bodies(engine):
            assert is_envelope(blob)
            for secret in (b"Vandersloot", b"Ignatius", b"1933-02-17", b"Okonkwo", b"Philippa"):
                assert secret not in blob

        with engine.begin() as conn:  # swap the current bodies of a and b
            rows = {r.fid: bytes(r.body) for r in conn.execute(
                select(resource.c.fid, resource.c.body).where(resource.c.fid.in_([a["id"], b["id"]])))}
            for fid, other in ((a["id"], b["id"]), (b["id"], a["id"])):
                conn.execute(update(resource).where(resource.c.fid == fid).values(body=rows[other]))
            # and put version 1 of a into the slot of its version 2 (same resource, another version)
            v1 = conn.execute(select(resource_version.c.body).where(
                resource_version.c.fid == a["id"], resource_version.c.version == 1)).scalar_one()
            conn.execute(update(resource_version).where(resource_version.c.fid == a["id"],
                                                        resource_version.c.version == 2).values(body=v1))

        for path in (f"Patient/{a['id']}", f"Patient/{b['id']}", f"Patient/{a['id']}/_history/2"):
            resp = fhir.get(path)
            assert resp.status_code == 500, path
            outcome = resp.get_json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert outcome["issue"][0]["code"] == "security"
            answer = resp.get_data(as_text=True)
            for word in ("Vandersloot", "Ignatius", "Okonkwo", "Philippa", "1933"):
                assert word not in answer

        # the rest of the server keeps working
        assert fhir.get(f"Patient/{c['id']}").get_json()["name"][0]["family"] == "Untouched"
        assert fhir.get(f"Patient/{a['id']}/_history/1").status_code == 200
        assert fhir.create(patient("After", "Wards"))["meta"]["versionId"] == "1"
    finally:
        app.extensions["telehub.fhir"].repository.engine.dispose()
