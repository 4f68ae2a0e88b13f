"""Required search-parameter combinations, checked before a call is spent.

Vendors refuse searches without their required parameters (Epic 59159/4111/59108, Cerner "at least
one of …", athena "[[patient],[_id]]"; vendor-notes §5.4); the profile lists the alternatives, so
the hub says what is missing in plain words instead of sending a request that must fail.
"""
from __future__ import annotations

from collections.abc import Iterable

from fhir_gateway.upstream.errors import UpstreamConfigError
from vendor_profiles.schema import VendorProfile


def missing_required(profile: VendorProfile, resource_type: str, names: Iterable[str]) -> list[list[str]] | None:
    """None when the parameters satisfy one required combination (or none is required); else the choices."""
    spec = profile.resources.get(resource_type)
    if spec is None or not spec.required_params:
        return None
    given = {n.split(":")[0] for n in names}
    if any(set(combo) <= given for combo in spec.required_params):
        return None
    return [list(c) for c in spec.required_params]


def check_search(profile: VendorProfile, resource_type: str, names: Iterable[str]) -> None:
    if not profile.supports(resource_type, "search"):
        raise UpstreamConfigError(f"{profile.name} does not support searching {resource_type}")
    choices = missing_required(profile, resource_type, names)
    if choices is not None:
        options = " or ".join("+".join(c) for c in choices)
        raise UpstreamConfigError(f"{resource_type} search on {profile.name} needs {options}: add it to the request")
