"""Vendor hooks: the few behaviours a profile's data cannot express, one small module per vendor.

A module ``vendor_profiles.hooks.<name>`` defines ``HOOKS``, an instance of
:class:`VendorHooks` (or a subclass overriding only what differs). A profile opts in
with ``hooks = "<name>"``; without it the defaults apply. Hooks are pure: no I/O.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any


class VendorHooks:
    """Default behaviour; override per vendor only where the profile cannot say it."""

    def tenant_from_token(self, token_response: Mapping[str, Any]) -> str | None:
        """A tenant value carried by the token response (e.g. a practice id claim); None: use the connection's."""
        return None

    def extra_search_params(self, resource_type: str, tenant: str) -> dict[str, str]:
        """Parameters to add to every search beyond the profile's tenancy parameter."""
        return {}


DEFAULT = VendorHooks()


def known_hooks() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def hooks_for(name: str | None) -> VendorHooks:
    """The hooks of a profile (``profile.hooks``), or the defaults."""
    if name is None:
        return DEFAULT
    module = importlib.import_module(f"{__name__}.{name}")
    hooks = getattr(module, "HOOKS", None)
    if not isinstance(hooks, VendorHooks):
        raise TypeError(f"vendor_profiles.hooks.{name} must define HOOKS = VendorHooks()")
    return hooks
