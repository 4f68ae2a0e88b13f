"""One inbound message → one durable outcome → the ACK to send back.

Crash-safety (issue 6, "ACK only after commit"): for a message that maps, ONE database
transaction inserts the inbox row (unique on sender + control id), applies the FHIR
Bundle through the gateway's own transaction path (the code behind ``POST /fhir``) and
appends the AuditEvent; only after it commits is AA returned. A crash before the commit
leaves nothing and no ACK, so the sender re-sends and it is applied then; a crash after
the commit but before the ACK left the inbox row, so the re-sent message is recognised
and acknowledged without being applied again. A message that cannot be mapped, or that
the store refuses, is committed byte for byte to the dead letters before its AE/AR goes out.

Per-sender ordering: messages of one sender are applied one at a time, in the order they
are handed in (a thread lock per sender; on PostgreSQL also a transaction-scoped advisory
lock, for listeners in several processes).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from fhir_gateway.access import RequestContext
from fhir_gateway.audit.events import AuditInput, entities_from_response
from fhir_gateway.errors import FhirError
from fhir_gateway.hl7.ack import Header, build_ack
from fhir_gateway.hl7.header import event_name, header_of, sender_of
from fhir_gateway.hl7.sealing import seal
from fhir_gateway.hl7.tables import hl7_dead_letter, hl7_inbox
from fhir_gateway.rest.context import FhirServices, Interaction
from fhir_gateway.rest.messages import FhirRequest
from fhir_gateway.rest.transaction import process_bundle
from mappers.hl7v2 import HL7v2Error, convert, parse
from mappers.hl7v2.errors import MappingError
from mappers.hl7v2.parser import Message

log = logging.getLogger("telehub.hl7")
HL7_CLIENT = "telehub-hl7"


@dataclass(frozen=True)
class Outcome:
    """What happened to one message, for the ACK and for PHI-free logs and counters."""

    code: str  # AA | AE | AR
    ack: bytes
    duplicate: bool = False
    dead_letter: str | None = None


class StoreRefused(HL7v2Error):
    """The FHIR store refused the Bundle (validation, an unresolvable conditional reference, …)."""

    ack_code = "AE"
    error_code = "207"


class DuplicateMismatch(HL7v2Error):
    """A control id this sender already used, with different content."""

    ack_code = "AR"
    error_code = "205"


def now_us() -> int:
    return time.time_ns() // 1000


class Ingestor:
    """Applies inbound messages to the FHIR store; safe to call from many threads."""

    def __init__(self, services: FhirServices) -> None:
        self.services = services
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # conditional keys a committed transaction created or matched: they exist now, so a concurrent
        # transaction cannot create them twice and needs no lock on them (see conditional_keys)
        self._existing: set[int] = set()

    def _lock(self, sender: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sender, threading.Lock())

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, raw: bytes, peer: str | None = None, *, dead_letter: str | None = None) -> Outcome:
        """Apply one message and return its ACK. ``dead_letter``: the row being replayed (updated in place)."""
        try:
            msg = parse(raw)
        except HL7v2Error as exc:
            return self._refuse(raw, Header(), "", "", exc, dead_letter)
        header = header_of(msg)
        sender = sender_of(header)
        with self._lock(sender):
            return self._handle(raw, msg, header, sender, peer, dead_letter)

    def _handle(self, raw: bytes, msg: Message, header: Header, sender: str, peer: str | None,
                dead_letter: str | None) -> Outcome:
        event = event_name(msg)
        if not header.control_id:
            return self._refuse(raw, header, sender, event, MappingError(
                "MSH-10 (message control id) is empty", segment="MSH", sequence=1, field=10), dead_letter)
        try:
            bundle = convert(msg).bundle
        except HL7v2Error as exc:
            return self._refuse(raw, header, sender, event, exc, dead_letter)
        digest = hashlib.sha256(raw).hexdigest()
        try:
            outcome = self._apply(raw, bundle, header, sender, event, digest, peer, dead_letter)
        except IntegrityError:  # another listener process committed the same (sender, control id) first
            try:
                outcome = self._duplicate(header, sender, digest)
            except DuplicateMismatch as exc:
                return self._refuse(raw, header, sender, event, exc, dead_letter)
        except DuplicateMismatch as exc:
            return self._refuse(raw, header, sender, event, exc, dead_letter)
        except FhirError as exc:
            where = ",".join(e for e in exc.expression if not e.startswith("Bundle"))[:60]
            reason = f"the FHIR store refused the Bundle: {exc.status} {exc.code}" + (f" at {where}" if where else "")
            return self._refuse(raw, header, sender, event, StoreRefused(reason), dead_letter)
        return outcome

    # -- the one transaction -------------------------------------------------------------------
    def _apply(self, raw: bytes, bundle: dict[str, Any], header: Header, sender: str, event: str, digest: str,
               peer: str | None, dead_letter: str | None = None) -> Outcome:
        svc = self.services
        repo = svc.repository
        with repo.transaction(write=True) as conn:
            keys = conditional_keys(bundle)
            if conn.dialect.name == "postgresql":
                for key in [_lock_key(sender), *(k for k in keys if k not in self._existing)]:
                    conn.execute(_ADVISORY_LOCK, {"k": key})
            seen = conn.execute(select(hl7_inbox.c.digest).where(
                hl7_inbox.c.sender == sender, hl7_inbox.c.control_id == header.control_id)).first()
            if seen is not None:
                return self._duplicate_outcome(header, seen.digest == digest)
            conn.execute(insert(hl7_inbox).values(
                sender=sender, control_id=header.control_id, event=event, received=now_us(), digest=digest,
                raw=seal(repo.codec, raw, "hl7_inbox", f"{sender}/{header.control_id}")))
            ctx = RequestContext(client_id=HL7_CLIENT, role="integration", ip=peer,
                                 request_id=f"hl7:{header.control_id}"[:64])
            it = Interaction(svc, conn, ctx)
            response = process_bundle(it, FhirRequest("POST", "", body=bundle, headers={"prefer": "return=minimal"}))
            if svc.audit is not None:
                refs, patients = entities_from_response(response.body)
                patients.update(r.split("/")[1] for r in refs if r.startswith("Patient/"))
                svc.audit.append(conn, AuditInput(
                    interaction="batch/transaction", status=200, ctx=ctx, entities=refs, patients=patients,
                    description=f"HL7 v2 {event} applied"))
            if dead_letter is not None:
                _update_dead_letter(conn, dead_letter, status="replayed")
        if len(self._existing) > 1_000_000:
            self._existing.clear()
        self._existing.update(keys)
        return Outcome("AA", build_ack(header, "AA"))

    def _duplicate(self, header: Header, sender: str, digest: str) -> Outcome:
        with self.services.repository.transaction() as conn:
            seen = conn.execute(select(hl7_inbox.c.digest).where(
                hl7_inbox.c.sender == sender, hl7_inbox.c.control_id == header.control_id)).first()
        return self._duplicate_outcome(header, seen is not None and seen.digest == digest)

    @staticmethod
    def _duplicate_outcome(header: Header, same: bool) -> Outcome:
        """Raises (rolling back the open transaction) when the control id came with other content."""
        if not same:
            raise DuplicateMismatch("this control id was already used by this sender for a different message",
                                    segment="MSH", sequence=1, field=10)
        log.info("hl7 duplicate control id from a known sender acknowledged without re-applying")
        return Outcome("AA", build_ack(header, "AA"), duplicate=True)

    # -- refusals ------------------------------------------------------------------------------
    def _refuse(self, raw: bytes, header: Header, sender: str, event: str, exc: HL7v2Error,
                dead_letter: str | None = None) -> Outcome:
        """Keep the message byte for byte, then answer AE/AR with an ERR naming the problem."""
        dl_id = dead_letter or uuid.uuid4().hex
        code = exc.ack_code
        try:
            with self.services.repository.transaction(write=True) as conn:
                if dead_letter is not None:
                    _update_dead_letter(conn, dead_letter, status="open", exc=exc)
                else:
                    store_dead_letter(conn, self.services, dl_id, raw, header, sender, event, exc)
        except Exception:  # the database is unreachable: AR tells the sender to try again later
            log.exception("hl7 dead letter could not be stored; answering AR so the sender retries")
            code = "AR"
            dl_id = ""
        log.warning("hl7 %s %s refused (%s %s at %s)", event or "message", header.control_id[:40] or "-",
                    code, exc.error_code, exc.location or "-")
        return Outcome(code, build_ack(header, code, exc), dead_letter=dl_id or None)


def store_dead_letter(conn: Connection, svc: FhirServices, dl_id: str, raw: bytes, header: Header, sender: str,
                      event: str, exc: HL7v2Error) -> None:
    now = now_us()
    conn.execute(insert(hl7_dead_letter).values(
        id=dl_id, sender=sender, control_id=header.control_id[:199], event=event or "?", received=now,
        ack_code=exc.ack_code, error_code=exc.error_code, location=exc.location[:64], reason=exc.reason[:1000],
        status="open", attempts=1, updated=now, raw=seal(svc.repository.codec, raw, "hl7_dead_letter", dl_id)))


def _update_dead_letter(conn: Connection, dl_id: str, *, status: str, exc: HL7v2Error | None = None) -> None:
    values: dict[str, Any] = {"status": status, "updated": now_us(), "attempts": hl7_dead_letter.c.attempts + 1}
    if exc is not None:
        values.update(ack_code=exc.ack_code, error_code=exc.error_code, location=exc.location[:64],
                      reason=exc.reason[:1000])
    conn.execute(update(hl7_dead_letter).where(hl7_dead_letter.c.id == dl_id).values(**values))


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _lock_key(sender: str) -> int:
    """A signed 64-bit advisory-lock key for the sender (stable across processes)."""
    return zlib.crc32(sender.encode()) | 0x48_4C_37_00_0000_0000


def conditional_keys(bundle: dict[str, Any]) -> list[int]:
    """Advisory-lock keys for the Bundle's conditional entries, sorted (so two transactions never wait
    on each other in a cycle).

    On PostgreSQL two concurrent transactions may both search ``Practitioner?identifier=X``, find
    nothing and both create it; every later conditional match then fails with 412. Holding a lock
    on each conditional key until commit makes the second one search after the first committed
    (READ COMMITTED: each statement sees what committed before it). SQLite runs one writer at a time.
    """
    keys = set()
    for entry in bundle.get("entry") or ():
        request = entry.get("request") or {}
        url = str(request.get("url", ""))
        query = request.get("ifNoneExist") or (url.split("?", 1)[1] if "?" in url else None)
        if query:
            name = f"{url.split('?', 1)[0]}?{query}".encode()
            keys.add(int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True))
    return sorted(keys)

