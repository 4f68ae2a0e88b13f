"""One-time patient join links: an opaque token (no PHI in the URL), expiring, bound to one device.

Only SHA-256 hashes are stored, as an ``Appointment.identifier`` (so the hub finds the visit by the
hash) and an extension holding the expiry and, after first use, the hash of a device secret that the
browser keeps in an HttpOnly cookie. Binding is an If-Match update: of two devices racing to open
the same link, one wins; the other is refused. Issuing a new link replaces the old one.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smart_app.visits.errors import LinkRefused, VisitConflict
from smart_app.visits.ports import FhirPort, Resource, etag, http_status

LINK_SYSTEM = "https://telehub.local/fhir/NamingSystem/visit-join-link-sha256"
LINK_EXT = "https://telehub.local/fhir/StructureDefinition/visit-join-link"
OVER = frozenset({"fulfilled", "noshow", "cancelled", "entered-in-error"})


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Redeemed:
    appointment: Resource
    new_device_secret: str | None  # set on first use: the caller stores it in the device cookie


def _strip(appt: Resource) -> Resource:
    out = copy.deepcopy(appt)
    out["identifier"] = [i for i in out.get("identifier", []) if i.get("system") != LINK_SYSTEM]
    out["extension"] = [e for e in out.get("extension", []) if e.get("url") != LINK_EXT]
    return out


def _update(hub: FhirPort, body: Resource, current: Resource) -> Resource:
    try:
        return hub.update(body, if_match=etag(current))
    except Exception as exc:
        if http_status(exc) in (409, 412):
            raise VisitConflict("the visit changed meanwhile; try again") from None
        raise


def issue(hub: FhirPort, appointment_id: str, *, now: datetime, ttl: timedelta) -> str:
    """Create a fresh link token for the visit (the old one stops working); return the raw token once."""
    token = secrets.token_urlsafe(32)
    appt = hub.get(f"Appointment/{appointment_id}")
    body = _strip(appt)
    body["identifier"].append({"system": LINK_SYSTEM, "value": digest(token)})
    body["extension"].append({"url": LINK_EXT, "extension": [
        {"url": "expires", "valueDateTime": (now + ttl).isoformat(timespec="seconds")}]})
    _update(hub, body, appt)
    return token


def _find(hub: FhirPort, token: str) -> Resource:
    found = hub.search("Appointment", {"identifier": f"{LINK_SYSTEM}|{digest(token)}"}) if token else []
    if len(found) != 1:
        raise LinkRefused("this link is not valid; ask the clinic for a new one")
    return found[0]


def _parts(appt: Resource) -> dict[str, str]:
    ext: dict[str, Any] = next((e for e in appt.get("extension", []) if e.get("url") == LINK_EXT), {"extension": []})
    return {e["url"]: e.get("valueDateTime") or e.get("valueString", "") for e in ext["extension"]}


def redeem(hub: FhirPort, token: str, device_secret: str | None, *, now: datetime, bind: bool = True) -> Redeemed:
    """Check the link (and the device); bind the device on first use (unless ``bind`` is False)."""
    appt = _find(hub, token)
    if datetime.fromisoformat(_parts(appt)["expires"]) <= now:
        raise LinkRefused("this link has expired; ask the clinic for a new one")
    if appt["status"] in OVER:
        raise LinkRefused("this visit is over")
    for _ in range(3):  # a concurrent visit transition may bump the version: re-read and retry
        bound = _parts(appt).get("device")
        if bound:
            if not device_secret or not hmac.compare_digest(bound, digest(device_secret)):
                raise LinkRefused("this link was already opened on another device")
            return Redeemed(appt, None)
        if not bind:
            raise LinkRefused("open the link itself first")
        secret = secrets.token_urlsafe(32)
        body = copy.deepcopy(appt)
        ext = next(e for e in body["extension"] if e.get("url") == LINK_EXT)
        ext["extension"].append({"url": "device", "valueString": digest(secret)})
        try:
            return Redeemed(_update(hub, body, appt), secret)
        except VisitConflict:
            appt = _find(hub, token)
    raise LinkRefused("this link is busy; try again")


def revoke(hub: FhirPort, appointment_id: str) -> None:
    appt = hub.get(f"Appointment/{appointment_id}")
    _update(hub, _strip(appt), appt)

