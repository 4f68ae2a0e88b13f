"""How the app reaches FHIR and OAuth servers: the network, or in-process for one origin.

A seam in the spirit of httpx's transports: tests and the one-process demo hand in a WSGI app for
the hub's origin (an app calling its own server over a socket from inside a request could wait on
itself); everything else goes through ``requests``. Either way the caller sees an :class:`HttpReply`
or a :class:`TransportError` (could not connect, timed out) — never a library exception.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from werkzeug.test import Client

TIMEOUT = (5.0, 20.0)


class TransportError(RuntimeError):
    """The server could not be reached (connection refused, DNS, timeout)."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Transport:
    """``request`` sends one HTTP request; URLs under ``local_origin`` go to ``wsgi_app`` without a socket."""

    local_origin: str | None = None
    wsgi_app: Callable[..., Any] | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def _local(self, url: str) -> bool:
        return bool(self.wsgi_app and self.local_origin and url.startswith(self.local_origin.rstrip("/") + "/"))

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None,
                form: dict[str, str] | None = None, basic: tuple[str, str] | None = None) -> HttpReply:
        hdrs = dict(headers or {})
        if basic:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        if self._local(url):
            parts = urlsplit(url)
            resp = Client(self.wsgi_app).open(parts.path, method=method, query_string=parts.query or None,  # type: ignore[arg-type]
                                              headers=hdrs, data=form if form is not None else body,
                                              base_url=f"{parts.scheme}://{parts.netloc}")
            try:
                return HttpReply(resp.status_code, dict(resp.headers), resp.get_data())
            finally:
                resp.close()
        try:
            r = self.session.request(method, url, headers=hdrs, data=form if form is not None else body,
                                     timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError(f"{urlsplit(url).netloc} could not be reached ({type(exc).__name__})") from None
        return HttpReply(r.status_code, dict(r.headers), r.content)
