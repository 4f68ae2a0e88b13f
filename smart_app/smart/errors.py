"""Launch problems, each a class carrying what the user sees: what happened and what to do.

Rendered once, by :func:`smart_app.pages.problem_page`; nothing else reaches the user as an error
(no stack traces, no raw OAuth bodies, no PHI).
"""
from __future__ import annotations


class LaunchProblem(Exception):
    code = "launch_failed"
    status = 400
    title = "The app could not start"
    advice = "Close this window and launch the app again from your EHR."

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail


class MissingLaunchParameters(LaunchProblem):
    code = "missing_iss"
    title = "This page must be opened by your EHR"
    advice = "Start Telehub from your EHR's app list (it adds the iss and launch parameters)."


class UntrustedIssuer(LaunchProblem):
    code = "untrusted_iss"
    status = 403
    title = "This EHR is not one Telehub trusts"
    advice = ("Ask your Telehub administrator to add this EHR's FHIR address to the trusted issuers "
              "(TELEHUB_APP_TRUSTED_ISSUERS), then launch again.")


class EhrUnavailable(LaunchProblem):
    code = "ehr_unavailable"
    status = 502
    title = "Your EHR did not answer"
    advice = "Wait a minute and launch again. If it keeps failing, tell your EHR support team."


class ConsentDenied(LaunchProblem):
    code = "access_denied"
    status = 403
    title = "Access was not allowed"
    advice = "Telehub needs your permission to open. Launch again and choose Allow on the consent page."


class LaunchExpired(LaunchProblem):
    code = "launch_expired"
    title = "This launch has expired"
    advice = "Launches are valid for a few minutes only. Go back to your EHR and launch Telehub again."


class StateMismatch(LaunchProblem):
    code = "state_mismatch"
    title = "This sign-in could not be matched to your launch"
    advice = ("The sign-in reply did not belong to a launch started in this browser (or it took too long). "
              "Launch again from your EHR.")


class MissingScopes(LaunchProblem):
    code = "missing_scopes"
    status = 403
    title = "Telehub was not given the access it needs"
    advice = ("Launch again and keep the listed permissions ticked on the consent page, or ask your "
              "administrator to enable them for the Telehub app in your EHR.")


class TokenExchangeFailed(LaunchProblem):
    code = "token_failed"
    status = 502
    title = "Your EHR did not complete the sign-in"
    advice = "Launch again from your EHR. If it keeps failing, tell your EHR support team."


class SessionExpired(LaunchProblem):
    code = "session_expired"
    status = 401
    title = "Your Telehub session has ended"
    advice = "Sessions end after 15 minutes without activity. Launch Telehub again from your EHR."


class NoPractitioner(LaunchProblem):
    code = "no_practitioner"
    status = 403
    title = "Your EHR user is not linked to a Telehub practitioner"
    advice = "Ask your Telehub administrator to link your practitioner record (by NPI), then launch again."


class HubDown(LaunchProblem):
    code = "hub_unavailable"
    status = 503
    title = "Telehub's data service is not available"
    advice = "Wait a minute and reload this page. If it keeps failing, tell Telehub support."


class VisitNotFound(LaunchProblem):
    code = "visit_not_found"
    status = 404
    title = "That visit was not found"
    advice = "It may have been cancelled, or it is not one of your visits. Go back to the dashboard."
