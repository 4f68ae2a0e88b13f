"""EHR launch and standalone provider launch, start to finish, without Flask.

``begin`` (the EHR opened ``/app/launch?iss=…&launch=…``, or a provider opened ``/app/launch?iss=…``):
check ``iss`` against the trusted list *before* contacting it, discover its endpoints, make PKCE S256
and ``state``, keep them server-side bound to this browser, and return the authorize URL (``aud`` = iss).

``complete`` (the EHR redirected to ``/app/callback``): take the single-use state, turn OAuth errors
into problems the user understands, exchange the code, verify the id_token, check the granted scopes,
read the patient from the EHR and match it to the hub's Patient, resolve the practitioner, and store
the session (tokens + context) sealed server-side. ``refresh_if_due`` renews the EHR token before it
expires. https://hl7.org/fhir/smart-app-launch/app-launch.html
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from smart_app.dashboard import human_name
from smart_app.ehr import EhrReader
from smart_app.fhir_client import HubError
from smart_app.matching import match_patient, match_practitioner, sync_from_ehr
from smart_app.services import AppServices
from smart_app.smart import errors, oauth
from smart_app.smart.context import LaunchContext, expires_at, parse_context, require_scopes
from smart_app.smart.discovery import ServerConfig, discover
from smart_app.smart.pkce import new_state, pkce_pair

EHR_SCOPE = "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Practitioner.rs"
STANDALONE_SCOPE = "openid fhirUser online_access user/Practitioner.rs"
EHR_REQUIRED = {"launch", "openid", "fhirUser", "patient/Patient.rs"}
STANDALONE_REQUIRED = {"openid", "fhirUser"}
STATE_TTL = 600
REFRESH_MARGIN = 60
TZ_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
STALE_WARNING = ("The patient's record could not be refreshed from the EHR just now: "
                 "what Telehub shows may be out of date.")
log = logging.getLogger("telehub.app")


def begin(svc: AppServices, *, iss: str | None, launch: str | None, browser: str) -> str:
    """The authorize URL to send the browser to."""
    if not iss:
        raise errors.MissingLaunchParameters("the launch request has no iss")
    iss, _quirks = svc.issuers.resolve(iss)
    config = discover(svc.transport, iss)
    verifier, challenge = pkce_pair()
    state = new_state()
    svc.store.put("state", state, {
        "iss": iss, "launch": launch or None, "verifier": verifier, "browser": browser,
        "config": {"issuer": config.issuer, "authorization_endpoint": config.authorization_endpoint,
                   "token_endpoint": config.token_endpoint, "jwks_uri": config.jwks_uri,
                   "capabilities": list(config.capabilities)},
        "expires": time.time() + STATE_TTL}, STATE_TTL)
    return oauth.authorize_url(config, client_id=svc.settings.client_id, redirect_uri=svc.settings.redirect_uri,
                               scope=EHR_SCOPE if launch else STANDALONE_SCOPE, state=state, challenge=challenge,
                               aud=iss, launch=launch)


def _oauth_error(args: dict[str, str]) -> errors.LaunchProblem:
    code, text = args.get("error", ""), args.get("error_description", "")
    if code == "access_denied":
        return errors.ConsentDenied("the EHR reported access_denied")
    if "launch" in text.lower():
        return errors.LaunchExpired(f"the EHR reported {code}: {text[:200]}")
    if code in ("invalid_scope",):
        return errors.MissingScopes(f"the EHR reported {code}")
    if code in ("temporarily_unavailable", "server_error"):
        return errors.EhrUnavailable(f"the EHR reported {code}")
    return errors.LaunchProblem(f"the EHR reported {code or 'an error'}")


def complete(svc: AppServices, args: dict[str, str], *, browser: str) -> str:
    """Finish the launch; returns the new session id (the only thing the cookie will hold)."""
    state = args.get("state", "")
    pending = svc.store.take("state", state) if state else None
    if args.get("error"):
        raise _oauth_error(args)
    if pending is None or not secrets.compare_digest(str(pending.get("browser", "")), browser) \
            or float(pending.get("expires", 0)) < time.time():
        raise errors.StateMismatch("unknown, reused, expired or foreign state")
    if not args.get("code"):
        raise errors.LaunchProblem("the EHR sent no authorization code")
    iss, quirks = svc.issuers.resolve(pending["iss"])
    config = ServerConfig.from_json(pending["config"])
    client = (svc.settings.client_id, svc.settings.client_secret)
    body = oauth.exchange_code(svc.transport, config.token_endpoint, code=args["code"],
                               verifier=pending["verifier"], redirect_uri=svc.settings.redirect_uri, client=client)
    claims = oauth.id_token_claims(svc.transport, config, body["id_token"], client[0]) if body.get("id_token") else {}
    context = parse_context(body, claims)
    require_scopes(context, EHR_REQUIRED if pending.get("launch") else STANDALONE_REQUIRED)
    if not context.fhir_user:
        raise errors.MissingScopes("the EHR did not say who you are (fhirUser)")
    ehr = EhrReader(svc.transport, iss, str(body["access_token"]), quirks, context.extras)
    session = _session_record(svc, iss, quirks.vendor, config, body, context)
    try:
        practitioner = match_practitioner(svc.hub, context.fhir_user, iss=iss, quirks=quirks, read_ehr=ehr.read)
        if practitioner is None:
            raise errors.NoPractitioner(f"fhirUser {context.fhir_user} has no hub Practitioner")
        session.update(_practitioner_facts(svc, practitioner))
        if context.patient:
            ehr_patient = ehr.read(f"Patient/{context.patient}")
            if ehr_patient is None:
                raise errors.MissingScopes("the EHR did not let Telehub read the launch patient")
            synced, session["sync_warning"] = _sync_from_ehr(svc, iss, context.patient)
            hub_patient = synced or match_patient(svc.hub, ehr_patient, iss=iss, quirks=quirks)
            session["hub_patient"] = hub_patient
            session["banner"] = banner_facts(ehr_patient)
    except HubError as exc:
        raise errors.HubDown(str(exc)) from None
    sid = secrets.token_urlsafe(32)
    svc.store.put("session", sid, session, svc.settings.session_idle_seconds)
    return sid


def _sync_from_ehr(svc: AppServices, iss: str, patient: str) -> tuple[str | None, str | None]:
    """(hub Patient id, warning): refresh the hub's copy of the launch patient when ``iss`` is a clinic EHR
    with a hub tenant. A failure is a warning on the dashboard (stale data), never a failed launch."""
    tenant = next((t.tenant for t in svc.settings.trusted_issuers if t.iss == iss), None)
    if tenant is None or iss == svc.hub.base:
        return None, None
    try:
        return sync_from_ehr(svc.hub, tenant=tenant, patient=patient, max_age=svc.settings.sync_max_age), None
    except HubError as exc:
        log.warning("ehr-sync for tenant %s failed (hub answered %s)", tenant, exc.status or "nothing")
        return None, STALE_WARNING


def _session_record(svc: AppServices, iss: str, vendor: str, config: ServerConfig, body: dict[str, Any],
                    context: LaunchContext) -> dict[str, Any]:
    return {"iss": iss, "vendor": vendor, "token_endpoint": config.token_endpoint,
            "access_token": body["access_token"], "refresh_token": body.get("refresh_token"),
            "expires_at": expires_at(body), "scope": sorted(context.scopes),
            "context": {"patient": context.patient, "encounter": context.encounter, "fhir_user": context.fhir_user,
                        "need_patient_banner": context.need_patient_banner,
                        "smart_style_url": context.smart_style_url, "intent": context.intent,
                        "tenant": context.tenant, "extras": context.extras},
            "created": time.time()}


def _practitioner_facts(svc: AppServices, practitioner: str) -> dict[str, Any]:
    """The practitioner's hub id, display name and time zone (their own, else the clinic's)."""
    try:
        found = svc.hub.get(f"Practitioner/{practitioner}")
    except HubError:
        found = {}
    tz = next((e.get("valueCode") for e in found.get("extension", []) if e.get("url") == TZ_EXTENSION), None)
    return {"practitioner": practitioner, "practitioner_name": human_name(found) or "Practitioner",
            "timezone": tz or svc.settings.timezone}


def banner_facts(patient: dict[str, Any]) -> dict[str, Any]:
    """What the patient banner shows (name, birth date, sex, MRN) — kept only in the sealed session."""
    mrn = next((i.get("value") for i in patient.get("identifier", [])
                if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding", []))), None)
    return {"name": human_name(patient), "birth_date": patient.get("birthDate"), "gender": patient.get("gender"),
            "mrn": mrn}


def load_session(svc: AppServices, sid: str | None) -> dict[str, Any]:
    found = svc.store.get("session", sid) if sid else None
    if found is None:
        raise errors.SessionExpired("no session for this browser")
    return found


def touch(svc: AppServices, sid: str, session: dict[str, Any]) -> None:
    """Write back (sliding idle timeout)."""
    svc.store.put("session", sid, session, svc.settings.session_idle_seconds)


def refresh_if_due(svc: AppServices, session: dict[str, Any], now: float | None = None) -> bool:
    """Renew the EHR access token ``REFRESH_MARGIN`` s before it expires; True when renewed.

    A failed refresh drops the EHR tokens (the dashboard reads the hub, not the EHR) — the next EHR
    read asks the user to launch again.
    """
    now = time.time() if now is None else now
    if not session.get("refresh_token") or float(session.get("expires_at", 0)) - REFRESH_MARGIN > now:
        return False
    try:
        body = oauth.refresh(svc.transport, session["token_endpoint"], refresh_token=session["refresh_token"],
                             client=(svc.settings.client_id, svc.settings.client_secret))
    except errors.LaunchProblem:
        session.update(access_token=None, refresh_token=None, expires_at=0)
        return False
    session.update(access_token=body["access_token"], refresh_token=body.get("refresh_token",
                                                                              session["refresh_token"]),
                   expires_at=expires_at(body, now))
    return True
