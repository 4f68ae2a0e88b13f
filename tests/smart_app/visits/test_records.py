"""Consent, join links, chat, shared documents and the summary, written to the in-process hub."""
from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from smart_app.visits import consent, documents, join_links
from smart_app.visits.errors import ConsentRequired, InvalidTransition, LinkRefused, ProviderRefused, VisitError
from smart_app.visits.ports import Actor
from smart_app.visits.service import VisitService
from smart_app.visits.states import Event
from smart_app.visits.video.local import LocalWebRTCProvider
from tests.smart_app.visits.conftest import Clock


def test_treatment_consent_is_timestamped_versioned_and_idempotent(service: VisitService, hub: Any,
                                                                   ids: dict[str, str], patient: Actor) -> None:
    first = service.give_treatment_consent(ids["visit"], patient)
    again = service.give_treatment_consent(ids["visit"], patient)
    assert first["id"] == again["id"]
    assert first["dateTime"] == service.now().isoformat(timespec="seconds")
    assert first["policy"] == [{"uri": consent.policy_uri(consent.TREATMENT, "2026-01")}]
    assert first["patient"]["reference"] == f"Patient/{ids['patient']}"
    assert not consent.has_treatment_consent(hub, ids["patient"], "2027-01")  # a new policy asks again


def test_only_the_patient_consents(service: VisitService, ids: dict[str, str], provider: Actor) -> None:
    with pytest.raises(ConsentRequired):
        service.give_treatment_consent(ids["visit"], provider)


def _start(service: VisitService, ids: dict[str, str], patient: Actor, provider: Actor) -> None:
    service.fire(ids["visit"], Event.ARRIVE, patient)
    service.give_treatment_consent(ids["visit"], patient)
    service.fire(ids["visit"], Event.ADMIT, provider)


def test_recording_refused_without_the_visit_recording_consent(service: VisitService, hub: Any,
                                                               ids: dict[str, str], patient: Actor,
                                                               provider: Actor) -> None:
    _start(service, ids, patient, provider)
    assert service.snapshot(service.load(ids["visit"]))["recordingConsent"] is False
    with pytest.raises(ConsentRequired):
        service.start_recording(ids["visit"], provider)
    other = hub.create({k: v for k, v in hub.get(f"Appointment/{ids['visit']}").items() if k not in ("id", "meta")})
    consent.record_recording_consent(hub, ids["patient"], other["id"], "2026-01", service.now())
    with pytest.raises(ConsentRequired):  # consent for another visit does not count
        service.start_recording(ids["visit"], provider)
    service.give_recording_consent(ids["visit"], patient)
    with pytest.raises(InvalidTransition):  # nothing to store before the start was accepted
        service.save_recording(ids["visit"], provider, content_type="video/webm", data=b"webm")
    service.start_recording(ids["visit"], provider)
    assert service.snapshot(service.load(ids["visit"]))["recording"] is True
    with pytest.raises(InvalidTransition):
        service.save_recording(ids["visit"], patient, content_type="video/webm", data=b"webm")
    with pytest.raises(VisitError):
        service.save_recording(ids["visit"], provider, content_type="text/html", data=b"<p>")
    media = service.save_recording(ids["visit"], provider, content_type="video/webm;codecs=vp8", data=b"webm")
    enc = service.load(ids["visit"]).encounter or {}
    assert media["encounter"] == {"reference": f"Encounter/{enc['id']}"}
    assert media["content"]["contentType"] == "video/webm" and media["status"] == "completed"
    binary = hub.get(media["content"]["url"].split("/_history/")[0].split("/fhir/")[-1])
    assert base64.b64decode(binary["data"]) == b"webm"


def test_recording_refused_when_the_provider_cannot_record(service: VisitService, ids: dict[str, str],
                                                           patient: Actor, provider: Actor) -> None:
    service.video = LocalWebRTCProvider(recording=False)
    _start(service, ids, patient, provider)
    service.give_recording_consent(ids["visit"], patient)
    with pytest.raises(ProviderRefused):
        service.start_recording(ids["visit"], provider)


def test_join_link_is_opaque_hashed_expiring_and_single_device(hub: Any, ids: dict[str, str],
                                                               clock: Clock) -> None:
    token = join_links.issue(hub, ids["visit"], now=clock.now, ttl=timedelta(hours=1))
    assert ids["visit"] not in token and ids["patient"] not in token and len(token) >= 40
    stored = hub.get(f"Appointment/{ids['visit']}")
    assert token not in str(stored) and join_links.digest(token) in str(stored)
    first = join_links.redeem(hub, token, None, now=clock.now)
    assert first.new_device_secret and first.appointment["id"] == ids["visit"]
    assert first.new_device_secret not in str(hub.get(f"Appointment/{ids['visit']}"))
    again = join_links.redeem(hub, token, first.new_device_secret, now=clock.now)
    assert again.new_device_secret is None
    with pytest.raises(LinkRefused):
        join_links.redeem(hub, token, None, now=clock.now)  # another device
    with pytest.raises(LinkRefused):
        join_links.redeem(hub, token, "guess", now=clock.now)
    with pytest.raises(LinkRefused):
        join_links.redeem(hub, token, first.new_device_secret, now=clock.now + timedelta(hours=1))
    with pytest.raises(LinkRefused):
        join_links.redeem(hub, "not-a-token", None, now=clock.now)
    newer = join_links.issue(hub, ids["visit"], now=clock.now, ttl=timedelta(hours=1))
    with pytest.raises(LinkRefused):
        join_links.redeem(hub, token, first.new_device_secret, now=clock.now)  # replaced
    assert join_links.redeem(hub, newer, None, now=clock.now).new_device_secret


def test_chat_documents_and_summary(service: VisitService, hub: Any, ids: dict[str, str], patient: Actor,
                                    provider: Actor) -> None:
    _start(service, ids, patient, provider)
    service.send_chat(ids["visit"], patient, "Can you see me?")
    service.send_chat(ids["visit"], provider, "Yes, clearly.")
    with pytest.raises(VisitError):
        service.send_chat(ids["visit"], patient, "   ")
    enc_id = service.load(ids["visit"]).encounter["id"]  # type: ignore[index]
    msgs = hub.search("Communication", {"encounter": f"Encounter/{enc_id}"})
    assert sorted(m["sender"]["reference"] for m in msgs) == sorted(
        [f"Patient/{ids['patient']}", f"Practitioner/{ids['practitioner']}"])
    doc = service.share_document(ids["visit"], provider, kind="care-plan", title="Plan", content_type="text/plain",
                                 data=b"rest and fluids")
    assert doc["context"]["encounter"] == [{"reference": f"Encounter/{enc_id}"}]
    assert documents.read_binary(hub, doc) == ("text/plain", b"rest and fluids")
    with pytest.raises(VisitError):
        service.share_document(ids["visit"], patient, kind="other", title="x", content_type="application/x-sh",
                               data=b"#!")
    audits = hub.search("AuditEvent", {"entity": f"Binary/{documents.binary_id(doc)}"})
    assert audits, "the hub audits the shared document"
    service.fire(ids["visit"], Event.FINISH, provider)
    summaries = hub.search("DocumentReference", {"patient": f"Patient/{ids['patient']}", "type": "34133-9"})
    assert len(summaries) == 1
    text = base64.b64decode(summaries[0]["content"][0]["attachment"]["data"]).decode()
    assert "Chat messages: 2" in text and "Documents shared: 1" in text
    with pytest.raises(InvalidTransition):
        service.send_chat(ids["visit"], patient, "still there?")
