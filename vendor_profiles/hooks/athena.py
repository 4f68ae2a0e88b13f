"""athenahealth: the practice may come from the access token's ``ah_practice`` claim.

The token is a JWT carrying ``ah_practice`` (e.g. ``a-1.Practice-195900``); clients derive
``ah-practice=Organization/{claim}`` from it (vendor-notes §4.1). The claim is read without
verifying the signature: it only chooses which practice to ask for; athena enforces access.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from vendor_profiles.hooks import VendorHooks

PREFIX = "a-1.Practice-"


class AthenaHooks(VendorHooks):
    def tenant_from_token(self, token_response: Mapping[str, Any]) -> str | None:
        token = token_response.get("access_token")
        if not isinstance(token, str) or token.count(".") != 2:
            return None
        payload = token.split(".")[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        claim = claims.get("ah_practice") if isinstance(claims, dict) else None
        if isinstance(claim, str) and claim.startswith(PREFIX):
            return claim[len(PREFIX):]
        return None


HOOKS = AthenaHooks()
