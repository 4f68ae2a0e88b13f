"""Per-clinic outbound interfaces (issue 6): where a clinic's engine listens and what its MSH says.

A TOML file (``TELEHUB_HL7_CLINICS``, or ``--clinics FILE``)::

    [clinics.north]
    destination = "10.1.2.3:2575"          # MLLP host:port
    version = "2.5.1"                      # 2.5.1 (default), 2.6 or 2.8
    sending_application = "TELEHUB"
    sending_facility = "TELEHUB"
    receiving_application = "EPIC"
    receiving_facility = "NORTH"
    namespaces = { "urn:oid:1.2.3" = "NORTH_MRN" }   # identifier system -> CX-4 namespace

:func:`enqueue_change` is what a write hook calls inside the transaction that stored the
change, so a message is queued exactly when its change commits.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from fhir_gateway.hl7.ack import control_id, timestamp
from fhir_gateway.hl7.client import parse_destination
from fhir_gateway.hl7.outbound_queue import OutboundQueue
from mappers.hl7v2.outbound import Change, OutboundConfig, build_messages


@dataclass(frozen=True)
class Clinic:
    name: str
    destination: str
    config: OutboundConfig


def load_clinics(path: str | Path) -> dict[str, Clinic]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    clinics: dict[str, Clinic] = {}
    for name, values in (data.get("clinics") or {}).items():
        if not isinstance(values, dict) or "destination" not in values:
            raise ValueError(f"clinic {name!r} needs a destination (host:port)")
        settings: dict[str, Any] = dict(values)
        destination = str(settings.pop("destination"))
        parse_destination(destination)
        clinics[name] = Clinic(name, destination, OutboundConfig.from_mapping(settings))
    return clinics


def enqueue_change(conn: Connection, queue: OutboundQueue, clinic: Clinic, change: Change) -> list[str]:
    """Queue every v2 message this change calls for (none for most); returns the queued ids."""
    messages = build_messages(change, clinic.config, control_id=control_id(), now=timestamp())
    return [queue.enqueue(conn, clinic.destination, m.encode(), event=m.event, control_id=m.control_id)
            for m in messages]
