"""An outside adapter without a BAA is refused PHI by the code, before any request leaves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from fhir_gateway.outbound import (
    KNOWN_ADAPTERS,
    AdapterRegistry,
    AdapterSpec,
    BaaAdapter,
    BaaRequired,
    NotPhiCapable,
    OutboundAdapter,
    PhiGuard,
    PhiRefused,
    sends_phi,
)
from fhir_gateway.settings import Settings

SECURITY_DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
SENDGRID = "https://api.sendgrid.com/v3/mail/send"
PHI_MESSAGE = {"to": "zebulon.quixotic@example.org", "subject": "Your HbA1c result: 9.1%"}


class EmailAdapter(BaaAdapter):
    """A notification adapter shaped like the real ones: PHI-free reminders always, results only under a BAA."""

    @sends_phi
    def send_result(self, message: dict[str, Any]) -> int:
        return requests.post(SENDGRID, json=message, timeout=5).status_code

    def send_reminder(self, to: str, portal_link: str, *, contains_phi: bool = False) -> int:
        PhiGuard.check(self, contains_phi=contains_phi, purpose="reminder")
        return requests.post(SENDGRID, json={"to": to, "body": portal_link}, timeout=5).status_code


def _adapter(name: str, settings: Settings | None = None) -> EmailAdapter:
    registry = AdapterRegistry.from_settings(settings or Settings())
    return EmailAdapter(registry.get(name))


@responses.activate
def test_non_baa_adapter_is_refused_phi_and_nothing_is_sent() -> None:
    responses.add(responses.POST, SENDGRID, status=202)
    adapter = _adapter("sendgrid")  # default: no BAA attested
    assert adapter.baa is False
    with pytest.raises(BaaRequired) as info:
        adapter.send_result(PHI_MESSAGE)
    assert len(responses.calls) == 0  # refused before any byte left the hub
    assert info.value.adapter == "sendgrid" and info.value.purpose == "send_result"
    assert "zebulon" not in str(info.value)  # the error names the adapter, never the PHI
    assert isinstance(info.value, PhiRefused) and isinstance(info.value, PermissionError)


@responses.activate
def test_baa_adapter_may_send_phi() -> None:
    responses.add(responses.POST, SENDGRID, status=202)
    adapter = _adapter("sendgrid", Settings(extra={"baa_signed": "sendgrid, aws-ses"}))
    assert adapter.send_result(PHI_MESSAGE) == 202
    assert len(responses.calls) == 1


@responses.activate
def test_phi_free_content_needs_no_baa_but_phi_does() -> None:
    responses.add(responses.POST, SENDGRID, status=202)
    adapter = _adapter("sendgrid")
    assert adapter.send_reminder("z@example.org", "https://portal.example/visits") == 202
    with pytest.raises(BaaRequired):
        adapter.send_reminder("z@example.org", "Dr Who at 3pm about your HIV test", contains_phi=True)
    assert len(responses.calls) == 1


def test_phi_free_adapters_are_refused_phi_even_with_a_baa() -> None:
    console = _adapter("console")
    with pytest.raises(NotPhiCapable):
        PhiGuard.require_baa(console)
    declared_free = EmailAdapter(AdapterSpec("link-only-sms", "notification", "x", phi_capable=False, baa=True))
    with pytest.raises(NotPhiCapable):
        declared_free.send_result(PHI_MESSAGE)


def test_hub_and_covered_entity_boundaries_need_no_baa() -> None:
    registry = AdapterRegistry()
    assert registry.may_receive_phi("local-webrtc") and registry.may_receive_phi("epic")
    for name in ("daily", "chime", "twilio-video", "twilio-sms", "aws-sns", "surescripts", "optum-medical-network"):
        assert not registry.may_receive_phi(name), name
    with pytest.raises(ValueError, match="needs no BAA"):
        AdapterRegistry(baa_signed=["local-webrtc"])


def test_any_object_with_the_three_facts_is_guarded() -> None:
    class Minimal:
        name = "acme-fax"
        baa = False
        phi_capable = True

        @sends_phi
        def fax(self, document: bytes) -> bool:
            raise AssertionError("must not be reached")

    assert isinstance(Minimal(), OutboundAdapter)
    with pytest.raises(BaaRequired, match="acme-fax"):
        Minimal().fax(b"%PDF")
    truthy = Minimal()
    truthy.baa = "yes"  # type: ignore[assignment]  # only the boolean True counts as an attested BAA
    with pytest.raises(BaaRequired):
        PhiGuard.require_baa(truthy)


def test_settings_name_only_known_adapters() -> None:
    with pytest.raises(ValueError, match="unknown outside adapter 'dailyco'"):
        AdapterRegistry.from_settings(Settings(extra={"baa_signed": ["daily", "dailyco"]}))
    with pytest.raises(ValueError, match="already registered"):
        AdapterRegistry([*KNOWN_ADAPTERS, KNOWN_ADAPTERS[0]])


def test_every_third_party_defaults_to_no_baa() -> None:
    for spec in KNOWN_ADAPTERS:
        assert spec.baa is False, spec.name  # a BAA is a contract the deployment attests, never a code default
        assert spec.sees and spec.notes, spec.name


def test_the_phi_boundary_document_lists_every_adapter() -> None:
    doc = SECURITY_DOC.read_text()
    for spec in KNOWN_ADAPTERS:
        assert f"`{spec.name}`" in doc, spec.name
