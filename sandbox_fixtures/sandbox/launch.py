"""EHR launch from the sandbox: the launch context the hub stores, and where the browser goes next.

SMART App Launch 2.2 "EHR launch": the EHR creates an opaque ``launch`` bound to its context and opens
``launch_uri?iss={fhir base}&launch={id}`` (https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch).
The flavour changes the ``iss`` (Cerner's tenant in the path, athena's global base) and what the token
response adds (:mod:`.token_shim`); the stored context itself is plain SMART.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sandbox_fixtures.sandbox.flavours import Flavour


@dataclass(frozen=True)
class LaunchChoice:
    """What the user picked on the sandbox page."""

    practitioner: str
    patient: str
    encounter: str | None
    flavour: str
    client_id: str
    need_patient_banner: bool = True
    intent: str | None = None


def launch_context(choice: LaunchChoice, flavour: Flavour, style_url: str | None) -> dict[str, Any]:
    """The body of POST {base}/auth/launch (validated again by the hub)."""
    context: dict[str, Any] = {"patient": choice.patient, "fhirUser": f"Practitioner/{choice.practitioner}",
                               "need_patient_banner": choice.need_patient_banner}
    if choice.encounter:
        context["encounter"] = choice.encounter
    if style_url:
        context["smart_style_url"] = style_url
    if choice.intent:
        context["intent"] = choice.intent
    if flavour.practice_ref:  # athena-style practice context, as a SMART fhirContext reference (imitation)
        context["fhirContext"] = [{"reference": flavour.practice_ref, "role": "https://fhir.athena.io/ah-practice"}]
    return context


def app_launch_url(launch_uri: str, iss: str, launch: str) -> str:
    """``launch_uri`` with ``iss`` and ``launch`` added to any query it already has."""
    parts = urlsplit(launch_uri)
    query = "&".join(q for q in (parts.query, urlencode({"iss": iss, "launch": launch})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
