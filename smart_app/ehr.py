"""Reads from the launching EHR with the user's access token (the EHR owns the chart).

Vendor quirks come from :class:`~smart_app.issuers.Quirks`: always ask for JSON (Epic answers XML
otherwise, Cerner 406) and add athena's ``ah-practice`` to every request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from smart_app.issuers import Quirks, practice_query
from smart_app.smart.errors import EhrUnavailable
from smart_app.transport import Transport, TransportError


@dataclass
class EhrReader:
    transport: Transport
    iss: str
    access_token: str
    quirks: Quirks
    extras: dict[str, Any] = field(default_factory=dict)

    def read(self, ref: str) -> dict[str, Any] | None:
        """GET {iss}/{ref}; None when the EHR has no such resource or refuses it; EhrUnavailable when down."""
        query = practice_query(self.quirks, self.extras)
        url = ref if ref.startswith(("http://", "https://")) else f"{self.iss}/{ref}"
        if query:
            url += "?" + urlencode(query)
        try:
            reply = self.transport.request("GET", url, headers={
                "Accept": self.quirks.accept, "Authorization": f"Bearer {self.access_token}"})
        except TransportError as exc:
            raise EhrUnavailable(str(exc)) from None
        if reply.status >= 500:
            raise EhrUnavailable(f"the EHR answered {reply.status}")
        if reply.status != 200:
            return None
        try:
            found: dict[str, Any] = reply.json()
        except ValueError:
            return None
        return found
