"""An upstream error during onboarding → the reason and the next step, in plain words (pure).

Vendors say "this search needs …" in their own shapes (Epic 59108/59159/4111 with
``[[patient,category],…]``, athena ``required parameter combinations [[patient],[_id]]``, Cerner
"No supported search parameters provided"; vendor-notes §5.3-5.4); :func:`required_combos` reads
the combinations back so the next step can name the missing parameter.
"""
from __future__ import annotations

import re

from fhir_gateway.upstream.errors import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamConfigError,
    UpstreamError,
    UpstreamHttpError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

_COMBOS = re.compile(r"\[\s*(\[[^\[\]]*\](?:\s*,\s*\[[^\[\]]*\])*)\s*\]")
REQUIRED_CODES = {"59108", "59159", "4111"}  # Epic: required parameter missing (vendor-notes §2.3)


def required_combos(text: str) -> list[list[str]]:
    """``[[patient,category],[patient,code]]`` (quoted or not) → ``[["patient","category"], …]``."""
    match = _COMBOS.search(text)
    if not match:
        return []
    combos = re.findall(r"\[([^\[\]]*)\]", match.group(1))
    return [[p.strip().strip("'\"") for p in c.split(",") if p.strip()] for c in combos]


def missing_words(combos: list[list[str]], given: set[str]) -> str:
    """The smallest additions that would satisfy a combination, e.g. ``category`` or ``category (or code)``."""
    additions = [[p for p in combo if p not in given] for combo in combos]
    additions = [a for a in additions if a]
    if not additions:
        return ""
    additions.sort(key=len)
    first = "+".join(additions[0])
    others = [("+".join(a)) for a in additions[1:] if len(a) == len(additions[0])]
    return first + (f" (or {' or '.join(others)})" if others else "")


def explain(exc: UpstreamError, rtype: str, interaction: str, given: set[str], detail: str = "") -> tuple[str, str]:
    """(reason, next step) for a failed probe; ``detail``: the server's own message (default: its issues' texts)."""
    detail = detail or "; ".join(i.text for i in exc.issues if i.text)[:300]
    reason = str(exc) + (f" — {detail}" if detail else "")
    if isinstance(exc, UpstreamAuthError) or exc.status == 401:
        return reason, ("the access token was refused: check the client's registration (and, for Epic, that the "
                        "client id has propagated — up to 12 h) and the token URL")
    if exc.status == 403:
        return reason, (f"the app may not {interaction} {rtype}: add scope system/{rtype}.rs (or enable the {rtype} "
                        "API in the vendor's app registration) and onboard again")
    if exc.status == 400 or set(exc.vendor_codes) & REQUIRED_CODES:
        combos = required_combos(detail)
        words = missing_words(combos, given) if combos else ""
        if words:
            return reason, f"{rtype} search needs {words}: add it to the app's requests (resources.{rtype}." \
                           "required_params in the vendor profile)"
        return reason, (f"the server refused this {rtype} {interaction}; read its message and add the parameters it "
                        f"requires to resources.{rtype}.required_params in the vendor profile")
    if isinstance(exc, UpstreamNotFound):
        if interaction == "read" and rtype == "Patient":
            return reason, "the test patient does not exist on this server: pass an id from the vendor's test data " \
                           "with --patient"
        return reason, f"the server does not serve {rtype} here: remove it from the vendor profile or ask the vendor"
    if isinstance(exc, UpstreamBadResponse):
        return reason, ("the server answered something that is not FHIR JSON: check the base URL (it must end at "
                        "the FHIR R4 root) and that Accept: application/fhir+json is honoured")
    if isinstance(exc, UpstreamRateLimited):
        return reason, "the server throttled the probes: lower rate_limit.requests_per_second in the vendor profile"
    if isinstance(exc, UpstreamUnavailable):
        return reason, "the server did not answer: check the base URL, the network path and any IP allow-list"
    if isinstance(exc, UpstreamConfigError):
        return reason, "fix the connection settings named above and run onboarding again"
    if isinstance(exc, UpstreamHttpError):
        return reason, f"the server refused {rtype} {interaction} with HTTP {exc.status}; see its message"
    return reason, "see the message above"
