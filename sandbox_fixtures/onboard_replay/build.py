"""Rebuild the onboarding replay sets (``telehub onboard --replay DIR``) from sandbox_fixtures/recordings.

Run: ``python -m sandbox_fixtures.onboard_replay.build``. Each pair points at a recording by path
(nothing is copied); whatever is not a recording is marked ``"synthetic"`` in its note.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REC = HERE.parent / "recordings"

EPIC_BASE = "https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4"
EPIC_PATIENT = "eq081-VQEgP8drUUqCWzHfw3"
CERNER_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"
CERNER_BASE = f"https://fhir-open.cerner.com/r4/{CERNER_TENANT}"
ATHENA_BASE = "https://api.platform.athenahealth.com/fhir/r4"
CERNER_SCOPES = ["system/Patient.rs", "system/AllergyIntolerance.rs", "system/Condition.rs",
                 "system/DiagnosticReport.rs", "system/DocumentReference.rs", "system/Encounter.rs",
                 "system/Immunization.rs", "system/MedicationRequest.rs", "system/Observation.rs",
                 "system/Procedure.rs"]
ATHENA_SCOPES = [s.replace(".rs", ".read") for s in CERNER_SCOPES]


def rec(vendor: str, name: str) -> str:
    return f"../../recordings/{vendor}/{name}"


def load(vendor: str, name: str) -> Any:
    return json.loads((REC / vendor / name).read_text(encoding="utf-8"))


def pair(method: str, url: str, response: dict[str, Any], note: str) -> dict[str, Any]:
    return {"note": note, "request": {"method": method, "url": url}, "response": {"status": 200, **response}}


def capture(vendor: str, name: str) -> dict[str, Any]:
    data = load(vendor, name)
    return pair(data["_request"]["method"], data["_request"]["url"],
                {"status": data["_request"]["status"], "body_file": rec(vendor, name)},
                f"recorded: {vendor}/{name}")


def first_read(vendor: str, name: str, base: str) -> dict[str, Any] | None:
    """A read of the first match of a recorded searchset, answered with that entry's resource."""
    body = load(vendor, name)["body"]
    for i, entry in enumerate(body.get("entry") or []):
        res = entry.get("resource") or {}
        if (entry.get("search") or {}).get("mode", "match") == "match" and res.get("resourceType") != \
                "OperationOutcome" and res.get("id"):
            return pair("GET", f"{base}/{res['resourceType']}/{res['id']}",
                        {"body_file": rec(vendor, name), "pointer": f"/entry/{i}/resource"},
                        f"derived: entry {i} of the recorded searchset {vendor}/{name}, as the server sent it")
    return None


def manifest(lines: dict[str, str], note: str) -> str:
    return f"# {note}\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in lines.items())


def epic() -> tuple[str, list[dict[str, Any]]]:
    scopes = [line.strip() for line in (REC / "epic/backend-token-scope-response-2026-04-26.txt").read_text()
              .splitlines() if line.strip().startswith("system/")]
    pairs = [pair("GET", f"{EPIC_BASE}/.well-known/smart-configuration",
                  {"body_file": rec("epic", "smart-configuration_sandbox-r4.json")}, "recorded: smart-configuration"),
             pair("GET", f"{EPIC_BASE}/metadata",
                  {"body_file": rec("epic", "capabilitystatement_sandbox-r4_may2026.json")},
                  "recorded: CapabilityStatement May 2026"),
             pair("POST", "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token",
                  {"headers": {"Content-Type": "application/json"},
                   "json": {"access_token": "replayed-opaque-token", "token_type": "Bearer", "expires_in": 3600,
                            "scope": " ".join(scopes)}},
                  "synthetic envelope: the recorded backend-token scope list "
                  "(backend-token-scope-response-2026-04-26.txt); token value made up, opaque as Epic's"),
             capture("epic", f"patient-{EPIC_PATIENT}.json")]
    for name in (f"allergyintolerance-{EPIC_PATIENT}.json", "condition-problems.json",
                 f"documentreference-{EPIC_PATIENT}.json", f"encounter-{EPIC_PATIENT}.json", "medicationrequest.json",
                 "observation-lab.json", "procedure.json"):
        pairs.append(capture("epic", name))
        read = first_read("epic", name, EPIC_BASE)
        if read:
            pairs.append(read)
    pairs.append(capture("epic", "error-request-unsupported-resource-type.json"))
    return manifest({"base_url": EPIC_BASE, "tenant": "epic-sandbox", "patient": EPIC_PATIENT,
                     "client_id": "replay-client", "key_id": "replay-key",
                     "jku": "https://hub.example.org/.well-known/jwks.json"},
                    "Epic public sandbox (fhir.epic.com), recorded 2026-04-26; test patient Camila Lopez"), pairs


