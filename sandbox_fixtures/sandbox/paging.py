"""Vendor paging styles over the hub's offset links (vendor-notes §2.3, §3.3, §4.2, §5.2).

The hub pages with ``_count``/``_offset``/``_snapshot``. A session-style flavour hides that behind an
opaque, expiring token (Epic ``sessionID``, Cerner ``-pageContext``, athena ``cursor``) kept here,
server-side, mapping to the hub query of the next page. ``links`` flavours show the hub's links as they are.
"""
from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from sandbox_fixtures.sandbox.flavours import Paging

HUB_PAGING = ("_count", "_offset", "_snapshot")


@dataclass(frozen=True)
class PageSession:
    rtype: str
    hub_query: str  # the hub's query string for this page (with _offset/_snapshot)
    expires: float


class SessionExpired(LookupError):
    """A paging token that is unknown or past its life: the vendor's "session expired" error."""


class PageSessions:
    """In-process token → page map with expiry (the sandbox runs as one process; see README)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = 10_000) -> None:
        self.clock = clock
        self.limit = limit
        self._items: dict[str, PageSession] = {}
        self._lock = threading.Lock()

    def new_token(self, paging: Paging) -> str:
        raw = secrets.token_bytes(18)
        if paging.token_format == "b64":
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return paging.token_prefix + raw.hex().upper()

    def put(self, paging: Paging, rtype: str, hub_query: str) -> str:
        token = self.new_token(paging)
        now = self.clock()
        with self._lock:
            if len(self._items) >= self.limit:  # drop what has expired, then the oldest
                self._items = {k: v for k, v in self._items.items() if v.expires > now}
                while len(self._items) >= self.limit:
                    self._items.pop(next(iter(self._items)))
            self._items[token] = PageSession(rtype, hub_query, now + paging.ttl)
        return token

    def get(self, token: str, rtype: str) -> PageSession:
        with self._lock:
            found = self._items.get(token)
        if found is None or found.expires <= self.clock() or found.rtype != rtype:
            raise SessionExpired(token)
        return found


def hub_query_of(url: str) -> str:
    """The query string of a hub link (what the next page's hub request needs)."""
    return urlsplit(url).query


def vendor_next_link(paging: Paging, sessions: PageSessions, base: str, rtype: str, hub_next: str,
                     client_query: list[tuple[str, str]]) -> str:
    """The flavour's next link for the hub's next link."""
    token = sessions.put(paging, rtype, hub_query_of(hub_next))
    kept = [(k, v) for k, v in client_query if k not in HUB_PAGING and k != paging.param
            and k not in paging.extra] if paging.keep_query else []
    params = [*kept, (paging.param, token), *paging.extra.items()]
    return f"{base}/{rtype}?{urlencode(params)}"


def strip_hub_paging(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in HUB_PAGING]