def cerner() -> tuple[str, list[dict[str, Any]]]:
    config = load("cerner", "smart-configuration_sandbox-provider-system_fhir-ehr-code.json")
    token_doc = load("cerner", "token-response_authorization-code.json")["body"]
    pairs = [pair("GET", f"{CERNER_BASE}/.well-known/smart-configuration",
                  {"body_file": rec("cerner", "smart-configuration_sandbox-provider-system_fhir-ehr-code.json")},
                  "recorded at the secure sandbox (fhir-ehr-code); served here at the open sandbox base"),
             pair("GET", f"{CERNER_BASE}/metadata",
                  {"body_file": rec("cerner", "capabilitystatement_sandbox-secure-r4.json")},
                  "recorded: secure sandbox CapabilityStatement"),
             pair("POST", config["token_endpoint"],
                  {"headers": {"Content-Type": "application/json"},
                   "json": {**{k: token_doc[k] for k in ("token_type", "expires_in")},
                            "access_token": "replayed.jwt.token", "scope": " ".join(CERNER_SCOPES)}},
                  "synthetic: the documented token response's shape (token-response_authorization-code.json, "
                  "expires_in 570) granting the v2 system scopes the profile requests")]
    for name in ("encounter-12724066.json", "documentreference-12724066.json"):
        pairs.append(capture("cerner", name))
        read = first_read("cerner", name, CERNER_BASE)
        if read:
            pairs.append(read)
    pairs.append(capture("cerner", "error-404-on-nonexistent-patient-id.json"))
    return manifest({"base_url": CERNER_BASE, "tenant": CERNER_TENANT, "patient": "12724066",
                     "client_id": "replay-system-account"},
                    "Oracle Health open sandbox (fhir-open.cerner.com), recorded 2026-04-27"), pairs


def athena() -> tuple[str, list[dict[str, Any]]]:
    config = load("athena", "smart-configuration_production.json")
    return manifest({"base_url": ATHENA_BASE, "tenant": "athena-195900", "practice": "195900",
                     "patient": "a-195900.E-60178", "client_id": "replay-client"},
                    "athenahealth production discovery documents; no athena FHIR resource captures exist "
                    "(vendor-notes §7), so the probes report 'not in the replay set'"), [
        pair("GET", f"{ATHENA_BASE}/.well-known/smart-configuration",
             {"body_file": rec("athena", "smart-configuration_production.json")}, "recorded: production"),
        pair("GET", f"{ATHENA_BASE}/metadata", {"body_file": rec("athena", "capabilitystatement_production-r4.json")},
             "recorded: production CapabilityStatement"),
        pair("POST", config["token_endpoint"],
             {"headers": {"Content-Type": "application/json"},
              "json": {"access_token": "replayed-athena-token", "token_type": "Bearer", "expires_in": 300,
                       "scope": " ".join(ATHENA_SCOPES)}},
             "synthetic: no athena token response was ever recorded; lifetime unverified (profile default)")]


def main() -> None:
    for vendor, build in (("epic", epic), ("cerner", cerner), ("athena", athena)):
        folder = HERE / vendor
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        text, pairs = build()
        (folder / "replay.toml").write_text(text, encoding="utf-8")
        for i, item in enumerate(pairs, 1):
            url = item["request"]["url"].split("?")[0].rstrip("/")
            slug = "-".join(url.split("/")[-2:]).replace(".", "").replace("_", "")[:48]
            (folder / f"{i:02d}-{slug}.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
        print(f"{vendor}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
